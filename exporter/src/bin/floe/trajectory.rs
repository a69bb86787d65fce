//! `floe trajectory`: train, evaluate, benchmark and picture trajectory models
//! on the bundled ETH/UCY scenes (leave one scene out).

use std::path::PathBuf;
use std::time::Instant;

use floe_exporter::error::ConfigError;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::trajectory::{
    self, data, eval, MeanStd, TrainJob, TrainedTrajectory, TrajectoryConfig, FLOWCHAIN, SCENES,
};
use floe_exporter::Result;
use floe_runtime::format::Precision;

use crate::args::{precision_parser, DeviceArgs};

/// `floe trajectory …`.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Train on three scenes, freeze (parity-checked against the runtime),
    /// optionally quantize, and evaluate on the held-out scene.
    Train(TrainArgs),
    /// Evaluate a trajectory model file on a scene.
    Eval(EvalArgs),
    /// Every scene held out in turn, several seeds: the README's table.
    Bench(BenchArgs),
    /// A PNG of a real scene: history, truth, samples and the step densities.
    Plot(PlotArgs),
}

/// Model and training settings.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// ETH/UCY folder.
    #[arg(long, default_value = "data/eth_ucy")]
    data_dir: PathBuf,
    /// One flow per step instead of one shared flow with a step embedding.
    #[arg(long)]
    per_step: bool,
    /// Predict in world axes (with rotation-free data) instead of the heading frame.
    #[arg(long)]
    world_frame: bool,
    /// No mirror augmentation.
    #[arg(long)]
    no_mirror: bool,
    /// Maximum epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Early-stopping patience, epochs.
    #[arg(long, default_value_t = 8)]
    patience: usize,
    /// Windows for the mixture and update figures.
    #[arg(long, default_value_t = 200)]
    mixture_windows: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Training device.
    #[command(flatten)]
    device: DeviceArgs,
}

impl ModelArgs {
    fn job(&self, scene: &str, seed: u64, precision: Precision, out: PathBuf, no_eval: bool) -> Result<TrainJob> {
        data::scene_path(&self.data_dir, scene)?;
        if self.epochs == 0 {
            return Err(ConfigError::invalid("--epochs", ">= 1", self.epochs).into());
        }
        let mut model = if self.per_step { TrajectoryConfig::per_step() } else { TrajectoryConfig::shared() };
        model.heading = !self.world_frame;
        model.flow.seed = seed;
        let mut train = trajectory::train::default_train_config();
        train.epochs = self.epochs;
        train.patience = self.patience;
        train.seed = seed;
        Ok(TrainJob {
            data_dir: self.data_dir.clone(),
            test_scene: scene.to_string(),
            model,
            train,
            mirror: !self.no_mirror,
            precision,
            out,
            mixture_windows: self.mixture_windows,
            no_eval,
            checkpoint: None,
        })
    }
}

/// `floe trajectory train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The held-out scene: eth, hotel, zara1 or zara2.
    #[arg(long)]
    test_scene: String,
    /// Output folder.
    #[arg(long, default_value = "target/trajectory")]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a quantized file.
    #[arg(long, value_parser = precision_parser())]
    quantize: Option<Precision>,
    /// Skip the held-out evaluation.
    #[arg(long)]
    no_eval: bool,
    /// Also write this many real test-scene windows (20 positions of
    /// little-endian f32 x, y each), evenly spread, for the firmware.
    #[arg(long, default_value_t = 6)]
    windows: usize,
    /// Where to write them.
    #[arg(long)]
    windows_out: Option<PathBuf>,
    /// Freeze (and quantize, evaluate) this checkpoint instead of training.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// `floe trajectory eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The scene to evaluate on (normally the one held out in training).
    #[arg(long)]
    test_scene: String,
    /// ETH/UCY folder.
    #[arg(long, default_value = "data/eth_ucy")]
    data_dir: PathBuf,
    /// Windows for the mixture and update figures.
    #[arg(long, default_value_t = 200)]
    mixture_windows: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `floe trajectory bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Seeds per scene.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Scenes (default all four).
    #[arg(long, value_delimiter = ',')]
    scenes: Option<Vec<String>>,
    /// Output folder (checkpoints and files per scene and seed).
    #[arg(long, default_value = "target/trajectory-bench")]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

/// `floe trajectory plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The scene.
    #[arg(long)]
    test_scene: String,
    /// Window index in the scene (default: the middle one).
    #[arg(long)]
    window: Option<usize>,
    /// Steps to picture (1-based), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,12")]
    steps: Vec<usize>,
    /// ETH/UCY folder.
    #[arg(long, default_value = "data/eth_ucy")]
    data_dir: PathBuf,
    /// Output PNG.
    #[arg(long, default_value = "target/trajectory.png")]
    out: PathBuf,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Train(a) => train(a),
        Cmd::Eval(a) => eval_cmd(a),
        Cmd::Bench(a) => bench(a),
        Cmd::Plot(a) => plot(a),
    }
}

fn print_eval(e: &eval::SceneEval) {
    println!("  best-of-20 ADE/FDE  {:.3} / {:.3} m over {} windows", e.ade, e.fde, e.windows);
    println!("  exact joint NLL     {:.2} nats per trajectory (12 steps, metres)", e.nll);
    println!(
        "  position NLL        {:.3} nats per step (mixture of {} particles; {} windows)",
        e.pos_nll,
        eval::PARTICLES,
        e.mixture_windows
    );
    println!(
        "  after {} updates     fast {:.3} vs recomputed {:.3} nats per step (ESS {:.1} of {}, sensor σ {} m)",
        eval::UPDATES,
        e.fast_nll,
        e.recompute_nll,
        e.ess,
        eval::PARTICLES,
        eval::SENSOR_SIGMA
    );
}

fn flowchain(scene: &str) -> (f64, f64) {
    FLOWCHAIN.iter().find(|f| f.0 == scene).map(|f| (f.1, f.2)).unwrap_or((f64::NAN, f64::NAN))
}

fn report(t: &TrainedTrajectory, scene: &str) {
    let h = &t.history;
    println!(
        "trained {} epochs in {:.1} s (best {}): val NLL {:.2} nats/traj; {} train / {} val windows (held-out tracks)",
        h.val_nll.len(),
        h.seconds,
        h.best_epoch,
        h.val_nll.get(h.best_epoch).copied().unwrap_or(f64::NAN),
        t.n_train,
        t.n_val
    );
    println!(
        "  parity              max |Burn − runtime| {:.1e} nats/traj over {} {scene} windows (NLL {:.3} vs {:.3})",
        t.parity.max_abs, t.parity.windows, t.parity.nll.0, t.parity.nll.1
    );
    println!("  f32 file            {} bytes", t.f32_bytes);
    if let Some(q) = &t.quantized {
        println!(
            "  quantized           {} bytes; val NLL {:.3} → {:.3} nats/traj; {} conditioner values and {} encoder values \
             bit-exact, {} step rows' log p bit-exact",
            q.loaded.bytes().len(),
            q.val_nll.0,
            q.val_nll.1,
            q.verified.values,
            q.encoder_values,
            q.verified.rows
        );
        for c in &q.choices {
            println!("    layer {:>2} {:<16} {:<4} Δ {:+.3} {}", c.layer, c.kind, c.precision.name(), c.cost, c.note);
        }
    }
    println!(
        "  model file          {} ({} bytes, scratch {} f32)",
        t.model_path.display(),
        t.loaded.bytes().len(),
        t.loaded.model().scratch_len()
    );
    if let Some(e) = &t.eval {
        print_eval(e);
    }
    let b = &t.baselines;
    let fc = flowchain(scene);
    println!(
        "  constant velocity   ADE/FDE {:.3} / {:.3}; sampled best-of-20 {:.3} / {:.3}",
        b.cv.0, b.cv.1, b.cv_sampled.0, b.cv_sampled.1
    );
    println!("  FlowChain (paper)   ADE/FDE {:.2} / {:.2}", fc.0, fc.1);
}

fn train(a: TrainArgs) -> Result<()> {
    if a.windows_out.is_some() && a.windows == 0 {
        return Err(ConfigError::invalid("--windows", ">= 1 with --windows-out", a.windows).into());
    }
    let precision = a.quantize.unwrap_or(Precision::F32);
    let mut job = a.model.job(&a.test_scene, a.seed, precision, a.out, a.no_eval)?;
    let device = a.model.device.open()?;
    job.checkpoint = a.checkpoint.clone();
    let t = trajectory::run(&job, &device, !a.model.quiet)?;
    let kind = if t.config.per_step { "per-step" } else { "shared-step" };
    println!("floe trajectory: {} held out, {kind} model", a.test_scene);
    report(&t, &a.test_scene);
    if let Some(path) = &a.windows_out {
        let windows = data::read_scene(&a.model.data_dir, &a.test_scene)?.windows();
        let mut bytes = Vec::new();
        for i in eval::spread(windows.len(), a.windows) {
            for p in &windows[i].points {
                bytes.extend_from_slice(&p[0].to_le_bytes());
                bytes.extend_from_slice(&p[1].to_le_bytes());
            }
        }
        std::fs::write(path, &bytes).map_err(|e| floe_exporter::FloeError::io(path, e))?;
        println!(
            "  windows             {} ({} real {} windows)",
            path.display(),
            a.windows.min(windows.len()),
            a.test_scene
        );
    }
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let (e, b) = trajectory::evaluate_file(&a.model, &a.data_dir, &a.test_scene, a.mixture_windows, a.seed)?;
    println!("{} on {}:", a.model.display(), a.test_scene);
    print_eval(&e);
    println!(
        "  constant velocity   ADE/FDE {:.3} / {:.3}; sampled best-of-20 {:.3} / {:.3}",
        b.cv.0, b.cv.1, b.cv_sampled.0, b.cv_sampled.1
    );
    let fc = flowchain(&a.test_scene);
    println!("  FlowChain (paper)   ADE/FDE {:.2} / {:.2}", fc.0, fc.1);
    Ok(())
}

fn cell(v: &[f64], digits: usize) -> String {
    let m = MeanStd::of(v);
    if v.len() > 1 {
        format!("{:.*}±{:.*}", digits, m.mean, digits, m.std)
    } else {
        format!("{:.*}", digits, m.mean)
    }
}

fn bench(a: BenchArgs) -> Result<()> {
    if a.seeds == 0 {
        return Err(ConfigError::invalid("--seeds", ">= 1", a.seeds).into());
    }
    let start = Instant::now();
    let scenes: Vec<String> = a.scenes.clone().unwrap_or_else(|| SCENES.iter().map(|s| s.0.to_string()).collect());
    let kind = if a.model.per_step { "per-step" } else { "shared-step" };
    println!(
        "ETH/UCY leave-one-scene-out, {kind} model, {} seed(s), ≤ {} epochs (patience {}); runtime f32 files",
        a.seeds, a.model.epochs, a.model.patience
    );
    println!(
        "\n| scene | floe ADE / FDE (best of 20) | FlowChain ADE / FDE | CV ADE / FDE | CV-S best-of-20 | exact NLL nats/traj | \
         position NLL nats/step | after 4 updates: fast / recomputed | file bytes | parity |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for scene in &scenes {
        let mut runs = Vec::new();
        let device = a.model.device.open()?;
        for seed in 0..a.seeds {
            let job = a.model.job(scene, seed, Precision::F32, a.out.join(format!("{scene}-{seed}")), false)?;
            runs.push(trajectory::run(&job, &device, !a.model.quiet)?);
        }
        let ev: Vec<&eval::SceneEval> = runs.iter().filter_map(|r| r.eval.as_ref()).collect();
        let col = |f: fn(&eval::SceneEval) -> f64| ev.iter().map(|e| f(e)).collect::<Vec<f64>>();
        let fc = flowchain(scene);
        let b = &runs[0].baselines;
        let parity = runs.iter().map(|r| r.parity.max_abs).fold(0.0f64, f64::max);
        println!(
            "| {scene} | {} / {} | {:.2} / {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {} | {} | {} / {} | {} | {:.0e} |",
            cell(&col(|e| e.ade), 3),
            cell(&col(|e| e.fde), 3),
            fc.0,
            fc.1,
            b.cv.0,
            b.cv.1,
            b.cv_sampled.0,
            b.cv_sampled.1,
            cell(&col(|e| e.nll), 2),
            cell(&col(|e| e.pos_nll), 2),
            cell(&col(|e| e.fast_nll), 2),
            cell(&col(|e| e.recompute_nll), 2),
            runs[0].f32_bytes,
            parity
        );
    }
    println!("\nwall time {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn plot(a: PlotArgs) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    let scene = data::read_scene(&a.data_dir, &a.test_scene)?;
    let windows = scene.windows();
    if windows.is_empty() {
        return Err(ConfigError::invalid(
            "--test-scene",
            "a scene with at least one 20-position window",
            &a.test_scene,
        )
        .into());
    }
    let i = a.window.unwrap_or(windows.len() / 2);
    let w =
        windows.get(i).ok_or_else(|| ConfigError::invalid("--window", "an index below the scene's window count", i))?;
    if a.steps.is_empty() || a.steps.iter().any(|&s| s == 0 || s > trajectory::HORIZON) {
        return Err(ConfigError::invalid("--steps", "1..=12", format!("{:?}", a.steps)).into());
    }
    trajectory::plot::plot_window(&a.out, loaded.model(), &scene, w, &a.steps, a.seed)?;
    println!("wrote {} (window {i} of {}: track {}, frame {})", a.out.display(), windows.len(), w.track, w.frame);
    Ok(())
}
