//! MLP conditioners: plain or residual (as in NSF), with the context appended to
//! the input.
//!
//! Tensor order in the file (all row-major `out x in`):
//! - plain, `L` hidden layers: `W0 (H x in)`, `b0`, then `L-1` times `W (H x H)`, `b`,
//!   then `Wf (out x H)`, `bf`. Evaluates `h = act(W0 x + b0)`, `h = act(W h + b)`,
//!   `out = Wf h + bf`.
//! - residual, `R` blocks: `W0`, `b0`, then per block `W1`, `b1`, `W2`, `b2`, then
//!   `Wf`, `bf`. Evaluates `h = W0 x + b0`; per block `h += W2 act(W1 act(h) + b1) + b2`;
//!   `out = Wf h + bf`.

use crate::error::{Error, Result};
use crate::format::{Activation, LayerRecord, FLAG_RESIDUAL};
use crate::kernels::{activate, dense_f32, take};
use crate::model::Core;

/// Shape of a conditioner, derived from its layer record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MlpShape {
    pub n_in: usize,
    pub n_out: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub residual: bool,
    pub act: Activation,
}

impl MlpShape {
    pub(crate) fn new(rec: &LayerRecord, n_in: usize, n_out: usize) -> MlpShape {
        MlpShape {
            n_in,
            n_out,
            hidden: rec.hidden as usize,
            blocks: rec.blocks as usize,
            residual: rec.flags & FLAG_RESIDUAL != 0,
            act: rec.activation,
        }
    }

    /// Number of tensors the conditioner owns.
    pub(crate) fn n_tensors(&self) -> usize {
        if self.residual {
            4 + 4 * self.blocks
        } else {
            2 + 2 * self.blocks
        }
    }

    /// `f32` words of work space for [`mlp_eval`].
    pub(crate) fn work_len(&self) -> usize {
        if self.residual {
            3 * self.hidden
        } else {
            2 * self.hidden
        }
    }

    /// `(rows, cols)` of tensor `j` of the conditioner.
    pub(crate) fn tensor_shape(&self, j: usize) -> (usize, usize) {
        let n = self.n_tensors();
        let is_bias = j % 2 == 1;
        let rows = if j + 2 >= n { self.n_out } else { self.hidden };
        let cols = if is_bias {
            1
        } else if j == 0 {
            self.n_in
        } else {
            self.hidden
        };
        (rows, cols)
    }
}

/// Evaluate the conditioner whose tensors start at `first` on `input`, writing
/// `out`. `work` must hold [`MlpShape::work_len`] values.
pub(crate) fn mlp_eval(
    core: &Core<'_>,
    shape: &MlpShape,
    first: u32,
    input: &[f32],
    out: &mut [f32],
    mut work: &mut [f32],
) -> Result<()> {
    let hdim = shape.hidden;
    let w = |j: usize| core.f32_tensor(first + j as u32);
    let h = take(&mut work, hdim)?;
    let t1 = take(&mut work, hdim)?;
    if shape.n_in != input.len() || shape.n_out != out.len() {
        return Err(Error::Internal);
    }
    if shape.residual {
        let t2 = take(&mut work, hdim)?;
        dense_f32(w(0)?, w(1)?, input, h)?;
        for blk in 0..shape.blocks {
            let j = 2 + 4 * blk;
            t1.copy_from_slice(h);
            activate(shape.act, t1);
            dense_f32(w(j)?, w(j + 1)?, t1, t2)?;
            activate(shape.act, t2);
            dense_f32(w(j + 2)?, w(j + 3)?, t2, t1)?;
            for (hi, ti) in h.iter_mut().zip(t1.iter()) {
                *hi += *ti;
            }
        }
        let j = 2 + 4 * shape.blocks;
        dense_f32(w(j)?, w(j + 1)?, h, out)
    } else {
        dense_f32(w(0)?, w(1)?, input, h)?;
        activate(shape.act, h);
        let (mut cur, mut nxt) = (h, t1);
        for l in 1..shape.blocks {
            dense_f32(w(2 * l)?, w(2 * l + 1)?, cur, nxt)?;
            activate(shape.act, nxt);
            core::mem::swap(&mut cur, &mut nxt);
        }
        let j = 2 * shape.blocks;
        dense_f32(w(j)?, w(j + 1)?, cur, out)
    }
}
