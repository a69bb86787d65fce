//! MADE autoregressive layers (MAF): affine or spline.
//!
//! The conditioner sees `[x, context]` through masked weights; the mask rule is the
//! format's ([`crate::format::made`]). The masks are folded into the stored
//! weights, and the runtime checks at load that every masked weight is exactly
//! zero — so the layer is autoregressive by construction and `inverse` is exact.
//!
//! `forward` (data to latent) takes one conditioner pass; `inverse` takes D.

use super::conditioner::{Conditioner, Weights};
use super::{Elementwise, Tracer};
use crate::error::{Error, Result};
use crate::format::made::{mask_allows_by, MaskLayer, MaskRule};
use crate::kernels::{at, set, sub, sub_mut, take};

/// A MADE layer bound to its conditioner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Made<'v, 'a> {
    pub(crate) cond: Conditioner<'v, 'a>,
    pub(crate) elem: Elementwise,
}

impl Made<'_, '_> {
    /// Check that every masked weight is exactly zero (f32 `0.0` or int8 `0`).
    pub(crate) fn check_masks(&self, dim: usize) -> Result<bool> {
        let shape = self.cond.shape();
        let ppd = self.elem.params_per_dim();
        let rule = MaskRule::of(self.elem.zuko(), shape.n_in.saturating_sub(dim));
        for d in 0..shape.n_dense() {
            let (rows, cols) = shape.dense_shape(d);
            let layer = MaskLayer::of(d, shape.n_dense());
            let allowed = |k: usize| mask_allows_by(rule, layer, dim, ppd, k / cols.max(1), k % cols.max(1));
            let ok = match self.cond.weights(d)? {
                Weights::F32(w) => w.len() == rows * cols && w.iter().enumerate().all(|(k, &v)| v == 0.0 || allowed(k)),
                Weights::I8(w) => w.len() == rows * cols && w.iter().enumerate().all(|(k, &v)| v == 0 || allowed(k)),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forward (one pass) or inverse (D passes), in place on `x`. `zbuf` holds D
    /// values of work space for the inverse.
    pub(crate) fn apply(
        &self,
        x: &mut [f32],
        ctx: &[f32],
        zbuf: &mut [f32],
        mut work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let (shape, elem) = (self.cond.shape(), &self.elem);
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
            self.cond.eval(cond_in, out, mlp_work)?;
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
                self.cond.eval(cond_in, out, mlp_work)?;
                trace.emit(cond_in, out);
                let (xj, ld) = elem.inverse(at(zbuf, j)?, out, j, elem_work)?;
                set(cond_in, j, xj)?;
                logdet += ld;
            }
            x.copy_from_slice(sub(cond_in, 0, dim)?);
        }
        Ok(logdet)
    }
}
