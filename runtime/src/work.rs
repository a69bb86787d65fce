//! What one evaluation computes, counted from a model's records: the terms of
//! the instruction bound `cargo xtask qemu` checks on the device (README
//! "Bounds"). Loops in `log_prob` run over these counts and nothing else: no
//! input makes them longer (a non-finite input stops at the entry check, an
//! input outside a spline's bound skips that coordinate's spline). One cost is
//! not counted: a tanh conditioner's `libm::tanhf` per hidden unit (the bound is
//! stated, and measured, for ReLU conditioners).

use crate::error::Result;
use crate::format::Precision;
use crate::model::Model;
use crate::transforms::conditioner::MlpShape;
use crate::transforms::layer::{Dims, Plan};
use crate::transforms::Elementwise;

/// Counts of the work in one `log_prob` (a trajectory file: step 0's flow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Multiply-accumulates of f32 conditioner layers.
    pub macs_f32: usize,
    /// Multiply-accumulates of w8 conditioner layers.
    pub macs_w8: usize,
    /// Multiply-accumulates of int8 conditioner layers.
    pub macs_int8: usize,
    /// Multiply-accumulates of LU linear layers (D² each).
    pub macs_lu: usize,
    /// Outputs of the int8 conditioners' dense layers (each is requantized),
    /// plus their inputs (each is quantized).
    pub int8_rows: usize,
    /// Spline coordinates times their bins, over the layers.
    pub spline_bins: usize,
    /// Coordinates the layers map (D per layer), plus D for the base and the
    /// standardization.
    pub coords: usize,
    /// Layers evaluated.
    pub layers: usize,
    /// Weights of MADE conditioners, whose masks `Model::load` checks one by one
    /// (a load-time term; every layer counts, not only step 0's).
    pub masked_weights: usize,
}

fn add_dense(w: &mut Work, shape: &MlpShape) {
    let macs: usize = (0..shape.n_dense()).map(|d| shape.dense_shape(d)).map(|(r, c)| r * c).sum();
    if shape.precision == Precision::Int8 {
        w.int8_rows += (0..shape.n_dense()).map(|d| shape.dense_shape(d).0).sum::<usize>() + shape.n_in;
    }
    match shape.precision {
        Precision::F32 => w.macs_f32 += macs,
        Precision::W8 => w.macs_w8 += macs,
        Precision::Int8 => w.macs_int8 += macs,
    }
}

/// The [`Work`] of one `log_prob` of `model`.
pub(crate) fn log_prob_work(model: &Model<'_>) -> Result<Work> {
    let dims = Dims::of(model.header());
    let dim = dims.dim;
    let (first, len) = model.step_layers(0)?;
    let mut w = Work { coords: dim, ..Work::default() };
    for i in 0..model.header().n_layers {
        if let Plan::Made { shape, .. } = Plan::of(&model.view().layer(i)?, &dims) {
            w.masked_weights += (0..shape.n_dense()).map(|d| shape.dense_shape(d)).map(|(r, c)| r * c).sum::<usize>();
        }
    }
    for i in first..first + len {
        let rec = model.view().layer(i)?;
        w.layers += 1;
        w.coords += dim;
        match Plan::of(&rec, &dims) {
            Plan::Coupling { shape, elem, split } => {
                add_dense(&mut w, &shape);
                if let Elementwise::Spline { bins, .. } = elem {
                    w.spline_bins += dim.saturating_sub(split) * bins;
                }
            }
            Plan::Made { shape, elem } => {
                add_dense(&mut w, &shape);
                if let Elementwise::Spline { bins, .. } = elem {
                    w.spline_bins += dim * bins;
                }
            }
            Plan::LuLinear => w.macs_lu += dim * dim,
            Plan::Permute | Plan::Reverse | Plan::ActNorm | Plan::Encoder { .. } => {}
        }
    }
    Ok(w)
}
