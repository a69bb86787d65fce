//! Trajectory densities for robots: where will this person be over the next
//! 4.8 s? A history encoder and a chain of exact conditional flows over the step
//! displacements, trained in Burn on ETH/UCY, frozen into a checked floe file
//! that `floe_runtime::trajectory::Tracker` evaluates without a heap.
//!
//! - [`data`]: the ETH/UCY reader, windows, leave-one-scene-out splits;
//! - [`model`]: the Burn model (shared step flow with a step embedding, or one
//!   flow per step);
//! - [`train`](mod@train): exact maximum likelihood with early stopping on held-out tracks;
//! - [`freeze`]: the file, checked against the runtime's tracker;
//! - [`quant`]: int8 / w8, bit-exact against the reference arithmetic;
//! - [`eval`]: best-of-20 ADE/FDE, exact NLLs, updates vs recomputation, the
//!   constant-velocity baselines.

pub mod data;
pub mod eval;
pub mod freeze;
pub mod model;
pub mod plot;
pub mod quant;
pub mod train;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use floe_runtime::format::Precision;
use serde::{Deserialize, Serialize};

pub use data::{Scene, Window, FLOWCHAIN, HORIZON, OBSERVED, SCENES};
pub use eval::{BaselineEval, SceneEval};
pub use freeze::{TrajectoryCheckpoint, TrajectoryParity};
pub use model::{TrajectoryConfig, TrajectoryFlow};
pub use quant::TrajectoryQuantized;
pub use train::Stats;

use crate::error::{ConfigError, DataError, Result};
use crate::freeze::LoadedModel;
use crate::train::{History, TrainConfig};

/// What `floe trajectory train` does.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The ETH/UCY folder.
    pub data_dir: PathBuf,
    /// The held-out scene.
    pub test_scene: String,
    /// Architecture.
    pub model: TrajectoryConfig,
    /// Optimization.
    pub train: TrainConfig,
    /// Mirror augmentation.
    pub mirror: bool,
    /// f32, or a quantized file.
    pub precision: Precision,
    /// Output folder (checkpoint, model file).
    pub out: PathBuf,
    /// Windows for the mixture/update figures.
    pub mixture_windows: usize,
    /// Skip the evaluation.
    pub no_eval: bool,
    /// Freeze this checkpoint instead of training (its settings win).
    pub checkpoint: Option<PathBuf>,
}

/// What it produced.
#[derive(Debug)]
pub struct TrainedTrajectory {
    /// Training curves.
    pub history: History,
    /// Training and validation windows.
    pub n_train: usize,
    /// See `n_train`.
    pub n_val: usize,
    /// Burn vs the f32 file on the test windows.
    pub parity: TrajectoryParity,
    /// The f32 file's size.
    pub f32_bytes: usize,
    /// The quantization, when asked for.
    pub quantized: Option<TrajectoryQuantized>,
    /// The file written.
    pub model_path: PathBuf,
    /// The file, loaded.
    pub loaded: LoadedModel,
    /// Its evaluation on the test scene (unless skipped).
    pub eval: Option<SceneEval>,
    /// The baselines on the test scene.
    pub baselines: BaselineEval,
    /// Test windows.
    pub n_test: usize,
    /// The architecture (the checkpoint's, when one was frozen).
    pub config: TrajectoryConfig,
}

/// int8 activation ranges: the 0.1 % and 99.9 % quantiles of the calibration
/// values (step-flow contexts carry rare tracking glitches that min/max would
/// let set the scale).
pub const CALIB_CLIP: f64 = 1e-3;

/// Budget for a quantized layer: the joint NLL may rise this much (nats per
/// trajectory of 12 steps) per layer.
pub const MAX_LAYER_COST: f64 = 0.5;

/// Budget for the whole quantized model, nats per trajectory.
pub const MAX_TOTAL_COST: f64 = 1.0;

/// Train, freeze (parity-checked), optionally quantize, write and evaluate.
pub fn run(job: &TrainJob, device: &Device, progress: bool) -> Result<TrainedTrajectory> {
    let split = data::leave_one_out(&job.data_dir, &job.test_scene)?;
    let test_windows = split.test.windows();
    if test_windows.is_empty() {
        let path = data::scene_path(&job.data_dir, &job.test_scene)?;
        return Err(DataError::TooFewWindows { path, windows: 0, window: OBSERVED + HORIZON, need: 1 }.into());
    }
    // A checkpoint brings its own settings: the split, the architecture.
    let loaded_ck = match &job.checkpoint {
        Some(dir) => {
            let (ck, model) = TrajectoryCheckpoint::load(dir, device)?;
            if ck.test_scene != job.test_scene {
                let why = format!("{} was trained with {} held out", dir.display(), ck.test_scene);
                return Err(ConfigError::invalid("--test-scene", "the checkpoint's held-out scene", why).into());
            }
            Some((ck, model))
        }
        None => None,
    };
    let (seed, mirror, heading) = match &loaded_ck {
        Some((ck, _)) => (ck.train.seed, ck.mirror, ck.model.heading),
        None => (job.train.seed, job.mirror, job.model.heading),
    };
    let (train_ex, val_ex) = train::examples(&split.train, heading, mirror, seed)?;
    let (model, cfg, stats, history) = match loaded_ck {
        Some((ck, model)) => (model, ck.model, ck.stats, ck.history),
        None => {
            let (model, stats, history) = train::train(&job.model, &job.train, &train_ex, &val_ex, device, progress)?;
            let ck = TrajectoryCheckpoint {
                model: job.model.clone(),
                train: job.train.clone(),
                test_scene: job.test_scene.clone(),
                mirror: job.mirror,
                stats: stats.clone(),
                history: history.clone(),
            };
            ck.save(&model, &job.out.join("checkpoint"))?;
            (model, job.model.clone(), stats, history)
        }
    };
    let frozen = freeze::fold_trajectory(&model, &cfg, &stats)?;
    let f32_loaded = frozen.load()?;
    let test_ex = train::examples_of(&test_windows, cfg.heading)?;
    let parity = freeze::check_parity(&model, &stats, f32_loaded.model(), &test_windows, &test_ex)?;
    let f32_bytes = f32_loaded.bytes().len();
    // Calibration on training windows, layer decisions on the held-out tracks'
    // windows: never the test scene.
    let (train_windows, val_windows) = train::split_windows(&split.train, seed);
    let pick = |w: &[Window], k: usize| -> Vec<Window> { eval::spread(w.len(), k).into_iter().map(|i| w[i]).collect() };
    let quantized = if job.precision.is_quantized() {
        let (calib, val) = (pick(&train_windows, 256), pick(&val_windows, 256));
        let check = &test_windows[..test_windows.len().min(64)];
        let cfg = quant::TrajectoryQuantConfig {
            precision: job.precision,
            max_layer_cost: MAX_LAYER_COST,
            max_total_cost: MAX_TOTAL_COST,
            clip: CALIB_CLIP,
        };
        Some(quant::quantize_trajectory(&frozen, &cfg, &calib, &val, check)?)
    } else {
        None
    };
    let loaded = match &quantized {
        Some(q) => LoadedModel::from_bytes(q.loaded.bytes())?,
        None => f32_loaded,
    };
    let suffix = if job.precision.is_quantized() { format!("-{}", job.precision.name()) } else { String::new() };
    let name = format!("traj-{}{suffix}.floe", job.test_scene);
    let model_path = job.out.join(name);
    loaded.write(&model_path)?;
    let eval = if job.no_eval {
        None
    } else {
        Some(eval::evaluate(loaded.model(), &test_windows, job.mixture_windows, seed)?)
    };
    let baselines = eval::baselines(&test_windows, seed);
    Ok(TrainedTrajectory {
        history,
        n_train: train_ex.len(),
        n_val: val_ex.len(),
        parity,
        f32_bytes,
        quantized,
        model_path,
        loaded,
        eval,
        baselines,
        n_test: test_windows.len(),
        config: cfg,
    })
}

/// Evaluate a trajectory file on a scene's windows.
pub fn evaluate_file(
    path: &Path,
    data_dir: &Path,
    scene: &str,
    mixture_windows: usize,
    seed: u64,
) -> Result<(SceneEval, BaselineEval)> {
    let loaded = LoadedModel::read(path)?;
    if loaded.model().trajectory_layout().is_none() {
        return Err(floe_runtime::Error::NotATrajectoryModel.into());
    }
    let windows = data::read_scene(data_dir, scene)?.windows();
    Ok((eval::evaluate(loaded.model(), &windows, mixture_windows, seed)?, eval::baselines(&windows, seed)))
}

/// One cell of the bench table: mean and standard deviation over seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub std: f64,
}

impl MeanStd {
    /// Of these values.
    pub fn of(v: &[f64]) -> MeanStd {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        MeanStd { mean, std: var.sqrt() }
    }
}
