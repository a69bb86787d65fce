//! Hooks for the exporter and for the repository's tests and tools — not the
//! device API, and without a stability promise.
//!
//! A device needs [`crate::Model`] and friends; the exporter also needs to watch
//! (and rewrite) conditioner outputs while it calibrates and checks int8 models,
//! to plan the scratch size it writes into a header, and tools read raw tensor
//! records.

use crate::error::{Error, Result};
use crate::format::{LayerRecord, TensorRecord, TrajectoryLayout, MAX_OBSERVED};
use crate::model::Model;
use crate::trajectory::{encode_history, Frame, Point};
use crate::transforms::Tracer;

pub use crate::transforms::Trace;
pub use crate::work::Work;

/// What one [`Model::log_prob`] computes, counted from the model's records: the
/// terms of the instruction bound (README "Bounds").
pub fn log_prob_work(model: &Model<'_>) -> Result<Work> {
    crate::work::log_prob_work(model)
}

/// [`Model::log_prob`], calling `trace(layer, input, output)` after every
/// conditioner evaluation with the conditioner's input (pass-through coordinates
/// and standardized context) and output (the elementwise map's parameters), which
/// `trace` may rewrite before the layer uses it. The exporter calibrates int8
/// activation ranges with it, and simulates a quantized model on the f32 one by
/// substituting its own quantized conditioner outputs.
///
/// `step` picks a trajectory file's step flow (0 for other files).
pub fn log_prob_traced(
    model: &Model<'_>,
    step: usize,
    x: &[f32],
    context: &[f32],
    scratch: &mut [f32],
    trace: &mut Trace<'_>,
) -> Result<f32> {
    model.log_prob_with(step, x, context, scratch, &mut Tracer::new(trace))
}

/// A trajectory file's encoding of `history` (the model's `observed` latest
/// positions, world frame): fills `h` (the encoding width) and returns the
/// frame and the last observed displacement in it, exactly as
/// [`crate::trajectory::Tracker::predict`] computes them. The encoder's input
/// (the standardized features) goes to `trace` as layer 0's input.
pub fn encode(
    model: &Model<'_>,
    history: &[Point],
    h: &mut [f32],
    scratch: &mut [f32],
    trace: &mut Trace<'_>,
) -> Result<(Frame, Point)> {
    let layout = model.trajectory_layout().ok_or(Error::NotATrajectoryModel)?;
    let n = layout.observed as usize;
    if history.len() != n {
        return Err(Error::DimMismatch { expected: n as u32, got: history.len() as u32 });
    }
    if scratch.len() < model.scratch_len() {
        return Err(Error::ScratchTooSmall { needed: model.scratch_len() as u32, got: scratch.len() as u32 });
    }
    if history.iter().any(|p| !(p[0].is_finite() && p[1].is_finite())) {
        return Err(Error::NonFiniteInput);
    }
    let encoder = model.encoder()?;
    if h.len() != encoder.cond.shape().n_out {
        return Err(Error::DimMismatch { expected: encoder.cond.shape().n_out as u32, got: h.len() as u32 });
    }
    let mut feat = [0.0f32; 2 * MAX_OBSERVED];
    let feat = feat.get_mut(..layout.features()).ok_or(Error::Internal)?;
    let (frame, v0) = encode_history(model, layout.heading_frame, history, feat, h, scratch)?;
    // The encoder's input as its MLP saw it (standardized as in `Encoder::encode`).
    let mut input = [0.0f32; 2 * MAX_OBSERVED];
    let input = input.get_mut(..feat.len()).ok_or(Error::Internal)?;
    for (((o, &v), &m), &s) in input.iter_mut().zip(feat.iter()).zip(encoder.mean).zip(encoder.std) {
        *o = (v - m) / s;
    }
    trace(0, input, h);
    Ok((frame, v0))
}

/// Row `step` of a trajectory file's step embedding (empty when it has none).
pub fn step_embedding<'m>(model: &Model<'m>, step: usize) -> Result<&'m [f32]> {
    model.encoder()?.step(step)
}

/// Scratch, in `f32` words, a model of dimension `dim`, context `context_dim`,
/// trajectory layout `trajectory` and these layer records needs: what its
/// header's `scratch_len` must state.
pub fn scratch_len(
    dim: usize,
    context_dim: usize,
    trajectory: Option<TrajectoryLayout>,
    layers: &[LayerRecord],
) -> usize {
    let dims = crate::transforms::Dims { dim, cdim: context_dim, trajectory };
    crate::model::scratch_len(&dims, layers)
}

/// Tensor record `i` of a loaded model.
pub fn tensor_record(model: &Model<'_>, i: u32) -> Result<TensorRecord> {
    model.view().tensor(i)
}

/// How far [`Model::log_prob`] of row `x` moves when one input coordinate moves
/// by one f32 rounding step (the largest over coordinates and both directions):
/// the rounding noise any f32 evaluation of this row carries. The step is the
/// larger of the coordinate's own ulp and `ε·std` (standardized units): a
/// coordinate near zero carries no tiny ulp through a spline whose knots sit at
/// ±B. `y` (D values) is work space. The exporter's parity rule and the ONNX
/// check allow `(n_layers + 1)` times this on a row that misses their plain
/// tolerance.
pub fn ulp_sensitivity(model: &Model<'_>, x: &[f32], c: &[f32], y: &mut [f32], scratch: &mut [f32]) -> Result<f64> {
    let base = f64::from(model.log_prob(x, c, scratch)?);
    let (_, std) = model.standardization();
    if y.len() != x.len() {
        return Err(Error::DimMismatch { expected: x.len() as u32, got: y.len() as u32 });
    }
    y.copy_from_slice(x);
    let mut worst = 0.0f64;
    for (j, &xj) in x.iter().enumerate() {
        let s = std.get(j).copied().unwrap_or(1.0);
        let step = libm::fmaxf(libm::fabsf(xj) * f32::EPSILON, s * f32::EPSILON);
        for sign in [-1.0f32, 1.0] {
            let v = xj + sign * step;
            if let Some(slot) = y.get_mut(j) {
                *slot = v;
            }
            if v.is_finite() {
                let lp = f64::from(model.log_prob(y, c, scratch)?);
                worst = libm::fmax(worst, libm::fabs(lp - base));
            }
        }
        if let Some(slot) = y.get_mut(j) {
            *slot = xj;
        }
    }
    Ok(worst)
}
