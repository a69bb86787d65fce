//! `Model::log_prob_batch`: many rows, [`LANES`] at a time, the coupling and
//! MADE layers (f32 and int8 conditioners, splines) and LU layers in vector
//! lanes, every row with the bits `Model::log_prob` gives it.

use super::{len32, not_nan, Model};
use crate::error::{Error, Result};
use crate::kernels::{sub, LANES};
use crate::transforms::coupling::{forward_lanes, lanes_work_len};
use crate::transforms::{lu_linear, Layer, Tracer};

impl Model<'_> {
    /// Scratch (`f32` words) [`Model::log_prob_batch`] needs: each of the
    /// [`LANES`] rows its own [`Model::scratch_len`] and its state and context,
    /// plus what the widest coupling or MADE layer needs to run on all lanes at
    /// once.
    pub fn batch_scratch_len(&self) -> usize {
        // An LU layer's rows, transposed.
        let mut shared = self.dim() * LANES;
        if let Ok((first, n)) = self.step_layers(0) {
            for i in first..first.saturating_add(n) {
                match Layer::bind(&self.view, i) {
                    Ok(Layer::Coupling(c)) => shared = shared.max(lanes_work_len(&c.cond, &c.elem)),
                    Ok(Layer::Made(m)) => shared = shared.max(lanes_work_len(&m.cond, &m.elem)),
                    _ => {}
                }
            }
        }
        LANES * (self.scratch_len() + self.dim() + self.context_dim()) + shared
    }

    /// [`Model::log_prob`] of many rows: `x` holds `out.len()` rows of D values,
    /// `context` as many rows of C values (empty when C = 0). Rows go [`LANES`] at
    /// a time through the flow; a coupling or MADE layer (an f32 or int8
    /// conditioner, and the splines) and an LU layer run on all of them at once in the CPU's
    /// vector lanes (on x86-64 in AVX-512 or AVX2 where the CPU has them,
    /// detected at run time), every lane performing exactly the single-row
    /// sequence of operations, so each `out[r]` has the bits `log_prob` gives
    /// row `r` (tested), on the host as on a device. w8 conditioners run row by
    /// row inside the lane pass; the other layers and the last
    /// `out.len() % LANES` rows take the single-row path. `scratch` must hold [`Model::batch_scratch_len`]
    /// words. Every row is checked first; a bad row is an error and nothing is
    /// written.
    pub fn log_prob_batch(&self, x: &[f32], context: &[f32], out: &mut [f32], scratch: &mut [f32]) -> Result<()> {
        let (d, cd, rows) = (self.dim(), self.context_dim(), out.len());
        if x.len() != rows * d {
            return Err(Error::DimMismatch { expected: (rows * d) as u32, got: len32(x) });
        }
        if context.len() != rows * cd {
            return Err(Error::ContextMismatch { expected: (rows * cd) as u32, got: len32(context) });
        }
        let needed = self.batch_scratch_len();
        if scratch.len() < needed {
            return Err(Error::ScratchTooSmall { needed: needed as u32, got: len32(scratch) });
        }
        let one = self.scratch_len();
        for r in 0..rows {
            let ctx = context.get(r * cd..(r + 1) * cd).ok_or(Error::Internal)?;
            self.check_call(sub(x, r * d, d)?, ctx, scratch)?;
        }
        let layers = self.step_layers(0)?;
        let full = rows - rows % LANES;
        let (lane_scratch, rest) = scratch.split_at_mut(LANES * one);
        let (states, rest) = rest.split_at_mut(LANES * d);
        let (ctxs, shared) = rest.split_at_mut(LANES * cd);
        let mut chunks = out.chunks_exact_mut(LANES);
        for (chunk, outs) in (&mut chunks).enumerate() {
            let r0 = chunk * LANES;
            // Per lane: its standardized state and context (gathered in two
            // blocks, lane after lane) and its single-row scratch.
            for l in 0..LANES {
                let xr = sub(x, (r0 + l) * d, d)?;
                let st = states.get_mut(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                for (((o, &v), &m), &s) in st.iter_mut().zip(xr).zip(self.x_mean).zip(self.x_std) {
                    *o = (v - m) / s;
                }
                let cr = context.get((r0 + l) * cd..(r0 + l + 1) * cd).ok_or(Error::Internal)?;
                let c = ctxs.get_mut(l * cd..(l + 1) * cd).ok_or(Error::Internal)?;
                for (((o, &v), &m), &s) in c.iter_mut().zip(cr).zip(self.c_mean).zip(self.c_std) {
                    *o = (v - m) / s;
                }
            }
            let mut lds = [0.0f32; LANES];
            let (first, n) = layers;
            for i in first..first + n {
                let layer = Layer::bind(&self.view, i)?;
                match layer {
                    // A coupling's conditioner reads the first `split`
                    // coordinates and transforms the rest; MADE's reads and
                    // transforms all of them.
                    Layer::Coupling(c) => {
                        let (cond, elem, split) = (&c.cond, &c.elem, (c.split, c.split));
                        forward_lanes(cond, elem, split, states, ctxs, lane_scratch, shared, &mut lds)?;
                    }
                    Layer::Made(m) => {
                        forward_lanes(&m.cond, &m.elem, (d, 0), states, ctxs, lane_scratch, shared, &mut lds)?;
                    }
                    Layer::LuLinear { lu, log_diag, bias } => {
                        let ld = lu_linear::forward_lanes(lu, log_diag, bias, states, shared)?;
                        for o in lds.iter_mut() {
                            *o += ld;
                        }
                    }
                    _ => {
                        for (l, ld) in lds.iter_mut().enumerate() {
                            let ls = lane_scratch.get_mut(l * one..(l + 1) * one).ok_or(Error::Internal)?;
                            let (tmp, work) = ls.split_at_mut(d.min(ls.len()));
                            let st = states.get_mut(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                            let c = ctxs.get(l * cd..(l + 1) * cd).ok_or(Error::Internal)?;
                            *ld += layer.apply(st, tmp, c, work, false, &mut Tracer::none())?;
                        }
                    }
                }
            }
            for (l, (o, ld)) in outs.iter_mut().zip(lds).enumerate() {
                let st = states.get(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                *o = not_nan(self.base.log_kernel(st)? + ld + self.log_const);
            }
        }
        self.log_prob_rows(x, context, chunks.into_remainder(), full, lane_scratch)
    }

    /// `out[k] = log_prob(row first + k)`, one row at a time.
    fn log_prob_rows(
        &self,
        x: &[f32],
        context: &[f32],
        out: &mut [f32],
        first: usize,
        scratch: &mut [f32],
    ) -> Result<()> {
        let (d, cd) = (self.dim(), self.context_dim());
        for (k, o) in out.iter_mut().enumerate() {
            let r = first + k;
            let ctx = context.get(r * cd..(r + 1) * cd).ok_or(Error::Internal)?;
            *o = self.log_prob(sub(x, r * d, d)?, ctx, scratch)?;
        }
        Ok(())
    }
}
