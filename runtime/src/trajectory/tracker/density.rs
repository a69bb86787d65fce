//! The tracker's density queries: the exact joint density of a whole future,
//! and the density of the position at one step, at a point or on a grid (the
//! mixture over the particles of the exact conditional densities).

use super::{finite, sub2, Tracker};
use crate::error::{Error, Result};
use crate::format::MAX_TRAJECTORY_CONTEXT;
use crate::kernels::LogSum;
use crate::model::not_nan;
use crate::trajectory::Point;
use crate::transforms::Tracer;

impl<'m, const N: usize, const T: usize> Tracker<'m, N, T> {
    /// The exact joint log-density (nats, world units) of the future positions
    /// `future` — the [`Tracker::steps_left`] positions after the last observed
    /// one — given the history and every position observed since.
    pub fn log_prob_future(&self, future: &[Point], scratch: &mut [f32]) -> Result<f32> {
        if !self.predicted {
            return Err(Error::NothingToUpdate);
        }
        let steps = T - self.done;
        if future.len() != steps {
            return Err(Error::DimMismatch { expected: steps as u32, got: future.len() as u32 });
        }
        if !finite(future) {
            return Err(Error::NonFiniteInput);
        }
        self.check_scratch(scratch)?;
        let encoder = self.model.encoder()?;
        let h = self.h.get(..self.encoding).ok_or(Error::Internal)?;
        let mut ctx = [0.0f32; MAX_TRAJECTORY_CONTEXT];
        let (mut pos, mut prev) = (self.last_obs, self.prev_obs);
        let mut sum = 0.0f32;
        for (k, &x) in future.iter().enumerate() {
            let s = self.done + k;
            let u = self.frame.to_local(x);
            let v = sub2(u, pos);
            if !finite(&[v]) {
                // A step too long for f32: a density too small for it.
                return Ok(f32::NEG_INFINITY);
            }
            let c = Self::context(&encoder, h, s, prev, &mut ctx)?;
            sum += self.model.log_prob_with(s, &v, c, scratch, &mut Tracer::none())?;
            pos = u;
            prev = v;
        }
        Ok(not_nan(sum))
    }

    /// `log p(x = q)` for the position `step` steps from now (1-based; up to
    /// [`Tracker::steps_left`]), world frame. The next step is the exact
    /// conditional density given everything observed; later steps are the
    /// weighted mixture over the particles' prefixes of the exact conditional
    /// densities of the step.
    pub fn log_density(&self, step: usize, q: Point, scratch: &mut [f32]) -> Result<f32> {
        if !self.predicted {
            return Err(Error::NothingToUpdate);
        }
        let left = T - self.done;
        if step == 0 || step > left {
            let step = u32::try_from(step).unwrap_or(u32::MAX);
            return Err(Error::StepOutOfRange { step, steps: left as u32 });
        }
        if !(q[0].is_finite() && q[1].is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        self.check_scratch(scratch)?;
        let encoder = self.model.encoder()?;
        let h = self.h.get(..self.encoding).ok_or(Error::Internal)?;
        let mut ctx = [0.0f32; MAX_TRAJECTORY_CONTEXT];
        let u = self.frame.to_local(q);
        let s = self.done + step - 1;
        if step == 1 {
            let v = sub2(u, self.last_obs);
            if !finite(&[v]) {
                // A query too far for f32: a density too small for it.
                return Ok(f32::NEG_INFINITY);
            }
            let c = Self::context(&encoder, h, s, self.prev_obs, &mut ctx)?;
            return self.model.log_prob_with(s, &v, c, scratch, &mut Tracer::none());
        }
        let mut mix = LogSum::new();
        for (path, &lw) in self.paths.iter().zip(self.log_w.iter()) {
            // s ≥ 1 here: the particle's position and displacement before step s.
            let before = *path.get(s - 1).ok_or(Error::Internal)?;
            let prev = sub2(before, if s >= 2 { *path.get(s - 2).ok_or(Error::Internal)? } else { [0.0; 2] });
            let v = sub2(u, before);
            if !finite(&[v]) {
                continue; // this particle gives the query no density
            }
            let c = Self::context(&encoder, h, s, prev, &mut ctx)?;
            let lp = self.model.log_prob_with(s, &v, c, scratch, &mut Tracer::none())?;
            mix.add(lw + lp);
        }
        Ok(not_nan(mix.value() - self.log_total()))
    }

    /// [`Tracker::log_density`] on the grid of `nx × ny` points `origin + (i, j) ·
    /// cell`, row by row (`out[j·nx + i]`).
    #[allow(clippy::too_many_arguments)]
    pub fn log_density_grid(
        &self,
        step: usize,
        origin: Point,
        cell: f32,
        nx: usize,
        ny: usize,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        if out.len() != nx.saturating_mul(ny) {
            return Err(Error::DimMismatch {
                expected: u32::try_from(nx.saturating_mul(ny)).unwrap_or(u32::MAX),
                got: u32::try_from(out.len()).unwrap_or(u32::MAX),
            });
        }
        for (k, o) in out.iter_mut().enumerate() {
            let (i, j) = (k % nx.max(1), k / nx.max(1));
            let q = [origin[0] + i as f32 * cell, origin[1] + j as f32 * cell];
            *o = self.log_density(step, q, scratch)?;
        }
        Ok(())
    }
}
