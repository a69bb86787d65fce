//! Hooks for the exporter and for the repository's tests and tools — not the
//! device API, and without a stability promise.
//!
//! A device needs [`crate::Model`] and friends; the exporter also needs to watch
//! (and rewrite) conditioner outputs while it calibrates and checks int8 models,
//! to plan the scratch size it writes into a header, and tools read raw tensor
//! records.

use crate::error::Result;
use crate::format::{LayerRecord, TensorRecord, TrajectoryLayout};
use crate::model::Model;
use crate::transforms::Tracer;

pub use crate::transforms::Trace;

/// [`Model::log_prob`], calling `trace(layer, input, output)` after every
/// conditioner evaluation with the conditioner's input (pass-through coordinates
/// and standardized context) and output (the elementwise map's parameters), which
/// `trace` may rewrite before the layer uses it. The exporter calibrates int8
/// activation ranges with it, and simulates a quantized model on the f32 one by
/// substituting its own quantized conditioner outputs.
pub fn log_prob_traced(
    model: &Model<'_>,
    x: &[f32],
    context: &[f32],
    scratch: &mut [f32],
    trace: &mut Trace<'_>,
) -> Result<f32> {
    model.log_prob_with(0, x, context, scratch, &mut Tracer::new(trace))
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
