//! The `floe` command line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use floe_runtime::{Model, Rng};
use serde::Deserialize;

use crate::data::{self, DataSpec};
use crate::error::{FloeError, Result};
use crate::freeze::{self, runtime_log_prob, PARITY_TOLERANCE};
use crate::model::{BaseChoice, FlowConfig, PermChoice, TransformKind};
use crate::pipeline::{self, raw_rows};
use crate::plot;
use crate::quant::{self, QuantConfig, QuantMode, RowSet};
use crate::train::{self, log_prob_rows, nll_per_dim, Checkpoint, TrainConfig};
use crate::writer::AlignedBytes;

/// floe: train normalizing flows, freeze them into checked model files, evaluate
/// them exactly with the no_std runtime.
#[derive(Parser, Debug)]
#[command(name = "floe", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Train a spline flow on bundled real data, freeze it, check parity, report.
    Demo(DemoArgs),
    /// Train a flow on a data file; writes a checkpoint directory.
    Train(TrainArgs),
    /// Write a model file from a checkpoint and verify it with the runtime.
    Freeze(FreezeArgs),
    /// NLL of a data file under a model file, through the runtime.
    Eval(EvalArgs),
    /// Describe a model file: header, layers, parameters, bytes, scratch.
    Inspect(InspectArgs),
    /// Draw samples from a model file with the runtime's seeded sampler.
    Sample(SampleArgs),
    /// Plot a checkpoint: training curve and 2-D marginals of data vs samples.
    Plot(PlotArgs),
    /// Anomaly detection: fit with a calibrated threshold, evaluate against
    /// baselines, benchmark the bundled sets, score a stream.
    #[command(subcommand)]
    Anomaly(crate::anomaly_cli::AnomalyCmd),
}

/// `floe demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output directory (checkpoint, model file, plots).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Maximum epochs.
    #[arg(long, default_value_t = 60)]
    pub epochs: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Where the data are.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data file: .csv (header row), .npy or .npz.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Array inside an .npz (default X).
    #[arg(long)]
    pub array: Option<String>,
    /// CSV columns to use, comma-separated names (default all).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Keep only rows whose label equals this (e.g. 0 for the normal rows of an
    /// ADBench set).
    #[arg(long)]
    pub only_label: Option<i64>,
}

/// `floe train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data selection.
    #[command(flatten)]
    pub data: DataArgs,
    /// TOML settings file with optional [data], [flow] and [train] tables; flags
    /// override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The last N columns are the context (conditional flow).
    #[arg(long)]
    pub context_dim: Option<usize>,
    /// Transform of each step.
    #[arg(long, value_enum)]
    pub transform: Option<TransformKind>,
    /// Number of steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Conditioner width.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Conditioner depth (hidden layers, or residual blocks with --residual).
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Residual conditioners (NSF ResidualNet).
    #[arg(long)]
    pub residual: bool,
    /// tanh activations instead of ReLU.
    #[arg(long)]
    pub tanh: bool,
    /// Spline bins.
    #[arg(long)]
    pub bins: Option<usize>,
    /// Spline tail bound B (identity outside [-B, B]).
    #[arg(long)]
    pub tail_bound: Option<f32>,
    /// Base distribution.
    #[arg(long, value_enum)]
    pub base: Option<BaseChoice>,
    /// Permutation between steps.
    #[arg(long, value_enum)]
    pub permutation: Option<PermChoice>,
    /// No ActNorm layers.
    #[arg(long)]
    pub no_actnorm: bool,
    /// No LU linear layers.
    #[arg(long)]
    pub no_lu: bool,
    /// Maximum epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Early-stopping patience (epochs).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Gradient clipping (per-tensor L2 norm).
    #[arg(long)]
    pub grad_clip: Option<f32>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `floe freeze`.
#[derive(Args, Debug)]
pub struct FreezeArgs {
    /// Checkpoint directory written by `floe train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Largest allowed |log p_burn - log p_runtime| per held-out row, nats.
    #[arg(long, default_value_t = PARITY_TOLERANCE)]
    pub tolerance: f64,
    /// Quantize the conditioners: `int8` (int8 weights and activations, int32
    /// accumulation) or `w8` (int8 weights, f32 activations).
    #[arg(long, value_enum)]
    pub quantize: Option<QuantMode>,
    /// Training rows that calibrate the int8 activation ranges.
    #[arg(long, default_value_t = 1000)]
    pub calib: usize,
    /// A layer stays f32 when quantizing it alone raises the validation NLL by
    /// more than this many nats/dim.
    #[arg(long, default_value_t = 0.01)]
    pub max_layer_cost: f64,
}

/// `floe eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Data selection.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `floe inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Model file.
    pub model: PathBuf,
}

/// `floe sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(short, long, default_value_t = 1000)]
    pub n: usize,
    /// Seed of the runtime's PRNG.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Context values (comma-separated) for a conditional model.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub context: Option<Vec<f32>>,
    /// Output: .npy or .csv.
    #[arg(long)]
    pub out: PathBuf,
}

/// `floe plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Model file to sample from (default: freeze the checkpoint in memory).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

/// Settings file layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    data: Option<DataSpec>,
    flow: Option<FlowConfig>,
    train: Option<TrainConfig>,
}

/// Run the CLI.
pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Demo(a) => demo(a),
        Cmd::Train(a) => train_cmd(a).map(|_| ()),
        Cmd::Freeze(a) => freeze_cmd(a),
        Cmd::Eval(a) => eval_cmd(a),
        Cmd::Inspect(a) => inspect_cmd(a),
        Cmd::Sample(a) => sample_cmd(a),
        Cmd::Plot(a) => plot_cmd(a),
        Cmd::Anomaly(c) => crate::anomaly_cli::run(c),
    }
}

fn spec_from(a: &DataArgs, base: Option<DataSpec>) -> Result<DataSpec> {
    let mut spec = match (&a.data, base) {
        (Some(p), _) => DataSpec::file(p),
        (None, Some(s)) => s,
        (None, None) => return Err(FloeError::Config("no data: give --data FILE (or [data] in --config)".into())),
    };
    if a.array.is_some() {
        spec.array = a.array.clone();
    }
    if a.columns.is_some() {
        spec.columns = a.columns.clone();
    }
    if a.only_label.is_some() {
        spec.only_label = a.only_label;
    }
    Ok(spec)
}

fn read_model(path: &Path) -> Result<AlignedBytes> {
    let b = std::fs::read(path).map_err(|e| FloeError::io(path, e))?;
    let buf = AlignedBytes::new(&b);
    Model::load(&buf).map_err(|err| FloeError::Runtime { path: path.into(), err })?;
    Ok(buf)
}

fn load_model<'a>(path: &Path, buf: &'a AlignedBytes) -> Result<Model<'a>> {
    Model::load(buf).map_err(|err| FloeError::Runtime { path: path.into(), err })
}

/// Train from arguments; returns the checkpoint directory.
pub fn train_cmd(a: TrainArgs) -> Result<PathBuf> {
    let file: SettingsFile = match &a.config {
        Some(p) => {
            let s = std::fs::read_to_string(p).map_err(|e| FloeError::io(p, e))?;
            toml::from_str(&s).map_err(|e| FloeError::Parse { path: p.clone(), msg: e.to_string() })?
        }
        None => SettingsFile::default(),
    };
    let spec = spec_from(&a.data, file.data)?;
    let mut tc = file.train.unwrap_or_default();
    macro_rules! set {
        ($dst:expr, $src:expr) => {
            if let Some(v) = $src {
                $dst = v;
            }
        };
    }
    set!(tc.epochs, a.epochs);
    set!(tc.batch_size, a.batch_size);
    set!(tc.lr, a.lr);
    set!(tc.patience, a.patience);
    set!(tc.grad_clip, a.grad_clip);
    set!(tc.seed, a.seed);
    tc.min_lr = tc.min_lr.min(tc.lr);
    let context_dim = a.context_dim.or(file.flow.as_ref().map(|f| f.context_dim)).unwrap_or(0);
    let prep = pipeline::prepare(&spec, context_dim, &tc)?;
    let mut fc = file.flow.unwrap_or_else(|| FlowConfig::spline(prep.d));
    fc.dim = prep.d;
    fc.context_dim = prep.c;
    set!(fc.transform, a.transform);
    set!(fc.steps, a.steps);
    set!(fc.hidden, a.hidden);
    set!(fc.blocks, a.blocks);
    set!(fc.bins, a.bins);
    set!(fc.tail_bound, a.tail_bound);
    set!(fc.base, a.base);
    set!(fc.permutation, a.permutation);
    fc.residual |= a.residual;
    fc.tanh |= a.tanh;
    fc.actnorm &= !a.no_actnorm;
    fc.lu &= !a.no_lu;
    fc.seed = tc.seed;
    let (model, history) = train::train(&fc, &tc, &prep.xs, &prep.train, &prep.val, !a.quiet)?;
    let test_nll = nll_per_dim(&log_prob_rows(&model, &prep.test, &train::cpu()), &prep.xs);
    let ck = Checkpoint { flow: fc, train: tc, data: spec, x_std: prep.xs, c_std: prep.cs, history };
    ck.save(&model, &a.out)?;
    println!(
        "trained {} epochs in {:.1} s (best epoch {}): test NLL {:.4} nats/dim; checkpoint {}",
        ck.history.val_nll.len(),
        ck.history.seconds,
        ck.history.best_epoch + 1,
        test_nll,
        a.out.display()
    );
    Ok(a.out)
}

/// Freeze a checkpoint, verifying parity on its held-out test rows.
fn write_model(out: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FloeError::io(parent, e))?;
    }
    std::fs::write(out, bytes).map_err(|e| FloeError::io(out, e))?;
    // Read back what is on disk: the file itself must load.
    read_model(out)?;
    Ok(())
}

fn freeze_checkpoint(dir: &Path, out: &Path, tol: f64) -> Result<(freeze::Parity, usize)> {
    let (ck, model) = Checkpoint::load(dir)?;
    let prep = pipeline::prepare(&ck.data, ck.flow.context_dim, &ck.train)?;
    let (x, c) = raw_rows(&prep.table, &prep.split.test, prep.c);
    let (bytes, parity) = freeze::freeze(&model, &ck.x_std, &ck.c_std, &x, &c, tol)?;
    write_model(out, &bytes)?;
    Ok((parity, bytes.len()))
}

/// Rows of the data file whose label differs from the training label (the
/// anomalies of an anomaly-detection set), in data units.
fn anomaly_rows(spec: &DataSpec, context_dim: usize) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    let Some(normal) = spec.only_label else { return Ok(None) };
    let t = data::load(&DataSpec { only_label: None, ..spec.clone() })?;
    let Some(labels) = &t.labels else { return Ok(None) };
    let idx: Vec<usize> = (0..t.n).filter(|&i| labels[i] != normal).collect();
    if idx.is_empty() {
        return Ok(None);
    }
    Ok(Some(raw_rows(&t, &idx, context_dim)))
}

/// AUROC of `-log p` for held-out normal rows against anomalies.
fn model_auroc(bytes: &[u8], normal: RowSet<'_>, anomalies: RowSet<'_>) -> Result<Option<f64>> {
    let buf = AlignedBytes::new(bytes);
    let m = load_model(Path::new("<model>"), &buf)?;
    let err = |err| FloeError::Runtime { path: "<model>".into(), err };
    let a = runtime_log_prob(&m, normal.x, normal.c).map_err(err)?;
    let b = runtime_log_prob(&m, anomalies.x, anomalies.c).map_err(err)?;
    let scores: Vec<f64> = a.iter().chain(&b).map(|v| -v).collect();
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= a.len()).collect();
    Ok(quant::auroc(&scores, &labels))
}

fn freeze_quantized(a: &FreezeArgs, mode: QuantMode) -> Result<()> {
    let (ck, model) = Checkpoint::load(&a.checkpoint)?;
    let prep = pipeline::prepare(&ck.data, ck.flow.context_dim, &ck.train)?;
    let rows = |idx: &[usize]| raw_rows(&prep.table, idx, prep.c);
    let (tx, tc) = rows(&prep.split.test);
    let (f32_bytes, parity) = freeze::freeze(&model, &ck.x_std, &ck.c_std, &tx, &tc, a.tolerance)?;
    let frozen = model.frozen(&ck.x_std, &ck.c_std)?;
    let calib_idx: Vec<usize> = prep.split.train.iter().copied().take(a.calib.max(1)).collect();
    let (cx, cc) = rows(&calib_idx);
    let (vx, vc) = rows(&prep.split.val);
    let test = RowSet { x: &tx, c: &tc };
    let q = quant::quantize(
        &frozen,
        QuantConfig { mode, max_layer_cost: a.max_layer_cost },
        RowSet { x: &cx, c: &cc },
        RowSet { x: &vx, c: &vc },
        test,
    )?;
    write_model(&a.out, &q.bytes)?;
    let test_nll = (quant::nll(&frozen, test)?, quant::nll(&q.model, test)?);
    println!(
        "wrote {} ({} bytes, {}); the f32 model reproduces Burn on {} held-out rows (max |diff| {:.2e} nats)",
        a.out.display(),
        q.bytes.len(),
        mode.name(),
        parity.rows,
        parity.max_abs_diff
    );
    println!();
    let (fb, qb) = (f32_bytes.len(), q.bytes.len());
    println!("  file bytes      f32 {fb} -> {} {qb} ({:.1} % of f32)", mode.name(), 100.0 * qb as f64 / fb as f64);
    println!(
        "  test NLL        f32 {:.5} -> quantized {:.5} nats/dim (+{:.5}) over {} rows",
        test_nll.0,
        test_nll.1,
        test_nll.1 - test_nll.0,
        tx.len() / prep.d
    );
    println!("  val NLL         f32 {:.5} -> quantized {:.5} nats/dim", q.val_nll.0, q.val_nll.1);
    if let Some((ax, ac)) = anomaly_rows(&ck.data, prep.c)? {
        let an = RowSet { x: &ax, c: &ac };
        let (fa, qa) = (model_auroc(&f32_bytes, test, an)?, model_auroc(&q.bytes, test, an)?);
        if let (Some(fa), Some(qa)) = (fa, qa) {
            println!(
                "  AUROC           f32 {fa:.4} -> quantized {qa:.4} ({} held-out normal rows vs {} anomalies)",
                tx.len() / prep.d,
                ax.len() / prep.d
            );
        }
    }
    println!(
        "  bit-exact       log p of {} held-out rows: runtime (quantized file) = simulated quantization \
         (f32 model + reference {} arithmetic); {} conditioner outputs compared",
        q.checked_rows,
        mode.name(),
        q.checked_values
    );
    println!(
        "  layers (a layer stays f32 when quantizing it alone costs > {} nats/dim on validation):",
        a.max_layer_cost
    );
    for ch in &q.choices {
        println!(
            "    {:>3} {:<16} {:<5} cost {:+.5} nats/dim, conditioner {} -> {} bytes{}{}",
            ch.layer,
            ch.kind,
            ch.mode.map_or("f32", QuantMode::name),
            ch.cost,
            ch.bytes.0,
            if ch.mode.is_some() { ch.bytes.1 } else { ch.bytes.0 },
            if ch.note.is_empty() { "" } else { "  -- " },
            ch.note
        );
    }
    Ok(())
}

fn freeze_cmd(a: FreezeArgs) -> Result<()> {
    if let Some(mode) = a.quantize {
        return freeze_quantized(&a, mode);
    }
    let (p, len) = freeze_checkpoint(&a.checkpoint, &a.out, a.tolerance)?;
    println!(
        "wrote {} ({len} bytes); runtime reproduces Burn on {} held-out rows: max |diff| {:.2e} nats (tolerance {:.0e} + \
         1e-6 |log p|; {} rows within their f32 sensitivity allowance)",
        a.out.display(),
        p.rows,
        p.max_abs_diff,
        a.tolerance,
        p.ill_conditioned
    );
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let buf = read_model(&a.model)?;
    let model = load_model(&a.model, &buf)?;
    let spec = spec_from(&a.data, None)?;
    let t = data::load(&spec)?;
    let (d, c) = (model.dim(), model.context_dim());
    if t.d != d + c {
        return Err(FloeError::Data(format!(
            "{}: {} columns, the model needs {} ({} data + {} context)",
            spec.path.display(),
            t.d,
            d + c,
            d,
            c
        )));
    }
    let idx: Vec<usize> = (0..t.n).collect();
    let (x, ctx) = raw_rows(&t, &idx, c);
    let start = Instant::now();
    let lp = runtime_log_prob(&model, &x, &ctx).map_err(|err| FloeError::Runtime { path: a.model.clone(), err })?;
    let secs = start.elapsed().as_secs_f64();
    let mean = lp.iter().sum::<f64>() / lp.len() as f64;
    println!("rows            {}", lp.len());
    println!("mean log p      {mean:.4} nats");
    println!("NLL             {:.4} nats/dim", -mean / d as f64);
    println!("runtime         {:.1} us/row", secs * 1e6 / lp.len() as f64);
    Ok(())
}

/// Human-readable description of a model file.
pub fn describe(model: &Model<'_>) -> Result<String> {
    use std::fmt::Write;
    let h = model.header();
    let mut s = String::new();
    let w = |s: &mut String, a: std::fmt::Arguments| {
        let _ = s.write_fmt(a);
    };
    w(&mut s, format_args!("floe model, format version {}\n", h.version));
    w(&mut s, format_args!("  file            {} bytes (CRC-32 ok)\n", h.file_len));
    w(&mut s, format_args!("  dim             {}\n  context dim     {}\n", h.dim, h.context_dim));
    w(&mut s, format_args!("  base            {:?}\n", h.base));
    w(&mut s, format_args!("  layers          {}\n  tensors         {}\n", h.n_layers, h.n_tensors));
    w(&mut s, format_args!("  scratch         {} f32 = {} bytes\n", h.scratch_len, h.scratch_len * 4));
    let (mean, std) = model.standardization();
    w(&mut s, format_args!("  standardization mean {:?}\n                  std  {:?}\n", mean, std));
    w(
        &mut s,
        format_args!(
            "  {:>3} {:<16} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>6} {:>5}\n",
            "#", "kind", "split", "hidden", "depth", "bins", "params", "bytes", "work", "dtype"
        ),
    );
    let (mut tp, mut tb) = (0, 0);
    for i in 0..model.n_layers() {
        let li = model.layer_info(i).map_err(|err| FloeError::Runtime { path: "<model>".into(), err })?;
        let r = li.record;
        let depth = if r.kind.has_conditioner() {
            format!("{}{}", r.blocks, if r.flags & floe_runtime::format::FLAG_RESIDUAL != 0 { "r" } else { "" })
        } else {
            "-".into()
        };
        let dtype = if !r.kind.has_conditioner() {
            "f32"
        } else if r.flags & floe_runtime::format::FLAG_INT8 != 0 {
            "int8"
        } else if r.flags & floe_runtime::format::FLAG_W8 != 0 {
            "w8"
        } else {
            "f32"
        };
        w(
            &mut s,
            format_args!(
                "  {:>3} {:<16} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>6} {:>5}\n",
                i,
                r.kind.name(),
                r.split,
                r.hidden,
                depth,
                r.bins,
                li.n_params,
                li.n_bytes,
                li.work,
                dtype
            ),
        );
        tp += li.n_params;
        tb += li.n_bytes;
    }
    w(&mut s, format_args!("  total layer parameters {tp} ({tb} bytes of tensor data)\n"));
    Ok(s)
}

fn inspect_cmd(a: InspectArgs) -> Result<()> {
    let buf = read_model(&a.model)?;
    let model = load_model(&a.model, &buf)?;
    print!("{}", describe(&model)?);
    Ok(())
}

/// Draw `n` samples with the runtime.
pub fn sample_rows(
    model: &Model<'_>,
    n: usize,
    seed: u64,
    ctx: &[f32],
) -> std::result::Result<Vec<f32>, floe_runtime::Error> {
    let d = model.dim();
    let mut rng = Rng::new(seed);
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut out = vec![0.0f32; n * d];
    for row in out.chunks_mut(d) {
        model.sample(&mut rng, ctx, row, &mut scratch)?;
    }
    Ok(out)
}

fn sample_cmd(a: SampleArgs) -> Result<()> {
    let buf = read_model(&a.model)?;
    let model = load_model(&a.model, &buf)?;
    let ctx = a.context.clone().unwrap_or_default();
    if ctx.len() != model.context_dim() {
        return Err(FloeError::Config(format!(
            "the model needs --context with {} values, got {}",
            model.context_dim(),
            ctx.len()
        )));
    }
    let d = model.dim();
    let out =
        sample_rows(&model, a.n, a.seed, &ctx).map_err(|err| FloeError::Runtime { path: a.model.clone(), err })?;
    match a.out.extension().and_then(|e| e.to_str()) {
        Some("npy") => data::write_npy(&a.out, &out, a.n, d)?,
        Some("csv") => data::write_csv(&a.out, &out, d, &(0..d).map(|j| format!("x{j}")).collect::<Vec<_>>())?,
        _ => return Err(FloeError::Config("--out must end in .npy or .csv".into())),
    }
    println!("wrote {} samples of dimension {d} to {}", a.n, a.out.display());
    Ok(())
}

fn plot_cmd(a: PlotArgs) -> Result<()> {
    let (ck, _) = Checkpoint::load(&a.checkpoint)?;
    let model_path = match &a.model {
        Some(p) => p.clone(),
        None => {
            let p = std::env::temp_dir().join(format!("floe-plot-{}.floe", std::process::id()));
            freeze_checkpoint(&a.checkpoint, &p, PARITY_TOLERANCE)?;
            p
        }
    };
    let buf = read_model(&model_path)?;
    let model = load_model(&model_path, &buf)?;
    let prep = pipeline::prepare(&ck.data, ck.flow.context_dim, &ck.train)?;
    let (x, _) = raw_rows(&prep.table, &prep.split.test, prep.c);
    let ctx = vec![0.0f32; model.context_dim()];
    let samples = sample_rows(&model, prep.split.test.len().max(500), 1, &ctx)
        .map_err(|err| FloeError::Runtime { path: model_path.clone(), err })?;
    plot::report(&a.out, &ck.history, &x, &samples, prep.d, &prep.table.columns)?;
    println!("wrote {}", a.out.display());
    Ok(())
}

/// The bundled demo data set, found relative to the working directory or the
/// crate (so `cargo run` works from anywhere in the repository).
fn demo_data() -> Result<PathBuf> {
    let rel = Path::new("data/adbench/38_thyroid.npz");
    let candidates = [PathBuf::from(rel), Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| FloeError::io(rel, std::io::Error::from(std::io::ErrorKind::NotFound)))
}

fn demo(a: DemoArgs) -> Result<()> {
    let start = Instant::now();
    let data = demo_data()?;
    println!("floe demo: neural spline flow on ADBench thyroid (normal rows), {}", data.display());
    let ckpt = a.out.join("checkpoint");
    let targs = TrainArgs {
        data: DataArgs { data: Some(data), array: None, columns: None, only_label: Some(0) },
        config: None,
        out: ckpt.clone(),
        context_dim: None,
        transform: Some(TransformKind::SplineCoupling),
        steps: Some(4),
        hidden: Some(64),
        blocks: Some(2),
        residual: false,
        tanh: false,
        bins: Some(8),
        tail_bound: Some(4.0),
        base: None,
        permutation: None,
        no_actnorm: false,
        no_lu: false,
        epochs: Some(a.epochs),
        batch_size: Some(256),
        lr: None,
        patience: Some(15),
        grad_clip: None,
        seed: Some(a.seed),
        quiet: a.quiet,
    };
    train_cmd(targs)?;
    let (ck, model) = Checkpoint::load(&ckpt)?;
    let prep = pipeline::prepare(&ck.data, 0, &ck.train)?;
    let file = a.out.join("thyroid.floe");
    let (parity, len) = freeze_checkpoint(&ckpt, &file, PARITY_TOLERANCE)?;
    let buf = read_model(&file)?;
    let rt = load_model(&file, &buf)?;
    let burn_nll = nll_per_dim(&log_prob_rows(&model, &prep.test, &train::cpu()), &prep.xs);
    let (x, _) = raw_rows(&prep.table, &prep.split.test, 0);
    let t0 = Instant::now();
    let lp = runtime_log_prob(&rt, &x, &[]).map_err(|err| FloeError::Runtime { path: file.clone(), err })?;
    let us = t0.elapsed().as_secs_f64() * 1e6 / lp.len() as f64;
    let rt_nll = -lp.iter().sum::<f64>() / lp.len() as f64 / prep.d as f64;
    // The held-out rows as raw little-endian f32 (row-major, `d` per row): the
    // input format of the firmware programs (`firmware/assets/`).
    let rows_file = a.out.join("thyroid-test.f32");
    let rows_bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&rows_file, rows_bytes).map_err(|e| FloeError::io(&rows_file, e))?;
    let png = a.out.join("demo.png");
    let samples =
        sample_rows(&rt, x.len() / prep.d, 1, &[]).map_err(|err| FloeError::Runtime { path: file.clone(), err })?;
    plot::report(&png, &ck.history, &x, &samples, prep.d, &prep.table.columns)?;
    println!();
    println!(
        "  data            {} rows x {} dims (train {}, val {}, test {})",
        prep.table.n,
        prep.d,
        prep.split.train.len(),
        prep.split.val.len(),
        prep.split.test.len()
    );
    println!(
        "  epochs          {} (best {}), {:.1} s",
        ck.history.val_nll.len(),
        ck.history.best_epoch + 1,
        ck.history.seconds
    );
    println!("  test NLL Burn   {burn_nll:.5} nats/dim");
    println!("  test NLL floe   {rt_nll:.5} nats/dim (no_std runtime, {us:.1} us/row)");
    println!(
        "  parity          max |log p diff| {:.2e} nats over {} rows (tolerance {:.0e} + 1e-6 |log p|; {} rows \
         passed through their f32 sensitivity allowance)",
        parity.max_abs_diff, parity.rows, PARITY_TOLERANCE, parity.ill_conditioned
    );
    println!("  model file      {} ({len} bytes)", file.display());
    println!("  scratch         {} f32 ({} bytes)", rt.scratch_len(), rt.scratch_len() * 4);
    println!("  test rows       {} (raw little-endian f32, for firmware)", rows_file.display());
    println!("  plot            {}", png.display());
    println!("  wall time       {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
