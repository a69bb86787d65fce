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

/// `f32` words of work space per spline evaluation (the x- and y-knots; a
/// third `K + 1` is kept for the format's scratch sizes, which include it).
pub(crate) const fn work_len(bins: usize) -> usize {
    3 * (bins + 1)
}

/// Knot positions from raw logits: softmax, minimum size, cumulative sum, scaled
/// to `[-B, B]`. `knots` has `K + 1` entries. With `zuko` the logits are
/// soft-clipped first and the minimum size is 0 (zuko's parameterization).
fn knots<const ZUKO: bool>(raw: &[f32], min: f32, bound: f32, knots: &mut [f32]) -> Result<()> {
    let k = raw.len();
    if knots.len() != k + 1 || k == 0 {
        return Err(Error::Internal);
    }
    let min = if ZUKO { 0.0 } else { min };
    let logit = |r: f32| if ZUKO { clip_logit(r) } else { r };
    let mut m = f32::NEG_INFINITY;
    for &r in raw {
        let r = logit(r);
        if r > m {
            m = r;
        }
    }
    // e^(r − m) once per bin, parked in knots[1..] until the sum is known;
    // r − m ≤ 0 (or NaN: an infinite or NaN logit), `exp_nonpos`'s domain.
    let mut sum = 0.0f32;
    let tail = knots.get_mut(1..).ok_or(Error::Internal)?;
    for (&r, kn) in raw.iter().zip(tail.iter_mut()) {
        let e = exp_nonpos(logit(r) - m);
        *kn = e;
        sum += e;
    }
    let scale = 1.0 - min * k as f32;
    let mut cum = 0.0f32;
    let mut it = knots.iter_mut();
    if let Some(first) = it.next() {
        *first = -bound;
    }
    for kn in it {
        let p = *kn / sum;
        cum += min + scale * p;
        *kn = 2.0 * bound * cum - bound;
    }
    if let Some(last) = knots.last_mut() {
        *last = bound;
    }
    Ok(())
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

/// Index of the bin holding `v`: the largest `i < K` with `knots[i] <= v`.
fn bin_index(knots: &[f32], v: f32) -> usize {
    // The interior knots 1 ..= K − 1 as a slice (an iterator's `skip` costs
    // a call per spline on the Cortex-M4F).
    let inner = knots.get(1..knots.len().saturating_sub(1)).unwrap_or(&[]);
    let mut idx = 0;
    for (i, &kn) in inner.iter().enumerate() {
        if v >= kn {
            idx = i + 1;
        }
    }
    idx
}

struct Bin {
    xk: f32,
    wk: f32,
    yk: f32,
    hk: f32,
    dk: f32,
    dk1: f32,
}

/// The bin holding `v` among the x-knots (`by_y` false) or the y-knots, the
/// knots set up in `work` from `raw`; the parameterization chosen at compile
/// time so floe's own splines pay nothing for zuko's. Only the bin's two knot
/// derivatives are computed (each one's value does not depend on the others).
fn bin_of(raw: &[f32], bins: usize, bound: f32, zuko: bool, v: f32, by_y: bool, work: &mut [f32]) -> Result<Bin> {
    if zuko {
        bin_as::<true>(raw, bins, bound, v, by_y, work)
    } else {
        bin_as::<false>(raw, bins, bound, v, by_y, work)
    }
}

fn bin_as<const ZUKO: bool>(raw: &[f32], bins: usize, bound: f32, v: f32, by_y: bool, work: &mut [f32]) -> Result<Bin> {
    if raw.len() != params_per_dim(bins) {
        return Err(Error::Internal);
    }
    let mut w = &mut *work;
    let cw = take(&mut w, bins + 1)?;
    let ch = take(&mut w, bins + 1)?;
    knots::<ZUKO>(sub(raw, 0, bins)?, MIN_BIN_WIDTH, bound, cw)?;
    knots::<ZUKO>(sub(raw, bins, bins)?, MIN_BIN_HEIGHT, bound, ch)?;
    let idx = bin_index(if by_y { &*ch } else { &*cw }, v);
    let d = sub(raw, 2 * bins, bins.saturating_sub(1))?;
    let xk = at(cw, idx)?;
    let yk = at(ch, idx)?;
    Ok(Bin {
        xk,
        wk: at(cw, idx + 1)? - xk,
        yk,
        hk: at(ch, idx + 1)? - yk,
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
    /// The bin holding `v` among the x-knots (`by_y` false) or the y-knots,
    /// the knots set up in `work` from `raw`; `None` outside `[-B, B]` (and for
    /// NaN), where the map is the identity. Inlined: it is on every spline
    /// evaluation's path, and `by_y` is a constant at each call.
    #[inline(always)]
    fn locate(&self, v: f32, raw: &[f32], work: &mut [f32], by_y: bool) -> Result<Option<Bin>> {
        let (bins, bound) = (self.bins, self.bound);
        if !(v >= -bound && v <= bound) {
            return Ok(None);
        }
        bin_of(raw, bins, bound, self.zuko, v, by_y, work).map(Some)
    }

    /// Forward map `y = s(x)` and `log |dy/dx|`. `work` holds [`work_len`] values.
    pub(crate) fn forward(&self, x: f32, raw: &[f32], work: &mut [f32]) -> Result<(f32, f32)> {
        let Some(b) = self.locate(x, raw, work, false)? else { return Ok((x, 0.0)) };
        Ok(forward_in(&b, x))
    }

    /// Inverse map `x = s^-1(y)` and the *forward* `log |dy/dx|` at that `x`.
    pub(crate) fn inverse(&self, y: f32, raw: &[f32], work: &mut [f32]) -> Result<(f32, f32)> {
        let Some(b) = self.locate(y, raw, work, true)? else { return Ok((y, 0.0)) };
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
mod tests {
    use super::*;

    fn raw(k: usize, seed: u32) -> [f32; 32] {
        let mut r = [0.0f32; 32];
        let mut s = seed;
        for v in r.iter_mut().take(3 * k - 1) {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0;
        }
        r
    }

    #[test]
    fn zero_parameters_are_the_identity() {
        let k = 8;
        let r = [0.0f32; 23];
        let mut w = [0.0f32; 27];
        for &x in &[-2.9f32, -1.0, 0.0, 0.3, 2.5] {
            let (y, ld) = Spline { bins: k, bound: 3.0, zuko: false }.forward(x, &r, &mut w).unwrap();
            assert!((y - x).abs() < 1e-5, "{x} -> {y}");
            assert!(ld.abs() < 1e-5);
        }
    }

    #[test]
    fn inverse_undoes_forward_and_tails_are_identity() {
        let k = 10;
        let mut w = [0.0f32; 33];
        for seed in 0..20 {
            let r = raw(k, seed);
            let r = &r[..3 * k - 1];
            for i in 0..41 {
                let x = -4.0 + 0.2 * i as f32;
                let (y, ld) = Spline { bins: k, bound: 3.0, zuko: false }.forward(x, r, &mut w).unwrap();
                let (x2, ld2) = Spline { bins: k, bound: 3.0, zuko: false }.inverse(y, r, &mut w).unwrap();
                assert!((x - x2).abs() < 1e-5, "seed {seed} x {x} y {y} x2 {x2}");
                assert!((ld - ld2).abs() < 1e-4);
                if x.abs() > 3.0 {
                    assert_eq!((y, ld), (x, 0.0));
                }
            }
        }
    }

    #[test]
    fn log_derivative_matches_finite_difference() {
        let k = 6;
        let mut w = [0.0f32; 21];
        let r = raw(k, 7);
        let r = &r[..3 * k - 1];
        for i in 1..30 {
            let x = -2.9 + 0.2 * i as f32;
            let h = 1e-2f32;
            let (yp, _) = Spline { bins: k, bound: 3.0, zuko: false }.forward(x + h, r, &mut w).unwrap();
            let (ym, _) = Spline { bins: k, bound: 3.0, zuko: false }.forward(x - h, r, &mut w).unwrap();
            let (_, ld) = Spline { bins: k, bound: 3.0, zuko: false }.forward(x, r, &mut w).unwrap();
            let fd = ((yp - ym) / (2.0 * h)).ln();
            assert!((fd - ld).abs() < 2e-2, "x {x}: fd {fd} analytic {ld}");
        }
    }

    #[test]
    fn monotone_and_maps_interval_onto_itself() {
        let k = 5;
        let mut w = [0.0f32; 18];
        let r = raw(k, 3);
        let r = &r[..3 * k - 1];
        let (lo, _) = Spline { bins: k, bound: 2.0, zuko: false }.forward(-2.0, r, &mut w).unwrap();
        let (hi, _) = Spline { bins: k, bound: 2.0, zuko: false }.forward(2.0, r, &mut w).unwrap();
        assert!((lo + 2.0).abs() < 1e-5 && (hi - 2.0).abs() < 1e-5);
        let mut prev = f32::NEG_INFINITY;
        for i in 0..=400 {
            let (y, _) =
                Spline { bins: k, bound: 2.0, zuko: false }.forward(-2.0 + 0.01 * i as f32, r, &mut w).unwrap();
            assert!(y > prev);
            prev = y;
        }
    }

    /// zuko's parameterization: zero raw values are the identity too, the map
    /// is monotone onto [−B, B], inverse undoes forward, the log-derivative is
    /// the slope's, and it differs from floe's own for the same raw values.
    #[test]
    fn zuko_parameterization_is_a_valid_spline() {
        let k = 8;
        let mut w = [0.0f32; 27];
        let zero = [0.0f32; 23];
        for &x in &[-4.9f32, -1.0, 0.0, 0.3, 4.5] {
            let (y, ld) = Spline { bins: k, bound: 5.0, zuko: true }.forward(x, &zero, &mut w).unwrap();
            assert!((y - x).abs() < 1e-5 && ld.abs() < 1e-5, "{x} -> {y}, {ld}");
        }
        for seed in 0..20 {
            let r = raw(k, seed);
            // Large raw values too: zuko soft-clips them.
            let r: [f32; 23] = core::array::from_fn(|i| r[i] * if seed % 2 == 0 { 1.0 } else { 40.0 });
            let mut prev = f32::NEG_INFINITY;
            for i in 0..=200 {
                let x = -5.0 + 0.05 * i as f32;
                let (y, ld) = Spline { bins: k, bound: 5.0, zuko: true }.forward(x, &r, &mut w).unwrap();
                assert!(y >= prev && y.is_finite() && ld.is_finite(), "seed {seed} x {x}");
                prev = y;
                // zuko's slopes span 1e-3 ..= 1e3: round trips are checked on
                // the moderate parameters, the soft clip on the large ones.
                if seed % 2 == 1 {
                    assert!(ld.abs() < 30.0);
                    continue;
                }
                let (x2, ld2) = Spline { bins: k, bound: 5.0, zuko: true }.inverse(y, &r, &mut w).unwrap();
                // In y units: where the slope is 1e-3 an f32 step of y is a
                // thousand times larger in x.
                assert!((x - x2).abs() * ld.exp() < 2e-5, "seed {seed} x {x} x2 {x2}");
                // The inverse's log-derivative is the forward map's at its own x.
                let (_, ld_at) = Spline { bins: k, bound: 5.0, zuko: true }.forward(x2, &r, &mut w).unwrap();
                assert!(x2.abs() >= 5.0 || (ld_at - ld2).abs() < 1e-3, "seed {seed} x {x}: {ld_at} vs {ld2}");
                // zuko's derivatives lie in (1e-3, 1e3): |log slope| ≤ 2·ln 1e3 + ….
                assert!(ld.abs() < 30.0);
                if (1..200).contains(&i) {
                    let h = 1e-2f32;
                    let (yp, _) = Spline { bins: k, bound: 5.0, zuko: true }.forward(x + h, &r, &mut w).unwrap();
                    let (ym, _) = Spline { bins: k, bound: 5.0, zuko: true }.forward(x - h, &r, &mut w).unwrap();
                    let fd = ((yp - ym) / (2.0 * h)).ln();
                    assert!((fd - ld).abs() < 5e-2, "seed {seed} x {x}: fd {fd} analytic {ld}");
                }
            }
            assert!((prev - 5.0).abs() < 1e-4);
            let (a, _) = Spline { bins: k, bound: 5.0, zuko: true }.forward(0.7, &r, &mut w).unwrap();
            let (b, _) = Spline { bins: k, bound: 5.0, zuko: false }.forward(0.7, &r, &mut w).unwrap();
            assert!(a != b);
        }
    }
}
