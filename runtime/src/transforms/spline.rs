//! Monotonic rational-quadratic spline (Durkan et al., "Neural Spline Flows", 2019).
//!
//! K bins on `[-B, B]`, identity (linear) tails outside. From `3K - 1` raw
//! conditioner outputs per coordinate, laid out `[w_0..w_{K-1}, h_0..h_{K-1}, d_1..d_{K-1}]`:
//! - widths `w = MIN_BIN + (1 - MIN_BIN K) softmax(raw_w)`, knots `x_0 = -B`,
//!   `x_i = 2B (w_0 + … + w_{i-1}) - B` (an exclusive running sum), `x_K = B`
//!   (the same for heights);
//! - interior derivatives `d_i = MIN_DERIVATIVE + softplus(raw_d + DERIVATIVE_SHIFT)`,
//!   boundary derivatives `d_0 = d_K = 1` so the tails join smoothly.
//!
//! The constants are the format's ([`crate::format::spline`]). Raw outputs of zero
//! give the identity, so a zero-initialized conditioner makes the layer start as
//! the identity map.

use crate::error::{Error, Result};
use crate::format::spline::{
    params_per_dim, zuko_clip, DERIVATIVE_SHIFT, MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE, ZUKO_NEG_LN_SLOPE,
};
use crate::kernels::math::{exp, exp_nonpos};
use crate::kernels::{at, softplus, sub, take};

pub(crate) mod lanes;

/// `f32` words of work space per spline evaluation: the two sides' K
/// exponentials (the format's scratch sizes count `3(K + 1)`, from when every
/// knot was stored; kept so that files and their scratch sizes stay as they
/// are).
pub(crate) const fn work_len(bins: usize) -> usize {
    3 * (bins + 1)
}

/// The softmax of a spline's raw bin logits, unnormalized: `e^(r − max r)`
/// per bin into `e` (K values), and their sum, added left to right. With
/// `ZUKO` the logits are soft-clipped first (zuko's parameterization).
fn softmax_parts<const ZUKO: bool>(raw: &[f32], e: &mut [f32]) -> Result<f32> {
    if e.len() != raw.len() || raw.is_empty() {
        return Err(Error::Internal);
    }
    let logit = |r: f32| if ZUKO { clip_logit(r) } else { r };
    let mut m = f32::NEG_INFINITY;
    for &r in raw {
        let r = logit(r);
        if r > m {
            m = r;
        }
    }
    // r − m ≤ 0 (or NaN: an infinite or NaN logit), `exp_nonpos`'s domain.
    let mut sum = 0.0f32;
    for (&r, ei) in raw.iter().zip(e.iter_mut()) {
        *ei = exp_nonpos(logit(r) - m);
        sum += *ei;
    }
    Ok(sum)
}

/// The knots of one side of a spline, one at a time from the left: softmax,
/// minimum size, running sum, scaled to `[-B, B]` — knot `i` is
/// `2B (Σ_{j<i} (min + (1 − min K) e_j / Σe)) − B` (with zuko's
/// parameterization the minimum is 0), knot 0 is `−B` and knot K is `B`.
/// A walk computes only the knots it is asked for, each with the same
/// operations in the same order as every other.
struct Knots<'e> {
    e: core::slice::Iter<'e, f32>,
    sum: f32,
    min: f32,
    scale: f32,
    bound: f32,
    cum: f32,
}

impl<'e> Knots<'e> {
    fn new<const ZUKO: bool>(e: &'e [f32], sum: f32, min: f32, bound: f32) -> Self {
        let min = if ZUKO { 0.0 } else { min };
        Knots { e: e.iter(), sum, min, scale: 1.0 - min * e.len() as f32, bound, cum: 0.0 }
    }

    /// The next interior knot (1, 2, …), or `B` once the bins are used up
    /// (knot K; the running sum's rounding would put it near, not at, `B`).
    #[inline(always)]
    fn next_knot(&mut self) -> f32 {
        let Some(&e) = self.e.next() else { return self.bound };
        if self.e.len() == 0 {
            return self.bound;
        }
        let p = e / self.sum;
        self.cum += self.min + self.scale * p;
        2.0 * self.bound * self.cum - self.bound
    }
}

/// zuko's soft clip of a bin logit.
fn clip_logit(r: f32) -> f32 {
    zuko_clip(r, 2.0, ZUKO_NEG_LN_SLOPE)
}

/// One interior knot derivative from its raw value.
fn derivative<const ZUKO: bool>(r: f32) -> f32 {
    if ZUKO {
        exp(zuko_clip(r, 1.0, ZUKO_NEG_LN_SLOPE))
    } else {
        MIN_DERIVATIVE + softplus(r + DERIVATIVE_SHIFT)
    }
}

/// Knot derivative `i` of `K + 1` from the `K - 1` raw interior values: 1 at
/// both ends (so the tails join smoothly), [`derivative`] inside.
fn derivative_at<const ZUKO: bool>(raw: &[f32], i: usize) -> Result<f32> {
    if i == 0 || i == raw.len() + 1 {
        return Ok(1.0);
    }
    Ok(derivative::<ZUKO>(at(raw, i - 1)?))
}

struct Bin {
    xk: f32,
    wk: f32,
    yk: f32,
    hk: f32,
    dk: f32,
    dk1: f32,
}

/// The bin holding `v` among the x-knots (`BY_Y` false) or the y-knots, the
/// softmax numerators kept in `work`; the parameterization chosen at compile
/// time so floe's own splines pay nothing for zuko's. Only the knots up to the
/// bin's right end and the bin's two knot derivatives are computed (each
/// value is the same whether or not the others are).
fn bin_of<const BY_Y: bool>(raw: &[f32], bins: usize, bound: f32, zuko: bool, v: f32, work: &mut [f32]) -> Result<Bin> {
    if zuko {
        bin_as::<true, BY_Y>(raw, bins, bound, v, work)
    } else {
        bin_as::<false, BY_Y>(raw, bins, bound, v, work)
    }
}

fn bin_as<const ZUKO: bool, const BY_Y: bool>(
    raw: &[f32],
    bins: usize,
    bound: f32,
    v: f32,
    work: &mut [f32],
) -> Result<Bin> {
    if raw.len() != params_per_dim(bins) {
        return Err(Error::Internal);
    }
    let mut w = &mut *work;
    let ew = take(&mut w, bins)?;
    let eh = take(&mut w, bins)?;
    let sw = softmax_parts::<ZUKO>(sub(raw, 0, bins)?, ew)?;
    let sh = softmax_parts::<ZUKO>(sub(raw, bins, bins)?, eh)?;
    let mut xs = Knots::new::<ZUKO>(ew, sw, MIN_BIN_WIDTH, bound);
    let mut ys = Knots::new::<ZUKO>(eh, sh, MIN_BIN_HEIGHT, bound);
    let (searched, other) = if BY_Y { (&mut ys, &mut xs) } else { (&mut xs, &mut ys) };
    // The bin: the largest i < K with knot i ≤ v. The knots never decrease
    // (each step adds min + scale·p ≥ 0, and rounding is monotone; a NaN
    // knot makes every later one NaN), so the knots ≤ v come first and the
    // walk stops at the first one above v (at once for a NaN v): bin 0
    // starts at −B, and the knot the walk stops at ends the bin.
    let (mut idx, mut lo, mut hi) = (0, -bound, bound);
    for i in 1..bins {
        let kn = searched.next_knot();
        if v >= kn {
            (idx, lo) = (i, kn);
        } else {
            hi = kn;
            break;
        }
    }
    // The other side's knots idx and idx + 1.
    let mut olo = -bound;
    for _ in 0..idx {
        olo = other.next_knot();
    }
    let ohi = other.next_knot();
    let ((xk, xk1), (yk, yk1)) = if BY_Y { ((olo, ohi), (lo, hi)) } else { ((lo, hi), (olo, ohi)) };
    let d = sub(raw, 2 * bins, bins.saturating_sub(1))?;
    Ok(Bin {
        xk,
        wk: xk1 - xk,
        yk,
        hk: yk1 - yk,
        dk: derivative_at::<ZUKO>(d, idx)?,
        dk1: derivative_at::<ZUKO>(d, idx + 1)?,
    })
}

/// `log(dy/dx)` at relative position `theta` in bin `b`.
fn log_deriv(b: &Bin, theta: f32) -> f32 {
    let (dnum, den) = log_deriv_parts(b, theta);
    libm::logf(dnum) - 2.0 * libm::logf(den)
}

/// dy/dx at `theta` in bin `b` as `dnum / den²`: `(dnum, den)`.
#[inline(always)]
fn log_deriv_parts(b: &Bin, theta: f32) -> (f32, f32) {
    let delta = b.hk / b.wk;
    let t1m = theta * (1.0 - theta);
    let den = delta + (b.dk1 + b.dk - 2.0 * delta) * t1m;
    let omt = 1.0 - theta;
    (delta * delta * (b.dk1 * theta * theta + 2.0 * delta * t1m + b.dk * omt * omt), den)
}

/// The forward map and its log-derivative at `x` inside bin `b`.
#[inline(always)]
fn forward_in(b: &Bin, x: f32) -> (f32, f32) {
    let (y, theta) = forward_y(b, x);
    (y, log_deriv(b, theta))
}

/// The forward map at `x` inside bin `b`, and `x`'s relative position there.
#[inline(always)]
fn forward_y(b: &Bin, x: f32) -> (f32, f32) {
    let delta = b.hk / b.wk;
    let theta = (x - b.xk) / b.wk;
    let t1m = theta * (1.0 - theta);
    let num = b.hk * (delta * theta * theta + b.dk * t1m);
    let den = delta + (b.dk1 + b.dk - 2.0 * delta) * t1m;
    (b.yk + num / den, theta)
}

/// One spline's shape: K bins on `[-B, B]`, and whether its raw parameters
/// are read the way zuko does ([`crate::format::FLAG_ZUKO`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spline {
    pub(crate) bins: usize,
    pub(crate) bound: f32,
    pub(crate) zuko: bool,
}

impl Spline {
    /// The bin holding `v` among the x-knots (`BY_Y` false) or the y-knots
    /// ([`bin_of`]); `None` outside `[-B, B]` (and for NaN), where the map is
    /// the identity. Inlined: it is on every spline evaluation's path.
    #[inline(always)]
    fn locate<const BY_Y: bool>(&self, v: f32, raw: &[f32], work: &mut [f32]) -> Result<Option<Bin>> {
        let (bins, bound) = (self.bins, self.bound);
        if !(v >= -bound && v <= bound) {
            return Ok(None);
        }
        bin_of::<BY_Y>(raw, bins, bound, self.zuko, v, work).map(Some)
    }

    /// Forward map `y = s(x)` and `log |dy/dx|`. `work` holds [`work_len`] values.
    pub(crate) fn forward(&self, x: f32, raw: &[f32], work: &mut [f32]) -> Result<(f32, f32)> {
        let Some(b) = self.locate::<false>(x, raw, work)? else { return Ok((x, 0.0)) };
        Ok(forward_in(&b, x))
    }

    /// Inverse map `x = s^-1(y)` and the *forward* `log |dy/dx|` at that `x`.
    pub(crate) fn inverse(&self, y: f32, raw: &[f32], work: &mut [f32]) -> Result<(f32, f32)> {
        let Some(b) = self.locate::<true>(y, raw, work)? else { return Ok((y, 0.0)) };
        let delta = b.hk / b.wk;
        let dy = y - b.yk;
        let s = b.dk1 + b.dk - 2.0 * delta;
        let qa = b.hk * (delta - b.dk) + dy * s;
        let qb = b.hk * b.dk - dy * s;
        let qc = -delta * dy;
        let disc = qb * qb - 4.0 * qa * qc;
        let disc = if disc > 0.0 { disc } else { 0.0 };
        let theta = (2.0 * qc) / (-qb - libm::sqrtf(disc));
        let x = theta * b.wk + b.xk;
        Ok((x, log_deriv(&b, theta)))
    }
}

#[cfg(test)]
mod tests;
