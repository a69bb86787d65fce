//! MADE autoregressive layers (MAF): affine or spline.
//!
//! The conditioner sees `[x, context]` through masked weights (Germain et al.
//! 2015): input `k < D` has degree `k + 1`, hidden unit `j` has degree
//! `1 + j mod (D - 1)` (0 when D = 1), output `o` belongs to coordinate
//! `o / P` (P params per coordinate) of degree `o / P + 1`. A weight from a unit
//! of degree `a` into a hidden unit of degree `b` is allowed iff `b >= a`; into an
//! output of degree `b` iff `b > a`; context inputs connect everywhere. The masks
//! are folded into the stored weights, and the runtime checks at load that every
//! masked weight is exactly zero — so the layer is autoregressive by construction
//! and `inverse` is exact.
//!
//! `forward` (data to latent) takes one conditioner pass; `inverse` takes D.

use super::Elementwise;
use crate::conditioner::{mlp_eval, MlpShape, Quant, Tracer};
use crate::error::{Error, Result};
use crate::kernels::{at, set, sub, sub_mut, take};
use crate::model::Core;

/// Degree of hidden unit `j` for data dimension `dim`.
pub const fn hidden_degree(j: usize, dim: usize) -> usize {
    if dim <= 1 {
        0
    } else {
        1 + j % (dim - 1)
    }
}

/// Which weight matrix of a MADE conditioner a mask belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskLayer {
    /// The first layer: columns are `[x (D), context (C)]`, rows hidden units.
    Input,
    /// Hidden to hidden (plain layers and both matrices of a residual block).
    Hidden,
    /// The last layer: rows are outputs (`P` per coordinate), columns hidden units.
    Output,
}

/// Whether weight `(row, col)` (row = receiving unit) of a MADE conditioner may be
/// non-zero, for data dimension `dim` and `ppd` outputs per coordinate. This is
/// the one definition of the masks: the exporter builds its masks from it.
pub fn mask_allows(layer: MaskLayer, dim: usize, ppd: usize, row: usize, col: usize) -> bool {
    match layer {
        MaskLayer::Input => col >= dim || hidden_degree(row, dim) > col,
        MaskLayer::Output => row / ppd.max(1) + 1 > hidden_degree(col, dim),
        MaskLayer::Hidden => hidden_degree(row, dim) >= hidden_degree(col, dim),
    }
}

fn mask_layer(shape: &MlpShape, d: usize) -> MaskLayer {
    if d == 0 {
        MaskLayer::Input
    } else if d + 1 == shape.n_dense() {
        MaskLayer::Output
    } else {
        MaskLayer::Hidden
    }
}

/// Check that every masked weight is exactly zero (f32 `0.0` or int8 `0`).
pub(crate) fn check_masks(core: &Core<'_>, shape: &MlpShape, first: u32, dim: usize, ppd: usize) -> Result<bool> {
    for d in 0..shape.n_dense() {
        let t = first + shape.weight_index(d) as u32;
        let (rows, cols) = shape.dense_shape(d);
        let layer = mask_layer(shape, d);
        let allowed = |k: usize| mask_allows(layer, dim, ppd, k / cols.max(1), k % cols.max(1));
        let ok = if shape.quant == Quant::F32 {
            let w = core.f32_tensor(t)?;
            w.len() == rows * cols && w.iter().enumerate().all(|(k, &v)| v == 0.0 || allowed(k))
        } else {
            let w = core.i8_tensor(t)?;
            w.len() == rows * cols && w.iter().enumerate().all(|(k, &v)| v == 0 || allowed(k))
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Forward (one pass) or inverse (D passes) of a MADE layer, in place on `x`.
/// `zbuf` holds D values of work space for the inverse.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    core: &Core<'_>,
    shape: &MlpShape,
    elem: &Elementwise,
    first: u32,
    x: &mut [f32],
    ctx: &[f32],
    zbuf: &mut [f32],
    mut work: &mut [f32],
    inverse: bool,
    trace: &mut Tracer<'_>,
) -> Result<f32> {
    let dim = x.len();
    let cond_in = take(&mut work, shape.n_in)?;
    let out = take(&mut work, shape.n_out)?;
    let mlp_work = take(&mut work, shape.work_len())?;
    let elem_work = take(&mut work, elem.work_len())?;
    if dim + ctx.len() != cond_in.len() || zbuf.len() != dim {
        return Err(Error::Internal);
    }
    sub_mut(cond_in, dim, ctx.len())?.copy_from_slice(ctx);
    let mut logdet = 0.0f32;
    if !inverse {
        sub_mut(cond_in, 0, dim)?.copy_from_slice(x);
        mlp_eval(core, shape, first, cond_in, out, mlp_work)?;
        trace.emit(cond_in, out);
        for (j, v) in x.iter_mut().enumerate() {
            let (z, ld) = elem.forward(*v, out, j, elem_work)?;
            *v = z;
            logdet += ld;
        }
    } else {
        zbuf.copy_from_slice(x);
        for v in sub_mut(cond_in, 0, dim)?.iter_mut() {
            *v = 0.0;
        }
        for j in 0..dim {
            mlp_eval(core, shape, first, cond_in, out, mlp_work)?;
            trace.emit(cond_in, out);
            let (xj, ld) = elem.inverse(at(zbuf, j)?, out, j, elem_work)?;
            set(cond_in, j, xj)?;
            logdet += ld;
        }
        x.copy_from_slice(sub(cond_in, 0, dim)?);
    }
    Ok(logdet)
}
