//! The particle tracker: `N` sampled futures of `T` steps, in fixed memory.

use super::{encode_history, Frame, Point};
use crate::error::{Error, Result};
use crate::format::{TrajectoryLayout, MAX_OBSERVED, MAX_TRAJECTORY_CONTEXT};
use crate::model::Model;
use crate::rng::Rng;
use crate::transforms::Encoder;

use crate::kernels::LogSum;

mod density;
#[cfg(test)]
mod tests;

/// What to do when the effective sample size falls below the set fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refresh {
    /// Systematic resampling of the particles (no network evaluation).
    Resample,
    /// A new prediction from the latest observed positions (the exact one:
    /// encoder and N · T conditional samples).
    Recompute,
}

/// The outcome of [`Tracker::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Update {
    /// Effective sample size after the update, `(Σw)² / Σw²`, in `1 ..= N`.
    pub ess: f32,
    /// The refresh the update triggered, if any.
    pub refreshed: Option<Refresh>,
}

/// `N` particles (sampled futures) of `T` steps for one person, and the exact
/// conditional densities behind them. Several trackers over one [`Model`] track
/// several people; each holds only its own state.
///
/// Memory: `N·T` positions, `N` log-weights, the encoding and the latest observed
/// positions — nothing else, and no heap. Every method takes the caller's
/// `scratch` of [`Model::scratch_len`] words.
#[derive(Debug, Clone)]
pub struct Tracker<'m, const N: usize, const T: usize> {
    model: Model<'m>,
    layout: TrajectoryLayout,
    rng: Rng,
    frame: Frame,
    /// The encoding `h` (its first `encoding` values).
    h: [f32; MAX_TRAJECTORY_CONTEXT],
    encoding: usize,
    /// Particle positions, model frame: `paths[i][s]` is particle i's position
    /// after step `s` (0-based).
    paths: [[Point; T]; N],
    /// Log-weights, the largest 0.
    log_w: [f32; N],
    /// Steps consumed by updates.
    done: usize,
    /// The last observed position (model frame) and the displacement into it.
    last_obs: Point,
    prev_obs: Point,
    /// The latest observed positions, world frame, oldest first.
    history: [Point; MAX_OBSERVED],
    predicted: bool,
}

fn sub2(a: Point, b: Point) -> Point {
    [a[0] - b[0], a[1] - b[1]]
}

fn finite(p: &[Point]) -> bool {
    p.iter().all(|q| q[0].is_finite() && q[1].is_finite())
}

impl<'m, const N: usize, const T: usize> Tracker<'m, N, T> {
    /// A tracker for `model`, a trajectory model of horizon `T`, drawing with a
    /// generator seeded by `seed`.
    pub fn new(model: Model<'m>, seed: u64) -> Result<Self> {
        let layout = model.trajectory_layout().ok_or(Error::NotATrajectoryModel)?;
        if layout.horizon as usize != T {
            return Err(Error::HorizonMismatch { expected: u32::from(layout.horizon), got: T as u32 });
        }
        if N == 0 {
            return Err(Error::BufferTooSmall { needed: 1, got: 0 });
        }
        Ok(Tracker {
            model,
            layout,
            rng: Rng::new(seed),
            frame: Frame { origin: [0.0; 2], cos: 1.0, sin: 0.0 },
            h: [0.0; MAX_TRAJECTORY_CONTEXT],
            encoding: 0,
            paths: [[[0.0; 2]; T]; N],
            log_w: [0.0; N],
            done: 0,
            last_obs: [0.0; 2],
            prev_obs: [0.0; 2],
            history: [[0.0; 2]; MAX_OBSERVED],
            predicted: false,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The frame of the current prediction.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Steps of the prediction still ahead (T minus the updates since).
    pub fn steps_left(&self) -> usize {
        if self.predicted {
            T - self.done
        } else {
            0
        }
    }

    /// Particle `i`'s position `step` steps from now (1-based), world frame.
    pub fn position(&self, i: usize, step: usize) -> Option<Point> {
        // Checked: `step` comes from the caller (a C caller may pass SIZE_MAX).
        let s = self.done.checked_add(step)?.checked_sub(1)?;
        let p = self.paths.get(i)?.get(s)?;
        (step >= 1 && self.predicted).then(|| self.frame.to_world(*p))
    }

    /// Particle `i`'s normalized weight.
    pub fn weight(&self, i: usize) -> Option<f32> {
        let lw = *self.log_w.get(i)?;
        Some(crate::kernels::math::exp(lw - self.log_total()))
    }

    /// The effective sample size of the weights, `(Σw)² / Σw²`.
    pub fn ess(&self) -> f32 {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &lw in &self.log_w {
            let w = crate::kernels::math::exp(lw);
            s1 += w;
            s2 += w * w;
        }
        if s2 > 0.0 {
            s1 * s1 / s2
        } else {
            0.0
        }
    }

    fn log_total(&self) -> f32 {
        let mut t = LogSum::new();
        for &lw in &self.log_w {
            t.add(lw);
        }
        t.value()
    }

    fn check_scratch(&self, scratch: &[f32]) -> Result<()> {
        if scratch.len() < self.model.scratch_len() {
            return Err(Error::ScratchTooSmall {
                needed: self.model.scratch_len() as u32,
                got: u32::try_from(scratch.len()).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    /// The step flow's context for step `s` (0-based) after displacement `prev`.
    fn context<'c>(
        encoder: &Encoder<'_, '_>,
        h: &[f32],
        s: usize,
        prev: Point,
        out: &'c mut [f32; MAX_TRAJECTORY_CONTEXT],
    ) -> Result<&'c [f32]> {
        let e = encoder.step(s)?;
        let n = h.len() + 2 + e.len();
        let ctx = out.get_mut(..n).ok_or(Error::Internal)?;
        let (hh, rest) = ctx.split_at_mut(h.len());
        hh.copy_from_slice(h);
        let (pp, ee) = rest.split_at_mut(2);
        pp.copy_from_slice(&prev);
        ee.copy_from_slice(e);
        Ok(ctx)
    }

    /// Predict from `history` (the model's `observed` latest positions, world
    /// frame, oldest first): encode it and sample `N` futures of `T` steps.
    pub fn predict(&mut self, history: &[Point], scratch: &mut [f32]) -> Result<()> {
        let n = self.layout.observed as usize;
        if history.len() != n {
            return Err(Error::DimMismatch { expected: n as u32, got: history.len() as u32 });
        }
        // Finite positions so far apart that their displacement's squared
        // length overflows f32 are as unusable as non-finite ones: refused
        // before anything changes (the fuzzer found 1e38-apart positions).
        let steps_fit = history.windows(2).all(|w| match w {
            [a, b] => {
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                (dx * dx + dy * dy).is_finite()
            }
            _ => true,
        });
        if !finite(history) || !steps_fit {
            return Err(Error::NonFiniteInput);
        }
        self.check_scratch(scratch)?;
        self.history.get_mut(..n).ok_or(Error::Internal)?.copy_from_slice(history);
        self.start(scratch)
    }

    /// Predict again from the latest observed positions (the original history
    /// shifted by the updates since): the exact recomputation a fast update
    /// approximates.
    pub fn recompute(&mut self, scratch: &mut [f32]) -> Result<()> {
        if !self.predicted {
            return Err(Error::NothingToUpdate);
        }
        self.check_scratch(scratch)?;
        self.start(scratch)
    }

    /// A new prediction from `self.history`. Should it fail half way, the
    /// tracker is left unpredicted (every later call says `NothingToUpdate`
    /// until a prediction succeeds), never with half-written particles.
    fn start(&mut self, scratch: &mut [f32]) -> Result<()> {
        let r = self.start_inner(scratch);
        if r.is_err() {
            self.predicted = false;
        }
        r
    }

    fn start_inner(&mut self, scratch: &mut [f32]) -> Result<()> {
        let n = self.layout.observed as usize;
        let model = self.model;
        let encoder = model.encoder()?;
        let hist = self.history.get(..n).ok_or(Error::Internal)?;
        let mut feat = [0.0f32; 2 * MAX_OBSERVED];
        let feat = feat.get_mut(..self.layout.features()).ok_or(Error::Internal)?;
        let width = encoder.cond.shape().n_out;
        let h = self.h.get_mut(..width).ok_or(Error::Internal)?;
        let (frame, v0) = encode_history(&model, self.layout.heading_frame, hist, feat, h, scratch)?;
        let h = self.h.get(..width).ok_or(Error::Internal)?;
        let mut ctx = [0.0f32; MAX_TRAJECTORY_CONTEXT];
        for (path, lw) in self.paths.iter_mut().zip(self.log_w.iter_mut()) {
            let (mut pos, mut prev) = ([0.0f32; 2], v0);
            for (s, slot) in path.iter_mut().enumerate() {
                let c = Self::context(&encoder, h, s, prev, &mut ctx)?;
                let mut v = [0.0f32; 2];
                model.sample_step(s, &mut self.rng, c, &mut v, scratch)?;
                pos = [pos[0] + v[0], pos[1] + v[1]];
                *slot = pos;
                prev = v;
            }
            *lw = 0.0;
        }
        self.frame = frame;
        self.encoding = width;
        self.done = 0;
        self.last_obs = [0.0; 2];
        self.prev_obs = v0;
        self.predicted = true;
        Ok(())
    }

    /// The next position `y` (world frame) was observed, with isotropic Gaussian
    /// sensor noise of standard deviation `sigma` metres: reweight the particles
    /// by `N(y; x_i, σ²I)` and shift the horizon by one step. No network
    /// evaluation.
    pub fn update(&mut self, y: Point, sigma: f32) -> Result<Update> {
        if !self.predicted || self.done >= T {
            return Err(Error::NothingToUpdate);
        }
        if !(y[0].is_finite() && y[1].is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(Error::InvalidArgument);
        }
        let u = self.frame.to_local(y);
        let inv = 0.5 / (sigma * sigma);
        let mut max = f32::NEG_INFINITY;
        for (path, lw) in self.paths.iter().zip(self.log_w.iter_mut()) {
            let p = *path.get(self.done).ok_or(Error::Internal)?;
            let d = sub2(p, u);
            let next = *lw - (d[0] * d[0] + d[1] * d[1]) * inv;
            *lw = if next.is_nan() { f32::NEG_INFINITY } else { next };
            if *lw > max {
                max = *lw;
            }
        }
        for lw in self.log_w.iter_mut() {
            // Every particle impossible: start again from equal weights.
            *lw = if max > f32::NEG_INFINITY { *lw - max } else { 0.0 };
        }
        self.prev_obs = sub2(u, self.last_obs);
        self.last_obs = u;
        self.done += 1;
        let n = self.layout.observed as usize;
        let hist = self.history.get_mut(..n).ok_or(Error::Internal)?;
        hist.rotate_left(1);
        if let Some(last) = hist.last_mut() {
            *last = y;
        }
        Ok(Update { ess: self.ess(), refreshed: None })
    }

    /// [`Tracker::update`], then `refresh` when the effective sample size falls
    /// below `min_ess_fraction · N` (and steps remain).
    pub fn update_and_refresh(
        &mut self,
        y: Point,
        sigma: f32,
        min_ess_fraction: f32,
        refresh: Refresh,
        scratch: &mut [f32],
    ) -> Result<Update> {
        self.check_scratch(scratch)?;
        let mut up = self.update(y, sigma)?;
        if up.ess < min_ess_fraction * N as f32 {
            match refresh {
                Refresh::Resample if self.done < T => self.resample()?,
                Refresh::Resample => return Ok(up),
                Refresh::Recompute => self.recompute(scratch)?,
            }
            up.refreshed = Some(refresh);
        }
        Ok(up)
    }

    /// Systematic resampling: particles are copied in proportion to their
    /// weights (one uniform draw), and the weights reset to equal.
    pub fn resample(&mut self) -> Result<()> {
        if !self.predicted {
            return Err(Error::NothingToUpdate);
        }
        let mut w = [0.0f32; N];
        let mut total = 0.0f32;
        for (wi, &lw) in w.iter_mut().zip(self.log_w.iter()) {
            *wi = crate::kernels::math::exp(lw);
            total += *wi;
        }
        let mut counts = [0usize; N];
        let step = total / N as f32;
        let mut target = self.rng.uniform() * step;
        let (mut cum, mut assigned) = (0.0f32, 0usize);
        for (c, &wi) in counts.iter_mut().zip(w.iter()) {
            cum += wi;
            while target < cum && assigned < N {
                *c += 1;
                assigned += 1;
                target += step;
            }
        }
        // Rounding may leave a draw or two: give them to the heaviest particle.
        if assigned < N {
            let heaviest =
                w.iter().enumerate().fold(0, |b, (i, &v)| if v > w.get(b).copied().unwrap_or(0.0) { i } else { b });
            if let Some(c) = counts.get_mut(heaviest) {
                *c += N - assigned;
            }
        }
        // In place: a particle drawn k > 1 times fills k − 1 slots of particles
        // drawn 0 times.
        let mut free = 0usize;
        for src in 0..N {
            let extra = counts.get(src).copied().unwrap_or(0).saturating_sub(1);
            for _ in 0..extra {
                while counts.get(free).is_some_and(|&c| c > 0) {
                    free += 1;
                }
                let path = *self.paths.get(src).ok_or(Error::Internal)?;
                *self.paths.get_mut(free).ok_or(Error::Internal)? = path;
                if let Some(c) = counts.get_mut(free) {
                    *c = 1;
                }
            }
        }
        self.log_w = [0.0; N];
        Ok(())
    }
}
