//! Anomaly scores against a calibrated threshold, and a streaming front end that
//! turns a sensor stream into windows and scores each one — in fixed memory.
//!
//! The score of a row is `-log p(x)` in nats (data units): large = unlikely. A
//! model frozen by `floe anomaly fit` carries a threshold calibrated on held-out
//! normal rows at a chosen false-alarm rate, and for streams the window layout
//! (W samples of C channels, optionally first differences) and the alarm rule
//! that turns per-window verdicts into alarms a device can act on.

use heapless::HistoryBuf;

use crate::error::{Error, Result};
use crate::format::{AlarmRule, AnomalyThreshold, StreamLayout};
use crate::model::{len32, Model};

/// The anomaly score of one row (or window).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Score {
    /// `-log p(x)`, nats.
    pub nats: f32,
    /// `nats / D`.
    pub per_dim: f32,
    /// `nats > threshold`, when the model carries a threshold.
    pub anomaly: Option<bool>,
}

impl Score {
    /// The score of a `log p` for a `dim`-dimensional model with `threshold`:
    /// `-log p`, and `+∞` when `log p` is NaN (a finite row so extreme that its
    /// density overflows f32) — as anomalous as it gets.
    pub fn of_log_prob(log_p: f32, dim: usize, threshold: Option<AnomalyThreshold>) -> Score {
        let nats = if log_p.is_nan() { f32::INFINITY } else { -log_p };
        Score { nats, per_dim: nats / dim as f32, anomaly: threshold.map(|t| nats > t.threshold) }
    }
}

impl<'a> Model<'a> {
    /// The calibrated threshold, if the file carries one.
    pub fn anomaly_threshold(&self) -> Option<AnomalyThreshold> {
        self.header().anomaly
    }

    /// The stream layout, if the model scores windows of a stream.
    pub fn stream_layout(&self) -> Option<StreamLayout> {
        self.header().stream
    }

    /// The stream's alarm rule, if the file carries one.
    pub fn alarm_rule(&self) -> Option<AlarmRule> {
        self.header().alarm
    }

    /// Score a row: `-log p(x | context)`, per dimension, and the verdict against
    /// the stored threshold ([`Score::of_log_prob`]).
    pub fn score(&self, x: &[f32], context: &[f32], scratch: &mut [f32]) -> Result<Score> {
        let lp = self.log_prob(x, context, scratch)?;
        Ok(Score::of_log_prob(lp, self.dim(), self.anomaly_threshold()))
    }
}

/// A stream's alarm after a scored window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Alarm {
    /// The alarm is on.
    pub active: bool,
    /// It went on at this window (the event to act on).
    pub raised: bool,
    /// It went off at this window.
    pub cleared: bool,
    /// Windows above the threshold among the rule's last m (this one included).
    pub above: u8,
}

/// The memory of an [`AlarmRule`]: the verdicts of the last m windows (one bit
/// each, newest in bit 0) and whether the alarm is on. Integer logic only, so a
/// device and the host agree exactly given the same verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlarmState {
    verdicts: u32,
    active: bool,
}

impl AlarmState {
    /// No window seen, alarm off.
    pub const fn new() -> Self {
        AlarmState { verdicts: 0, active: false }
    }

    /// Take one window's verdict (`above`: its score exceeds the threshold) under
    /// `rule`: the alarm goes on when at least `rule.raise` of the last
    /// `rule.window` verdicts are above, and an active alarm goes off when at
    /// most `rule.clear` are.
    pub fn step(&mut self, rule: AlarmRule, above: bool) -> Alarm {
        let mask = 1u32.checked_shl(u32::from(rule.window)).map_or(u32::MAX, |b| b.wrapping_sub(1));
        self.verdicts = ((self.verdicts << 1) | u32::from(above)) & mask;
        let count = self.verdicts.count_ones();
        let (mut raised, mut cleared) = (false, false);
        if !self.active && count >= u32::from(rule.raise) {
            self.active = true;
            raised = true;
        } else if self.active && count <= u32::from(rule.clear) {
            self.active = false;
            cleared = true;
        }
        Alarm { active: self.active, raised, cleared, above: count as u8 }
    }
}

/// A sliding window over a stream, for one model, in `N` values of fixed memory
/// (the history ring and the assembled window; `N ≥ W·C`). Samples go in one at a
/// time; once W samples have arrived, every sample yields the score of the window
/// ending at it.
///
/// The stream holds its model (a [`Model`] is a small `Copy` view of the file), so
/// it cannot be fed to another model by mistake. A rejected sample (wrong channel
/// count, NaN/Inf, out of order, scratch too small) returns a typed error and
/// leaves the stream exactly as it was.
#[derive(Debug, Clone)]
pub struct Stream<'m, const N: usize> {
    model: Model<'m>,
    layout: StreamLayout,
    history: HistoryBuf<f32, N>,
    window: [f32; N],
    next_seq: Option<u32>,
    rule: Option<AlarmRule>,
    alarm_state: AlarmState,
    alarm: Option<Alarm>,
}

impl<'m, const N: usize> Stream<'m, N> {
    /// A stream for `model`, which must carry a stream layout whose window fits `N`.
    pub fn new(model: Model<'m>) -> Result<Self> {
        let layout = model.stream_layout().ok_or(Error::NotAStreamModel)?;
        if layout.history_len() > N || layout.dim() > N {
            return Err(Error::BufferTooSmall { needed: layout.history_len() as u32, got: N as u32 });
        }
        let rule = model.anomaly_threshold().map(|_| model.alarm_rule().unwrap_or(AlarmRule::PER_WINDOW));
        Ok(Stream {
            model,
            layout,
            history: HistoryBuf::new(),
            window: [0.0; N],
            next_seq: None,
            rule,
            alarm_state: AlarmState::new(),
            alarm: None,
        })
    }

    /// The alarm rule this stream steps: the file's, or the per-window verdict
    /// when the file has a threshold but no rule; `None` without a threshold.
    pub fn alarm_rule(&self) -> Option<AlarmRule> {
        self.rule
    }

    /// The alarm after the last scored window (`None` before the first one, or
    /// without a threshold).
    pub fn alarm(&self) -> Option<Alarm> {
        self.alarm
    }

    /// The model this stream scores with.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The layout this stream was made for.
    pub fn layout(&self) -> StreamLayout {
        self.layout
    }

    /// Samples still needed before the first score.
    pub fn samples_needed(&self) -> usize {
        let c = self.layout.channels as usize;
        let have = self.history.len().min(self.layout.history_len()) / c.max(1);
        self.layout.window as usize - have
    }

    /// Forget the history and the alarm (after a gap in the stream, say).
    pub fn reset(&mut self) {
        self.history.clear();
        self.next_seq = None;
        self.alarm_state = AlarmState::new();
        self.alarm = None;
    }

    /// Add one sample (C channel values). Returns the score of the window ending
    /// here once W samples have arrived, `None` before.
    pub fn push(&mut self, sample: &[f32], scratch: &mut [f32]) -> Result<Option<Score>> {
        self.check(sample, scratch)?;
        self.take(sample, scratch)
    }

    /// [`Stream::push`] with a sequence number: it must be the previous sample's
    /// plus one (any value for the first sample after `new` or `reset`); a
    /// repeated, older or skipped number is rejected with [`Error::OutOfOrder`].
    pub fn push_seq(&mut self, seq: u32, sample: &[f32], scratch: &mut [f32]) -> Result<Option<Score>> {
        self.check(sample, scratch)?;
        if let Some(expected) = self.next_seq {
            if seq != expected {
                return Err(Error::OutOfOrder { expected, got: seq });
            }
        }
        let out = self.take(sample, scratch)?;
        self.next_seq = Some(seq.wrapping_add(1));
        Ok(out)
    }

    /// Everything that can reject a sample, before anything changes.
    fn check(&self, sample: &[f32], scratch: &[f32]) -> Result<()> {
        let c = self.layout.channels as usize;
        if sample.len() != c {
            return Err(Error::DimMismatch { expected: c as u32, got: len32(sample) });
        }
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        if scratch.len() < self.model.scratch_len() {
            return Err(Error::ScratchTooSmall { needed: self.model.scratch_len() as u32, got: len32(scratch) });
        }
        // Two finite samples can still differ by more than f32 holds (±3e38):
        // reject such a sample here, before it enters the history.
        if self.layout.differences && self.history.len() >= c {
            let last = self.history.oldest_ordered().skip(self.history.len() - c);
            if sample.iter().zip(last).any(|(&v, &p)| !(v - p).is_finite()) {
                return Err(Error::NonFiniteInput);
            }
        }
        Ok(())
    }

    fn take(&mut self, sample: &[f32], scratch: &mut [f32]) -> Result<Option<Score>> {
        for &v in sample {
            self.history.write(v);
        }
        let need = self.layout.history_len();
        if self.history.len() < need {
            return Ok(None);
        }
        let c = self.layout.channels as usize;
        let d = self.layout.dim();
        let skip = self.history.len() - need;
        let window = self.window.get_mut(..d).ok_or(Error::Internal)?;
        if self.layout.differences {
            // x[k·C + j] = s[k + 1][j] − s[k][j]: walk the history once, keeping
            // the previous sample's values in the window slots they difference.
            let mut prev = self.history.oldest_ordered().skip(skip);
            let mut next = self.history.oldest_ordered().skip(skip + c);
            for o in window.iter_mut() {
                match (prev.next(), next.next()) {
                    (Some(a), Some(b)) => *o = b - a,
                    _ => return Err(Error::Internal),
                }
            }
        } else {
            for (o, &v) in window.iter_mut().zip(self.history.oldest_ordered().skip(skip)) {
                *o = v;
            }
        }
        let score = match self.model.score(window, &[], scratch) {
            Ok(s) => s,
            Err(e) => {
                self.alarm = None;
                return Err(e);
            }
        };
        if let (Some(rule), Some(above)) = (self.rule, score.anomaly) {
            self.alarm = Some(self.alarm_state.step(rule, above));
        }
        Ok(Some(score))
    }
}
