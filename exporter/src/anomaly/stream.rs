//! Sensor streams: learn windows of a normal series, calibrate a threshold on
//! held-out windows of it, write a model with its stream layout, and score a
//! series sample by sample through the runtime's [`Stream`] — as a device would.

use std::path::Path;

use burn::prelude::*;
use floe_runtime::format::{AlarmRule, AnomalyThreshold, Precision, StreamLayout, MAX_ALARM_WINDOW};
use floe_runtime::{Model, Stream};

pub use super::series::{numeric_columns, read_series, Series};
use super::FlowSettings;
use crate::data::{standardize, Rows, Standardization};
use crate::error::{ConfigError, DataError, Result};
use crate::freeze::runtime::score_nats;
use crate::freeze::{self, LoadedModel, Parity, PARITY_TOLERANCE};
use crate::metrics::threshold_at;
use crate::quant::{self, QuantConfig};
use crate::train;

/// History (values) the host-side stream scorer holds: the longest window ×
/// channels a stream model may have here.
pub const STREAM_CAPACITY: usize = 1024;

/// Windows a normal series must yield to train on.
pub const MIN_WINDOWS: usize = 50;

/// Every window (stride 1) of a series of `layout.channels`-wide samples, as
/// model rows: the last W samples, oldest first, channel-interleaved, or their
/// W − 1 first differences per channel — exactly what [`Stream`] assembles.
pub fn windows(values: &[f32], layout: StreamLayout) -> Rows {
    let (w, c) = (layout.window as usize, layout.channels as usize);
    let n = values.len() / c.max(1);
    let mut out = Vec::new();
    for end in w..=n {
        let win = &values[(end - w) * c..end * c];
        if layout.differences {
            out.extend(win[c..].iter().zip(win).map(|(b, a)| b - a));
        } else {
            out.extend_from_slice(win);
        }
    }
    Rows::new(layout.dim(), out)
}

/// What to fit.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Samples per window.
    pub window: u16,
    /// Model the window's first differences instead of its values.
    pub differences: bool,
    /// False-alarm rate of the threshold on held-out normal windows.
    pub fpr: f64,
    /// Quantize the model.
    pub quantize: Option<Precision>,
    /// Seed.
    pub seed: u64,
    /// The flow.
    pub settings: FlowSettings,
    /// The alarm rule; `None` chooses one on the calibration windows.
    pub alarm: Option<AlarmRule>,
}

impl StreamSpec {
    /// The layout for samples of `channels` values, with the settings checked: a
    /// false-alarm rate in (0, 1), at least 2 model dimensions, a history that fits
    /// [`STREAM_CAPACITY`].
    pub fn layout(&self, channels: usize) -> Result<StreamLayout> {
        super::bench::check_fpr(self.fpr)?;
        let channels =
            u16::try_from(channels).map_err(|_| ConfigError::invalid("--column", "at most 65535 columns", channels))?;
        let layout = StreamLayout { window: self.window, channels, differences: self.differences };
        if layout.dim() < 2 {
            return Err(ConfigError::invalid(
                "--window",
                "long enough to leave at least 2 model dimensions",
                self.window,
            )
            .into());
        }
        if layout.history_len() > STREAM_CAPACITY {
            return Err(ConfigError::invalid(
                "--window",
                "at most the 1024 values the stream scorer holds (window x channels)",
                self.window,
            )
            .into());
        }
        Ok(layout)
    }
}

/// How `n` windows of `window` samples split in time: `(training windows, first
/// calibration window)` — training the first 80 %, calibration the rest after a
/// gap of `window − 1` windows. `None` when no calibration window would be left.
fn time_split(n: usize, window: usize) -> Option<(usize, usize)> {
    let n_train = n * 4 / 5;
    let gap = window.saturating_sub(1);
    (n_train + gap < n).then_some((n_train, n_train + gap))
}

/// A fitted stream model.
#[derive(Debug)]
pub struct StreamModel {
    /// The file to write (quantized if asked), with its layout and threshold.
    pub loaded: LoadedModel,
    /// Bytes of the f32 file.
    pub f32_bytes: usize,
    /// The window layout.
    pub layout: StreamLayout,
    /// The threshold, nats.
    pub threshold: f64,
    /// The alarm rule chosen on the calibration windows ([`choose_alarm`]).
    pub alarm: AlarmRule,
    /// The calibration windows' scores through the written file, in time order.
    pub calib_scores: Vec<f64>,
    /// Burn vs runtime on the calibration windows.
    pub parity: Parity,
    /// Training windows.
    pub n_train: usize,
    /// Calibration windows.
    pub n_calib: usize,
    /// Epochs trained.
    pub epochs: usize,
}

/// Fit a stream model on the normal series `normal` (read from `path`) on `device`.
///
/// Time-ordered split: the last 20 % of the normal windows calibrate (and stop
/// early), after a gap of W − 1 windows so no calibration window shares a sample
/// with a training window.
pub fn fit_stream(normal: &Series, path: &Path, spec: &StreamSpec, device: &Device) -> Result<StreamModel> {
    let layout = spec.layout(normal.channels)?;
    let all = windows(&normal.values, layout);
    let n = all.n();
    let window = spec.window as usize;
    // The fewest windows that leave a calibration part after the gap.
    let need = (MIN_WINDOWS..).find(|&m| time_split(m, window).is_some()).unwrap_or(usize::MAX);
    let Some((n_train, calib_start)) = time_split(n, window).filter(|_| n >= MIN_WINDOWS) else {
        return Err(DataError::TooFewWindows { path: path.to_path_buf(), windows: n, window, need }.into());
    };
    let tr = all.select(&(0..n_train).collect::<Vec<_>>());
    let ca = all.select(&(calib_start..n).collect::<Vec<_>>());
    let d = layout.dim();
    let xs = Standardization::fit(&tr.x, d);
    let cs = Standardization::identity(0);
    let (fc, mut tc) = spec.settings.stream_configs(d, spec.seed, tr.n());
    // Windows overlap: a tenth of them is not a tenth of the information. Streams
    // keep the 256-window batches their models were measured with.
    tc.batch_size = 256;
    tc.dequantize = true;
    let (model, history) = train::train(
        &fc,
        &tc,
        &xs,
        &standardize(&tr, &xs, &cs),
        &standardize(&ca, &xs, &cs),
        device,
        spec.settings.progress,
    )?;
    let mut frozen = model.frozen(&xs, &cs)?;
    let f32_file = frozen.load()?;
    let parity = freeze::check_parity(&model, &xs, &cs, &f32_file, &ca, PARITY_TOLERANCE)?;
    frozen.stream = Some(layout);
    if let Some(precision) = spec.quantize {
        let q = quant::quantize(&frozen, QuantConfig { precision, max_layer_cost: 0.01 }, &tr, &ca, &ca)?;
        frozen = q.model;
        frozen.stream = Some(layout);
    }
    // Threshold on the calibration windows, through the same runtime.
    let calib_scores = score_nats(frozen.load()?.model(), &ca)?;
    let threshold = threshold_at(&calib_scores, spec.fpr);
    frozen.anomaly = Some(AnomalyThreshold { threshold: threshold as f32, target_fpr: spec.fpr as f32 });
    let alarm = match spec.alarm {
        Some(rule) => rule,
        None => choose_alarm(&calib_scores, spec.fpr, layout),
    };
    frozen.alarm = Some(alarm);
    Ok(StreamModel {
        loaded: frozen.load()?,
        f32_bytes: f32_file.bytes().len(),
        layout,
        threshold,
        alarm,
        calib_scores,
        parity,
        n_train,
        n_calib: n - calib_start,
        epochs: history.val_nll.len(),
    })
}

/// Excursions the alarm rule's choice measures the clustering of (see
/// [`choose_alarm`]).
pub const ALARM_REFERENCE_EXCURSIONS: usize = 10;

/// The alarm rule for a stream model, chosen on its held-out normal windows
/// (`calib`, scores in time order) for a threshold calibrated at false-alarm
/// rate `fpr` on them:
///
/// - m = min(W, 32): one unusual sample is in W consecutive windows, so up to W
///   verdicts in a row come from one event;
/// - raise k: one more than the most normal windows above a *reference level* in
///   any m consecutive ones — how much normal excursions cluster. The reference
///   level is the calibration score exceeded by max(⌈n·fpr⌉,
///   [`ALARM_REFERENCE_EXCURSIONS`]) windows: at the threshold itself a short
///   normal series has too few excursions to show their clustering. Capped at m;
/// - clear j = ⌊(k − 1)/2⌋: hysteresis — an alarm stays on until fewer than half
///   the raising count of the last m windows are above, so one event is one alarm.
///
/// At the threshold (a stricter level) the rule cannot raise on these windows.
pub fn choose_alarm(calib: &[f64], fpr: f64, layout: StreamLayout) -> AlarmRule {
    let m = layout.window.clamp(1, u16::from(MAX_ALARM_WINDOW)) as usize;
    let mut sorted = calib.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let excursions = ((n as f64 * fpr).ceil() as usize).max(ALARM_REFERENCE_EXCURSIONS).min(n);
    // The level exactly `excursions` windows are above (fewer on ties).
    let level = n.checked_sub(excursions + 1).and_then(|i| sorted.get(i)).copied().unwrap_or(f64::NEG_INFINITY);
    let above: Vec<usize> = calib.iter().map(|&s| usize::from(s > level)).collect();
    let most = above.windows(m.min(n.max(1))).map(|w| w.iter().sum::<usize>()).max().unwrap_or(0);
    let k = (most + 1).min(m);
    AlarmRule { window: m as u8, raise: k as u8, clear: ((k - 1) / 2) as u8 }
}

/// One scored window: the index of its last sample, its score, whether it is
/// above the model's threshold, and the stream's alarm after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowScore {
    /// Index of the window's last sample.
    pub t: usize,
    /// `−log p`, nats.
    pub nats: f32,
    /// Above the threshold.
    pub above: bool,
    /// The alarm is on (the file's rule, or the per-window verdict).
    pub alarm: bool,
    /// The alarm went on at this window.
    pub raised: bool,
}

/// Every window of `series` scored through the runtime's [`Stream`], sample by
/// sample, as a device would, with the stream's alarm after each.
pub fn stream_scores(model: &Model<'_>, series: &Series) -> Result<Vec<WindowScore>> {
    let mut st = Stream::<STREAM_CAPACITY>::new(*model)?;
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut out = Vec::new();
    for (t, sample) in series.values.chunks_exact(series.channels.max(1)).enumerate() {
        if let Some(s) = st.push(sample, &mut scratch)? {
            let a = st.alarm();
            out.push(WindowScore {
                t,
                nats: s.nats,
                above: s.anomaly.unwrap_or(false),
                alarm: a.is_some_and(|a| a.active),
                raised: a.is_some_and(|a| a.raised),
            });
        }
    }
    Ok(out)
}

/// The contiguous runs `(first, last)` of labelled samples.
pub fn labelled_runs(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (t, _) in labels.iter().enumerate().filter(|(_, &v)| v) {
        match runs.last_mut() {
            Some(r) if r.1 + 1 == t => r.1 = t,
            _ => runs.push((t, t)),
        }
    }
    runs
}

/// Samples between `t` and the run `(lo, hi)` (0 inside it).
pub fn distance(t: usize, (lo, hi): (usize, usize)) -> usize {
    lo.saturating_sub(t).max(t.saturating_sub(hi))
}

/// Samples a window may end from a labelled run and still count as finding it.
pub const HIT_TOLERANCE: usize = 100;

/// A labelled run and whether the top-scoring window found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFound {
    /// First labelled sample.
    pub first: usize,
    /// Last labelled sample.
    pub last: usize,
    /// Samples between the top window's end and the run.
    pub distance: usize,
    /// `distance ≤ HIT_TOLERANCE`.
    pub hit: bool,
}

/// Alarms of one rule over a scored series, split by where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmCount {
    /// The rule.
    pub rule: AlarmRule,
    /// Alarms raised (the events a device acts on).
    pub raised: usize,
    /// Of those, raised within [`HIT_TOLERANCE`] of a labelled run.
    pub raised_near: usize,
    /// Windows with the alarm on.
    pub on: usize,
    /// Of those, windows ending within [`HIT_TOLERANCE`] of a labelled run.
    pub on_near: usize,
}

/// A series scored by a stream model.
#[derive(Debug, Clone)]
pub struct StreamEvaluation {
    /// Every window's score.
    pub windows: Vec<WindowScore>,
    /// The top-scoring window.
    pub top: WindowScore,
    /// Each labelled run (none without labels).
    pub runs: Vec<RunFound>,
    /// The per-window verdict: every window above the threshold is an alarm.
    pub per_window: AlarmCount,
    /// The file's alarm rule, as the runtime's [`Stream`] stepped it.
    pub rule: AlarmCount,
}

/// Score `series` (read from `path`) through the runtime's [`Stream`] and relate
/// the top window and the alarms — per window, and under the file's rule — to
/// the labelled runs.
pub fn evaluate_stream(model: &Model<'_>, series: &Series, path: &Path) -> Result<StreamEvaluation> {
    let windows = stream_scores(model, series)?;
    let Some(top) = windows.iter().copied().max_by(|a, b| a.nats.total_cmp(&b.nats)) else {
        let window = model.stream_layout().map_or(0, |l| l.window as usize);
        return Err(DataError::SeriesTooShort { path: path.to_path_buf(), samples: series.len(), window }.into());
    };
    let spans = series.labels.as_deref().map(labelled_runs).unwrap_or_default();
    let runs = spans
        .iter()
        .map(|&(first, last)| {
            let distance = distance(top.t, (first, last));
            RunFound { first, last, distance, hit: distance <= HIT_TOLERANCE }
        })
        .collect();
    let near = |t: usize| spans.iter().any(|&r| distance(t, r) <= HIT_TOLERANCE);
    let count = |rule: AlarmRule, on: &dyn Fn(usize) -> bool, raised: &dyn Fn(usize) -> bool| {
        let (mut c, ts) = (AlarmCount { rule, raised: 0, raised_near: 0, on: 0, on_near: 0 }, windows.iter());
        for (i, w) in ts.enumerate() {
            let n = usize::from(near(w.t));
            if raised(i) {
                c.raised += 1;
                c.raised_near += n;
            }
            if on(i) {
                c.on += 1;
                c.on_near += n;
            }
        }
        c
    };
    // The per-window verdict's alarms are the runs of windows above the threshold.
    let above = |i: usize| windows.get(i).is_some_and(|w| w.above);
    let per_window = count(AlarmRule::PER_WINDOW, &above, &|i| above(i) && (i == 0 || !above(i - 1)));
    let rule = model.alarm_rule().unwrap_or(AlarmRule::PER_WINDOW);
    let rule = count(rule, &|i| windows[i].alarm, &|i| windows[i].raised);
    Ok(StreamEvaluation { windows, top, runs, per_window, rule })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_interleave_channels_as_the_runtime_stream_does() {
        // Three channels, six samples: s_t = (t, 10 t, 100 t + t²).
        let values: Vec<f32> = (0..6).flat_map(|t| [t as f32, 10.0 * t as f32, (100 * t + t * t) as f32]).collect();
        let plain = windows(&values, StreamLayout { window: 4, channels: 3, differences: false });
        assert_eq!((plain.n(), plain.dim), (3, 12));
        assert_eq!(plain.x_row(0), &values[..12]);
        assert_eq!(plain.x_row(2), &values[6..18]);
        let diff = windows(&values, StreamLayout { window: 4, channels: 3, differences: true });
        assert_eq!((diff.n(), diff.dim), (3, 9));
        // Window ending at sample 3: differences s_1 − s_0, s_2 − s_1, s_3 − s_2.
        assert_eq!(diff.x_row(0), &[1.0, 10.0, 101.0, 1.0, 10.0, 103.0, 1.0, 10.0, 105.0]);
    }

    #[test]
    fn labelled_runs_are_contiguous() {
        let l = [false, true, true, false, false, true, false, true];
        assert_eq!(labelled_runs(&l), vec![(1, 2), (5, 5), (7, 7)]);
        assert_eq!(distance(0, (1, 2)), 1);
        assert_eq!(distance(2, (1, 2)), 0);
        assert_eq!(distance(9, (5, 5)), 4);
    }
}
