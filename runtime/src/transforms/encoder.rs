//! A trajectory model's history encoder: the observed displacements, standardized,
//! through an MLP (a [`Conditioner`]) to the encoding `h`; and the step embedding
//! `e_t` the shared step flow reads.

use super::conditioner::Conditioner;
use crate::error::{Error, Result};
use crate::kernels::{sub, take};

/// The encoder bound to its tensors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder<'v, 'a> {
    pub(crate) cond: Conditioner<'v, 'a>,
    /// Standardization of the features.
    pub(crate) mean: &'a [f32],
    pub(crate) std: &'a [f32],
    /// Step embedding, `T × E` row-major (empty when E = 0).
    pub(crate) embedding: &'a [f32],
    /// E.
    pub(crate) width: usize,
}

impl<'a> Encoder<'_, 'a> {
    /// Encode `features` (raw displacements) into `h`. `work` holds the plan's
    /// work space (`n_in + n_out + MLP work`).
    pub(crate) fn encode(&self, features: &[f32], h: &mut [f32], mut work: &mut [f32]) -> Result<()> {
        let shape = self.cond.shape();
        if features.len() != shape.n_in || h.len() != shape.n_out {
            return Err(Error::Internal);
        }
        let input = take(&mut work, shape.n_in)?;
        let out = take(&mut work, shape.n_out)?;
        for (((o, &v), &m), &s) in input.iter_mut().zip(features).zip(self.mean).zip(self.std) {
            *o = (v - m) / s;
        }
        self.cond.eval(input, out, work)?;
        h.copy_from_slice(out);
        Ok(())
    }

    /// The embedding of step `t` (0-based; empty when E = 0).
    pub(crate) fn step(&self, t: usize) -> Result<&'a [f32]> {
        let at = t.checked_mul(self.width).ok_or(Error::Internal)?;
        sub(self.embedding, at, self.width)
    }
}
