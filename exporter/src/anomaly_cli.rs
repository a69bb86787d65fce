//! `floe anomaly …`: fit, evaluate and benchmark flow anomaly detectors, and the
//! streaming case.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use floe_runtime::{AnomalyThreshold, Model, StreamLayout};

use crate::anomaly::{self, baselines, evaluate, fit_flow, mean_std, split, threshold_at, Metrics};
use crate::data::{self, DataSpec};
use crate::error::{FloeError, Result};
use crate::freeze::PARITY_TOLERANCE;
use crate::model::{FlowConfig, Standardization};
use crate::quant::{self, QuantConfig, QuantMode, RowSet};
use crate::train::{self, Rows, TrainConfig};
use crate::writer::AlignedBytes;

/// `floe anomaly` subcommands.
#[derive(Subcommand, Debug)]
pub enum AnomalyCmd {
    /// Train on normal rows, calibrate a threshold at a false-alarm rate, write the model.
    Fit(FitArgs),
    /// Flow vs full-covariance GMM vs isolation forest on one labelled file, over seeds.
    Eval(EvalArgs),
    /// `eval` on every bundled ADBench set: the README table.
    Bench(BenchArgs),
    /// A univariate stream: learn windows of a normal series, score a test series.
    Stream(StreamArgs),
}

/// Flow and training settings shared by the subcommands.
#[derive(Args, Debug, Clone)]
pub struct FlowArgs {
    /// Coupling steps.
    #[arg(long, default_value_t = 4)]
    pub steps: usize,
    /// Conditioner width.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Spline bins.
    #[arg(long, default_value_t = 8)]
    pub bins: usize,
    /// Maximum epochs.
    #[arg(long, default_value_t = 60)]
    pub epochs: usize,
    /// Early-stopping patience (epochs).
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl FlowArgs {
    fn configs(&self, dim: usize, seed: u64) -> (FlowConfig, TrainConfig) {
        let flow =
            FlowConfig { hidden: self.hidden, steps: self.steps, bins: self.bins, seed, ..FlowConfig::spline(dim) };
        let tc = TrainConfig {
            epochs: self.epochs,
            patience: self.patience,
            seed,
            val_fraction: anomaly::CALIB_FRACTION,
            test_fraction: anomaly::TEST_FRACTION,
            ..TrainConfig::default()
        };
        (flow, tc)
    }
}

/// A labelled data file.
#[derive(Args, Debug, Clone)]
pub struct LabelledData {
    /// Data file: an .npz with the data array and a labels array (`X` and `y`).
    #[arg(long)]
    pub data: PathBuf,
    /// Array inside an .npz (default X).
    #[arg(long)]
    pub array: Option<String>,
    /// Labels array inside an .npz (default y).
    #[arg(long)]
    pub labels: Option<String>,
    /// The label of normal rows; every other label is an anomaly.
    #[arg(long, default_value_t = 0)]
    pub normal_label: i64,
}

impl LabelledData {
    fn spec(&self) -> DataSpec {
        DataSpec { array: self.array.clone(), labels: self.labels.clone(), ..DataSpec::file(&self.data) }
    }
}

/// `floe anomaly fit`.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// The data.
    #[command(flatten)]
    pub data: LabelledData,
    /// False-alarm rate the threshold is calibrated for.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Write an int8 or w8 model (threshold calibrated on it).
    #[arg(long, value_enum)]
    pub quantize: Option<QuantMode>,
    /// Seed (split, initialization, batches).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Flow settings.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// `floe anomaly eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The data.
    #[command(flatten)]
    pub data: LabelledData,
    /// Seeds to average over (0, 1, …).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// False-alarm rate of the thresholds.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Also evaluate the int8 model.
    #[arg(long)]
    pub int8: bool,
    /// Flow settings.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// `floe anomaly bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder of ADBench .npz files.
    #[arg(long, default_value = "data/adbench")]
    pub dir: PathBuf,
    /// Seeds to average over.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// False-alarm rate of the thresholds.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Flow settings.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// `floe anomaly stream`.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Normal series (CSV with a header).
    #[arg(long)]
    pub train: PathBuf,
    /// Series to score (CSV with a header).
    #[arg(long)]
    pub test: PathBuf,
    /// Column holding the signal.
    #[arg(long, default_value = "value")]
    pub column: String,
    /// Column holding 0/1 anomaly labels in the test series, if any.
    #[arg(long, default_value = "is_anomaly")]
    pub label_column: String,
    /// Samples per window.
    #[arg(long, default_value_t = 32)]
    pub window: u16,
    /// Model the window's first differences instead of its values.
    #[arg(long)]
    pub diff: bool,
    /// False-alarm rate of the threshold (on held-out windows of the normal series).
    #[arg(long, default_value_t = 0.001)]
    pub fpr: f64,
    /// Write an int8 or w8 model.
    #[arg(long, value_enum)]
    pub quantize: Option<QuantMode>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the test series as raw little-endian f32 (firmware input).
    #[arg(long)]
    pub series_out: Option<PathBuf>,
    /// Flow settings.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// Run an anomaly subcommand.
pub fn run(cmd: AnomalyCmd) -> Result<()> {
    match cmd {
        AnomalyCmd::Fit(a) => fit_cmd(a),
        AnomalyCmd::Eval(a) => eval_cmd(a),
        AnomalyCmd::Bench(a) => bench_cmd(a),
        AnomalyCmd::Stream(a) => stream_cmd(a),
    }
}

fn check_fpr(fpr: f64) -> Result<()> {
    if fpr > 0.0 && fpr < 1.0 {
        Ok(())
    } else {
        Err(FloeError::Config(format!("--fpr must be in (0, 1), got {fpr}")))
    }
}

fn write(out: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FloeError::io(parent, e))?;
    }
    std::fs::write(out, bytes).map_err(|e| FloeError::io(out, e))?;
    let back = std::fs::read(out).map_err(|e| FloeError::io(out, e))?;
    Model::load(&AlignedBytes::new(&back)).map_err(|err| FloeError::Runtime { path: out.into(), err })?;
    Ok(())
}

fn print_metrics(name: &str, m: &Metrics) {
    println!(
        "  {name:<14} AUROC {:.4}  AUPRC {:.4}  at threshold: precision {:.3} recall {:.3} (test false-alarm rate {:.4})",
        m.auroc, m.auprc, m.precision, m.recall, m.fpr
    );
}

fn fit_cmd(a: FitArgs) -> Result<()> {
    check_fpr(a.fpr)?;
    let s = split(&a.data.spec(), a.data.normal_label, a.seed)?;
    let (fc, tc) = a.flow.configs(s.prep.d, a.seed);
    let fitted = fit_flow(&s, &fc, &tc, a.fpr, a.quantize, PARITY_TOLERANCE, !a.flow.quiet)?;
    let model = fitted.quantized.as_ref().map_or(&fitted.f32_model, |(m, _)| m);
    let bytes = model.to_bytes()?;
    write(&a.out, &bytes)?;
    let t = model.anomaly.map_or(f32::NAN, |t| t.threshold);
    println!(
        "wrote {} ({} bytes{}): threshold {t:.4} nats at false-alarm rate {} on {} calibration rows",
        a.out.display(),
        bytes.len(),
        a.quantize.map_or(String::new(), |q| format!(", {}", q.name())),
        a.fpr,
        s.calib.x.len() / s.prep.d
    );
    println!(
        "test set: {} held-out normal rows + {} anomalies",
        s.test_normal.x.len() / s.prep.d,
        s.anomalies.x.len() / s.prep.d
    );
    print_metrics("flow f32", &evaluate(&fitted.f32_model, &s)?);
    if let Some((qm, _)) = &fitted.quantized {
        print_metrics("flow quantized", &evaluate(qm, &s)?);
    }
    Ok(())
}

/// One set's results over seeds: flow f32, flow int8, GMM, isolation forest.
struct SetResult {
    /// Largest Burn-vs-runtime |log p| difference over seeds, and the rows beyond
    /// the freeze tolerance (evaluation writes no file, so it reports instead of
    /// refusing).
    parity: (f64, usize),
    flow: Vec<Metrics>,
    int8: Vec<Metrics>,
    gmm: Vec<Metrics>,
    gmm_k: Vec<usize>,
    forest: Vec<Metrics>,
    seconds: f64,
}

fn eval_set(data: &LabelledData, seeds: u64, fpr: f64, int8: bool, flow: &FlowArgs) -> Result<SetResult> {
    check_fpr(fpr)?;
    if seeds == 0 {
        return Err(FloeError::Config("--seeds must be at least 1".into()));
    }
    let start = Instant::now();
    let mut r = SetResult {
        parity: (0.0, 0),
        flow: vec![],
        int8: vec![],
        gmm: vec![],
        gmm_k: vec![],
        forest: vec![],
        seconds: 0.0,
    };
    for seed in 0..seeds {
        let s = split(&data.spec(), data.normal_label, seed)?;
        let (fc, tc) = flow.configs(s.prep.d, seed);
        // Evaluation writes no file: measure parity instead of enforcing it.
        let fitted = fit_flow(&s, &fc, &tc, fpr, int8.then_some(QuantMode::Int8), f64::INFINITY, !flow.quiet)?;
        r.parity.0 = r.parity.0.max(fitted.parity.max_abs_diff);
        r.parity.1 += fitted.parity.beyond_tolerance;
        r.flow.push(evaluate(&fitted.f32_model, &s)?);
        if let Some((qm, _)) = &fitted.quantized {
            r.int8.push(evaluate(qm, &s)?);
        }
        let (g, k, f) = baselines(&s, fpr, seed);
        r.gmm.push(g);
        r.gmm_k.push(k);
        r.forest.push(f);
    }
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}

fn summary(v: &[Metrics]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let f = |g: fn(&Metrics) -> f64| {
        let (m, s) = mean_std(&v.iter().map(g).collect::<Vec<_>>());
        format!("{m:.3}±{s:.3}")
    };
    format!("{} | {} | {:.2}/{:.2}", f(|m| m.auroc), f(|m| m.auprc), avg(v, |m| m.precision), avg(v, |m| m.recall))
}

fn avg(v: &[Metrics], g: fn(&Metrics) -> f64) -> f64 {
    mean_std(&v.iter().map(g).collect::<Vec<_>>()).0
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let r = eval_set(&a.data, a.seeds, a.fpr, a.int8, &a.flow)?;
    println!(
        "{} over {} seeds (false-alarm rate {}), {:.0} s; Burn vs runtime max |log p diff| {:.1e} ({} test rows beyond \
         the freeze tolerance)",
        a.data.data.display(),
        a.seeds,
        a.fpr,
        r.seconds,
        r.parity.0,
        r.parity.1
    );
    println!("| detector | AUROC | AUPRC | precision/recall at threshold |");
    println!("|---|---|---|---|");
    println!("| flow f32 | {} |", summary(&r.flow));
    if a.int8 {
        println!("| flow int8 | {} |", summary(&r.int8));
    }
    println!("| GMM (full cov., K by BIC: {:?}) | {} |", r.gmm_k, summary(&r.gmm));
    println!("| isolation forest | {} |", summary(&r.forest));
    Ok(())
}

/// The bundled ADBench sets, in the order of data/README.md.
pub const ADBENCH: [&str; 7] =
    ["38_thyroid", "6_cardio", "32_shuttle", "28_pendigits", "23_mammography", "30_satellite", "4_breastw"];

fn bench_cmd(a: BenchArgs) -> Result<()> {
    let start = Instant::now();
    println!(
        "ADBench, semi-supervised protocol (45 % of normal rows train, 15 % calibrate, 40 % + all anomalies test), \
         {} seeds, thresholds at false-alarm rate {}",
        a.seeds, a.fpr
    );
    println!("AUROC, AUPRC: mean±std over seeds; P/R: precision/recall at the calibrated threshold (mean)\n");
    println!(
        "| set | rows x dims | flow f32 AUROC | AUPRC | P/R | flow int8 AUROC | AUPRC | P/R | int8 − f32 AUROC | \
         GMM AUROC | AUPRC | P/R | iForest AUROC | AUPRC | P/R | parity |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in ADBENCH {
        let data = LabelledData { data: a.dir.join(format!("{name}.npz")), array: None, labels: None, normal_label: 0 };
        let t = data::load(&data.spec())?;
        let r = eval_set(&data, a.seeds, a.fpr, true, &a.flow)?;
        let delta: Vec<f64> = r.int8.iter().zip(&r.flow).map(|(q, f)| q.auroc - f.auroc).collect();
        let (dm, _) = mean_std(&delta);
        let worst = delta.iter().map(|d| d.abs()).fold(0.0f64, f64::max);
        println!(
            "| {name} | {} x {} | {} | {} | {dm:+.4} (max |Δ| {worst:.4}) | {} | {} | {:.0e} ({}) |",
            t.n,
            t.d,
            summary(&r.flow),
            summary(&r.int8),
            summary(&r.gmm),
            summary(&r.forest),
            r.parity.0,
            r.parity.1
        );
    }
    println!("\ntotal {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The `column` of a CSV as a series, and its 0/1 labels if `label_column` exists.
fn read_series(path: &Path, column: &str, label_column: &str) -> Result<(Vec<f32>, Option<Vec<bool>>)> {
    let t = data::load(&DataSpec { columns: Some(vec![column.to_owned()]), ..DataSpec::file(path) })?;
    let header = std::fs::read_to_string(path).map_err(|e| FloeError::io(path, e))?;
    let has_labels = header.lines().next().is_some_and(|h| h.split(',').any(|c| c.trim() == label_column));
    let labels = if has_labels {
        let l = data::load(&DataSpec { columns: Some(vec![label_column.to_owned()]), ..DataSpec::file(path) })?;
        Some(l.x.iter().map(|&v| v != 0.0).collect())
    } else {
        None
    };
    Ok((t.x, labels))
}

/// History the host-side stream scorer holds (values).
const STREAM_CAPACITY: usize = 1024;

/// Sliding windows (stride 1) of a univariate series, as model rows.
pub fn windows(series: &[f32], layout: StreamLayout) -> Vec<f32> {
    let w = layout.window as usize;
    let mut out = Vec::new();
    for end in w..=series.len() {
        let win = &series[end - w..end];
        if layout.differences {
            out.extend(win.windows(2).map(|p| p[1] - p[0]));
        } else {
            out.extend_from_slice(win);
        }
    }
    out
}

/// Scores of every window of `series` through the runtime's `Stream`, as a
/// device would compute them: `(index of the window's last sample, score, alarm)`.
pub fn stream_scores(bytes: &[u8], series: &[f32]) -> Result<Vec<(usize, f32, bool)>> {
    let buf = AlignedBytes::new(bytes);
    let err = |err| FloeError::Runtime { path: "<stream model>".into(), err };
    let m = Model::load(&buf).map_err(err)?;
    let mut st = floe_runtime::Stream::<STREAM_CAPACITY>::new(&m).map_err(err)?;
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut out = Vec::new();
    for (t, &v) in series.iter().enumerate() {
        if let Some(s) = st.push(&m, &[v], &mut scratch).map_err(err)? {
            out.push((t, s.nats, s.anomaly.unwrap_or(false)));
        }
    }
    Ok(out)
}

fn stream_cmd(a: StreamArgs) -> Result<()> {
    check_fpr(a.fpr)?;
    let layout = StreamLayout { window: a.window, channels: 1, differences: a.diff };
    if a.window < if a.diff { 3 } else { 2 } {
        return Err(FloeError::Config("--window must leave at least 2 model dimensions".into()));
    }
    if layout.history_len() > STREAM_CAPACITY {
        return Err(FloeError::Config(format!(
            "--window {} is longer than the {STREAM_CAPACITY} samples the stream scorer holds",
            a.window
        )));
    }
    let (train_series, _) = read_series(&a.train, &a.column, &a.label_column)?;
    let (test_series, labels) = read_series(&a.test, &a.column, &a.label_column)?;
    let d = layout.dim();
    let all = windows(&train_series, layout);
    let n = all.len() / d;
    if n < 50 {
        return Err(FloeError::Data(format!(
            "{}: {} windows of {} samples; need at least 50",
            a.train.display(),
            n,
            a.window
        )));
    }
    // Time-ordered split: the last 20 % of the normal windows calibrate (and stop
    // early), after a gap of W − 1 windows so no calibration window shares a
    // sample with a training window.
    let n_train = n * 4 / 5;
    let gap = a.window as usize - 1;
    if n_train + gap >= n {
        return Err(FloeError::Data(format!("{}: too short for --window {}", a.train.display(), a.window)));
    }
    let tr = &all[..n_train * d];
    let ca = &all[(n_train + gap) * d..];
    let xs = Standardization::fit(tr, d);
    let rows = |x: &[f32]| Rows { x: xs.apply(x), c: vec![], n: x.len() / d };
    let (fc, mut tc) = a.flow.configs(d, a.seed);
    tc.dequantize = true;
    let (model, history) = train::train(&fc, &tc, &xs, &rows(tr), &rows(ca), !a.flow.quiet)?;
    let cs = Standardization::identity(0);
    let (f32_bytes, parity) = crate::freeze::freeze(&model, &xs, &cs, ca, &[], PARITY_TOLERANCE)?;
    let mut frozen = model.frozen(&xs, &cs)?;
    frozen.stream = Some(layout);
    if let Some(mode) = a.quantize {
        let q = quant::quantize(
            &frozen,
            QuantConfig { mode, max_layer_cost: 0.01 },
            RowSet { x: tr, c: &[] },
            RowSet { x: ca, c: &[] },
            RowSet { x: ca, c: &[] },
        )?;
        frozen = q.model;
        frozen.stream = Some(layout);
    }
    // Threshold on the calibration windows, through the same runtime.
    let cal_scores: Vec<f64> = {
        let buf = AlignedBytes::new(&frozen.to_bytes()?);
        let m = Model::load(&buf).map_err(|err| FloeError::Runtime { path: "<stream model>".into(), err })?;
        crate::freeze::runtime_log_prob(&m, ca, &[])
            .map_err(|err| FloeError::Runtime { path: "<stream model>".into(), err })?
            .iter()
            .map(|&v| anomaly::score_of(v))
            .collect()
    };
    let thr = threshold_at(&cal_scores, a.fpr);
    frozen.anomaly = Some(AnomalyThreshold { threshold: thr as f32, target_fpr: a.fpr as f32 });
    let bytes = frozen.to_bytes()?;
    write(&a.out, &bytes)?;
    if let Some(p) = &a.series_out {
        let raw: Vec<u8> = test_series.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(p, raw).map_err(|e| FloeError::io(p, e))?;
    }

    let scored = stream_scores(&bytes, &test_series)?;
    let Some((top_t, top_s, _)) = scored.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Err(FloeError::Data(format!(
            "{}: {} samples, fewer than one window of {}",
            a.test.display(),
            test_series.len(),
            a.window
        )));
    };
    let alarms: Vec<usize> = scored.iter().filter(|s| s.2).map(|s| s.0).collect();
    println!(
        "stream model: window {} ({}), {} training windows, {} calibration windows, {} epochs; parity max |diff| {:.1e}",
        a.window,
        if a.diff { "first differences" } else { "values" },
        n_train,
        n - n_train - gap,
        history.val_nll.len(),
        parity.max_abs_diff
    );
    println!(
        "wrote {} ({} bytes{}; f32 {} bytes): threshold {thr:.3} nats at false-alarm rate {} on held-out normal windows",
        a.out.display(),
        bytes.len(),
        a.quantize.map_or(String::new(), |q| format!(", {}", q.name())),
        f32_bytes.len(),
        a.fpr
    );
    println!(
        "test series: {} samples, {} windows scored through floe_runtime::Stream",
        test_series.len(),
        scored.len()
    );
    println!("  top score       {top_s:.3} nats at sample {top_t} (the window ending there)");
    if let Some(l) = &labels {
        // Contiguous labelled runs; the top window hits when it ends within ±100
        // samples of one of them.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (t, _) in l.iter().enumerate().filter(|(_, &v)| v) {
            match runs.last_mut() {
                Some(r) if r.1 + 1 == t => r.1 = t,
                _ => runs.push((t, t)),
            }
        }
        let near = |t: usize| runs.iter().any(|&(lo, hi)| t + 100 >= lo && t <= hi + 100);
        for &(lo, hi) in &runs {
            println!(
                "  labelled anomaly samples {lo}–{hi}: top score {} ({} samples from the region; ±100 counts as a hit)",
                if top_t + 100 >= lo && top_t <= hi + 100 { "HIT" } else { "MISS" },
                lo.saturating_sub(top_t).max(top_t.saturating_sub(hi))
            );
        }
        if !runs.is_empty() {
            let in_region = alarms.iter().filter(|&&t| near(t)).count();
            println!(
                "  alarms          {} windows above the threshold ({} within ±100 of a labelled region, {} elsewhere)",
                alarms.len(),
                in_region,
                alarms.len() - in_region
            );
        }
    }
    Ok(())
}
