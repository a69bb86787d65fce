//! Coupling layers: RealNVP (affine) and NSF (rational-quadratic spline).
//!
//! The first `split` coordinates pass through unchanged; together with the context
//! they feed the conditioner, whose output parameterizes an elementwise map
//! ([`super::Elementwise`]) of the remaining `D - split` coordinates. Reverse or
//! permutation layers between couplings let every coordinate be transformed.

use super::conditioner::Conditioner;
use super::{Elementwise, Tracer};
use crate::error::{Error, Result};
use crate::kernels::{sub_mut, take};

/// A coupling layer bound to its conditioner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coupling<'v, 'a> {
    pub(crate) cond: Conditioner<'v, 'a>,
    pub(crate) elem: Elementwise,
    pub(crate) split: usize,
}

impl Coupling<'_, '_> {
    /// Forward (`inverse == false`) or inverse pass, in place on `x`.
    pub(crate) fn apply(
        &self,
        x: &mut [f32],
        ctx: &[f32],
        mut work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let (shape, elem, split) = (self.cond.shape(), &self.elem, self.split);
        let cond_in = take(&mut work, shape.n_in)?;
        let out = take(&mut work, shape.n_out)?;
        let mlp_work = take(&mut work, shape.work_len())?;
        let elem_work = take(&mut work, elem.work_len())?;
        let (head, tail) = x.split_at_mut(split.min(x.len()));
        if head.len() != split || head.len() + ctx.len() != cond_in.len() {
            return Err(Error::Internal);
        }
        sub_mut(cond_in, 0, split)?.copy_from_slice(head);
        sub_mut(cond_in, split, ctx.len())?.copy_from_slice(ctx);
        self.cond.eval(cond_in, out, mlp_work)?;
        trace.emit(cond_in, out);
        let mut logdet = 0.0f32;
        for (j, v) in tail.iter_mut().enumerate() {
            let (nv, ld) =
                if inverse { elem.inverse(*v, out, j, elem_work)? } else { elem.forward(*v, out, j, elem_work)? };
            *v = nv;
            logdet += ld;
        }
        Ok(logdet)
    }
}
