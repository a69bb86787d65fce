//! A trained trajectory model as a file: layer 0 the history encoder, then the
//! step flows (one, or one per step), checked against the runtime's
//! [`Tracker`] on held-out windows before it is reported.

use std::path::Path;

use burn::prelude::*;
use floe_runtime::format::{Activation, LayerKind, Precision};
use floe_runtime::trajectory::Tracker;
use floe_runtime::Model;
use serde::{Deserialize, Serialize};

use super::data::Example;
use super::data::{Window, HORIZON};
use super::model::{TrajectoryConfig, TrajectoryFlow};
use super::train::{log_probs, Stats};
use crate::error::{FloeError, ParityError, Result, TrainingError};
use crate::flow::math::to_vec;
use crate::freeze::{fold, mlp_tensors, FrozenLayer, FrozenModel, FrozenTensor};
use crate::train::checkpoint::{read_meta, write_meta};
use crate::train::History;

/// Parity tolerance, nats per trajectory: `TOL_ABS + TOL_REL · |log p|`. A
/// trajectory's log-density sums 12 steps of a 4-layer flow behind a 3-layer
/// encoder, all in f32 on both sides but in different orders; on the most
/// peaked windows (log p ≈ 100 nats, ≈ 8 nats per step of a few centimetres)
/// the two differ by up to ≈ 1.6e-2 (zara2). A wrong weight or layer moves every
/// window by whole nats.
pub const TOL_ABS: f64 = 1e-2;
/// See [`TOL_ABS`].
pub const TOL_REL: f64 = 2e-4;

/// The file description of a trained model.
pub fn fold_trajectory(model: &TrajectoryFlow, cfg: &TrajectoryConfig, stats: &Stats) -> Result<FrozenModel> {
    let (h, e) = (cfg.encoding, cfg.embedding);
    let mut c_mean = vec![0.0f32; h];
    c_mean.extend_from_slice(&stats.steps.mean);
    c_mean.extend(std::iter::repeat_n(0.0, e));
    let mut c_std = vec![1.0f32; h];
    c_std.extend_from_slice(&stats.steps.std);
    c_std.extend(std::iter::repeat_n(1.0, e));
    let c_stats = crate::data::Standardization { mean: c_mean, std: c_std };
    let spec = cfg.encoder_spec();
    let mut tensors =
        vec![FrozenTensor::vector(stats.features.mean.clone()), FrozenTensor::vector(stats.features.std.clone())];
    tensors.extend(mlp_tensors(&model.encoder));
    if let Some(emb) = &model.embedding {
        tensors.push(FrozenTensor::matrix(HORIZON, e, to_vec(emb.val())));
    }
    let encoder = FrozenLayer {
        kind: LayerKind::Encoder,
        activation: if spec.tanh { Activation::Tanh } else { Activation::Relu },
        residual: false,
        precision: Precision::F32,
        split: h as u16,
        bins: 0,
        hidden: spec.hidden as u16,
        blocks: spec.blocks as u16,
        param: 0.0,
        zuko: false,
        tensors,
    };
    let mut layers = vec![encoder];
    let mut first: Option<FrozenModel> = None;
    for f in &model.flows {
        let m = fold(f, &stats.steps, &c_stats)?;
        layers.extend(m.layers.iter().cloned());
        first.get_or_insert(m);
    }
    let first = first.ok_or(FloeError::Internal("a trajectory model without flows"))?;
    let out = FrozenModel { layers, trajectory: Some(cfg.layout()), ..first };
    if !out.layers[0].tensors.iter().all(|t| t.f32s().iter().all(|v| v.is_finite())) {
        return Err(TrainingError::NonFiniteWeights.into());
    }
    Ok(out)
}

/// The runtime's exact joint log-density (nats, metres) of each window's
/// future given its history.
pub fn runtime_log_probs(model: &Model<'_>, windows: &[Window]) -> Result<Vec<f64>> {
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut t = Tracker::<1, HORIZON>::new(*model, 0)?;
    windows
        .iter()
        .map(|w| {
            t.predict(w.history(), &mut scratch)?;
            Ok(t.log_prob_future(w.future(), &mut scratch)? as f64)
        })
        .collect()
}

/// Burn vs runtime on held-out windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryParity {
    /// Windows compared.
    pub windows: usize,
    /// Largest |Burn − runtime|, nats per trajectory.
    pub max_abs: f64,
    /// Mean NLL under Burn and under the runtime, nats per trajectory.
    pub nll: (f64, f64),
}

/// Compare the Burn model with the file on `windows`; an error past the tolerance.
pub fn check_parity(
    model: &TrajectoryFlow,
    stats: &Stats,
    loaded: &Model<'_>,
    windows: &[Window],
    examples: &[Example],
) -> Result<TrajectoryParity> {
    let burn = log_probs(model, stats, examples);
    let rt = runtime_log_probs(loaded, windows)?;
    let mut max_abs = 0.0f64;
    for (row, (&a, &b)) in burn.iter().zip(&rt).enumerate() {
        let d = (a - b).abs();
        if !(a.is_finite() && b.is_finite()) {
            return Err(ParityError::NotComparable { row, burn: a, runtime: b }.into());
        }
        let allowed = TOL_ABS + TOL_REL * a.abs();
        if !(d <= allowed) {
            return Err(ParityError::Exceeded { row, burn: a, runtime: b, diff: d, allowed, allowance: 0.0 }.into());
        }
        max_abs = max_abs.max(d);
    }
    Ok(TrajectoryParity {
        windows: windows.len(),
        max_abs,
        nll: (super::train::mean_nll(&burn), super::train::mean_nll(&rt)),
    })
}

/// A trained trajectory model on disk: `meta.json` and `model.bpk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryCheckpoint {
    /// Architecture.
    pub model: TrajectoryConfig,
    /// Optimization.
    pub train: crate::train::TrainConfig,
    /// The held-out scene.
    pub test_scene: String,
    /// Mirror augmentation.
    pub mirror: bool,
    /// Standardizations.
    pub stats: Stats,
    /// Training curves (nats per trajectory).
    pub history: History,
}

impl TrajectoryCheckpoint {
    /// Write into `dir`.
    pub fn save(&self, model: &TrajectoryFlow, dir: &Path) -> Result<()> {
        let w = write_meta(self, dir)?;
        model.clone().save_file(&w).map_err(|source| FloeError::Checkpoint { path: w, source })
    }

    /// Read a checkpoint written by [`TrajectoryCheckpoint::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<(TrajectoryCheckpoint, TrajectoryFlow)> {
        let (ck, w): (TrajectoryCheckpoint, _) = read_meta(dir)?;
        // Drawn under `seeded` (then overwritten): see `Checkpoint::load`.
        let model = crate::train::device::seeded(device, 0, || TrajectoryFlow::new(&ck.model, device))?;
        let model = model.try_load_file(&w).map_err(|source| FloeError::Checkpoint { path: w, source })?;
        Ok((ck, model))
    }
}
