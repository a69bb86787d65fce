//! The spline of [`super`] on [`LANES`] rows at once, for `Model::log_prob_batch`.
//!
//! The knots — two softmaxes of K logits, their running sums — and the bin
//! search run on all lanes side by side ([`crate::kernels::math::exp_lanes`]
//! for the exponentials); each lane's bin (its knots and raw derivative
//! values) is gathered lane by lane; the knot derivatives
//! ([`crate::kernels::math::softplus_lanes`], or `exp_lanes` for zuko's), the
//! rational-quadratic formula and its log-derivative
//! ([`crate::kernels::math::ln_lanes`]) run side by side again, with the
//! single-row functions' bits. Every value a lane uses is computed by exactly
//! the operations [`Spline::forward`] uses for it on that row, in the same
//! order, so it gets the same bits (tested in `runtime/tests/batch.rs` and the
//! cross-crate batch tests). The lanes compute every knot, where the single
//! row walks only to its bin (each knot's value is the same either way), and
//! `exp` where the single row calls `exp_nonpos` (the same bits on its domain).

use super::{clip_logit, forward_y, log_deriv_parts, Bin, Spline};
use crate::error::{Error, Result};
use crate::format::spline::{
    params_per_dim, zuko_clip, DERIVATIVE_SHIFT, MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE, ZUKO_NEG_LN_SLOPE,
};
use crate::kernels::math::{exp_lanes, ln_lanes, softplus_lanes};
use crate::kernels::{at, sub, LANES};

/// `f32` words of work space for [`Spline::forward_lanes`]: the x- and
/// y-knots of every lane.
pub(crate) const fn work_len(bins: usize) -> usize {
    2 * (bins + 1) * LANES
}

type Lanes = [f32; LANES];

/// Lane block `i` (`LANES` values from `i · LANES`) of `s`.
#[inline(always)]
fn block(s: &[f32], i: usize) -> Result<&Lanes> {
    sub(s, i * LANES, LANES)?.try_into().map_err(|_| Error::Internal)
}

/// Every knot of one side of the spline on every lane, each with the operations
/// [`super::Knots`] performs for it (the single-row walk computes only the
/// knots up to the bin; each knot's value does not depend on how many are
/// computed): `raw` holds K logits lane-major (logit `i` of lane `l` at
/// `i · LANES + l`), `knots` gets the K + 1 knots the same way.
#[inline(always)]
fn knots<const ZUKO: bool>(raw: &[f32], bins: usize, min: f32, bound: f32, knots: &mut [f32]) -> Result<()> {
    if raw.len() != bins * LANES || knots.len() != (bins + 1) * LANES || bins == 0 {
        return Err(Error::Internal);
    }
    let min = if ZUKO { 0.0 } else { min };
    let logit = |r: f32| if ZUKO { clip_logit(r) } else { r };
    let mut m = [f32::NEG_INFINITY; LANES];
    for r in raw.chunks_exact(LANES) {
        for (mi, &r) in m.iter_mut().zip(r) {
            let r = logit(r);
            if r > *mi {
                *mi = r;
            }
        }
    }
    // e^(r − m) once per bin and lane, parked in knots[1..] until the sums are known.
    let mut sum = [0.0f32; LANES];
    for (r, kn) in raw.chunks_exact(LANES).zip(knots.chunks_exact_mut(LANES).skip(1)) {
        let mut a = [0.0f32; LANES];
        for ((ai, &r), &mi) in a.iter_mut().zip(r).zip(&m) {
            *ai = logit(r) - mi;
        }
        for ((o, s), e) in kn.iter_mut().zip(sum.iter_mut()).zip(exp_lanes(&a)) {
            *o = e;
            *s += e;
        }
    }
    let scale = 1.0 - min * bins as f32;
    let mut cum = [0.0f32; LANES];
    let mut blocks = knots.chunks_exact_mut(LANES);
    if let Some(first) = blocks.next() {
        first.fill(-bound);
    }
    for kn in blocks {
        for ((o, c), &s) in kn.iter_mut().zip(cum.iter_mut()).zip(&sum) {
            let p = *o / s;
            *c += min + scale * p;
            *o = 2.0 * bound * *c - bound;
        }
    }
    if let Some(last) = knots.chunks_exact_mut(LANES).last() {
        last.fill(bound);
    }
    Ok(())
}

/// [`derivative`](super::derivative) of every lane: the knot derivatives from their raw values.
#[inline(always)]
fn derivatives<const ZUKO: bool>(raw: &Lanes) -> Lanes {
    let mut a = [0.0f32; LANES];
    for (ai, &r) in a.iter_mut().zip(raw) {
        *ai = if ZUKO { zuko_clip(r, 1.0, ZUKO_NEG_LN_SLOPE) } else { r + DERIVATIVE_SHIFT };
    }
    if ZUKO {
        return exp_lanes(&a);
    }
    let mut d = softplus_lanes(&a);
    for di in d.iter_mut() {
        *di += MIN_DERIVATIVE;
    }
    d
}

impl Spline {
    /// [`Spline::forward`] of `LANES` values at once: `v` gets each lane's
    /// `y`, `ld` its `log |dy/dx|`. `raw` holds the coordinate's `3K − 1`
    /// parameters lane-major (parameter `p` of lane `l` at `p · LANES + l`),
    /// `work` [`work_len`] words.
    #[inline(always)]
    pub(crate) fn forward_lanes(&self, v: &mut Lanes, raw: &[f32], work: &mut [f32], ld: &mut Lanes) -> Result<()> {
        if self.zuko {
            self.forward_lanes_as::<true>(v, raw, work, ld)
        } else {
            self.forward_lanes_as::<false>(v, raw, work, ld)
        }
    }

    #[inline(always)]
    fn forward_lanes_as<const ZUKO: bool>(
        &self,
        v: &mut Lanes,
        raw: &[f32],
        work: &mut [f32],
        ld: &mut Lanes,
    ) -> Result<()> {
        let (bins, bound) = (self.bins, self.bound);
        if raw.len() != params_per_dim(bins) * LANES || work.len() < work_len(bins) {
            return Err(Error::Internal);
        }
        let n = (bins + 1) * LANES;
        let (cw, rest) = work.split_at_mut(n);
        let ch = rest.get_mut(..n).ok_or(Error::Internal)?;
        knots::<ZUKO>(sub(raw, 0, bins * LANES)?, bins, MIN_BIN_WIDTH, bound, cw)?;
        knots::<ZUKO>(sub(raw, bins * LANES, bins * LANES)?, bins, MIN_BIN_HEIGHT, bound, ch)?;
        // The bin on every lane: the last interior knot at or below v (all
        // K − 1 compared, where the single-row walk stops at the first above v:
        // the knots never decrease, so the two agree).
        let mut idx = [0u32; LANES];
        for i in 1..bins {
            for ((ix, &kn), &x) in idx.iter_mut().zip(block(cw, i)?).zip(v.iter()) {
                if x >= kn {
                    *ix = i as u32;
                }
            }
        }
        // Per lane, gathered: the bin's knots and the raw values of its two
        // interior derivatives (an end knot's derivative is 1).
        let mut bin: [Bin; LANES] =
            core::array::from_fn(|_| Bin { xk: 0.0, wk: 1.0, yk: 0.0, hk: 1.0, dk: 1.0, dk1: 1.0 });
        let (mut r0, mut r1) = ([0.0f32; LANES], [0.0f32; LANES]);
        for (l, (((b, &i), r0), r1)) in bin.iter_mut().zip(&idx).zip(r0.iter_mut()).zip(r1.iter_mut()).enumerate() {
            let i = i as usize;
            let (xk, yk) = (at(cw, i * LANES + l)?, at(ch, i * LANES + l)?);
            (b.xk, b.wk) = (xk, at(cw, (i + 1) * LANES + l)? - xk);
            (b.yk, b.hk) = (yk, at(ch, (i + 1) * LANES + l)? - yk);
            if i > 0 {
                *r0 = at(raw, (2 * bins + i - 1) * LANES + l)?;
            }
            if i + 1 < bins {
                *r1 = at(raw, (2 * bins + i) * LANES + l)?;
            }
        }
        let (d0, d1) = (derivatives::<ZUKO>(&r0), derivatives::<ZUKO>(&r1));
        let (mut dnum, mut den) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut y = *v;
        for (l, (((b, &i), yl), (dn, de))) in
            bin.iter_mut().zip(&idx).zip(y.iter_mut()).zip(dnum.iter_mut().zip(den.iter_mut())).enumerate()
        {
            let i = i as usize;
            b.dk = if i > 0 { d0.get(l).copied().unwrap_or(1.0) } else { 1.0 };
            b.dk1 = if i + 1 < bins { d1.get(l).copied().unwrap_or(1.0) } else { 1.0 };
            let (yv, theta) = forward_y(b, *yl);
            *yl = yv;
            (*dn, *de) = log_deriv_parts(b, theta);
        }
        let (ln_num, ln_den) = (ln_lanes(&dnum), ln_lanes(&den));
        for ((x, d), (yl, (n, e))) in v.iter_mut().zip(ld.iter_mut()).zip(y.iter().zip(ln_num.iter().zip(ln_den))) {
            if *x >= -bound && *x <= bound {
                (*x, *d) = (*yl, n - 2.0 * e);
            } else {
                *d = 0.0; // the identity tails: x stays
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::math::{same_bits, uniform};
    use crate::kernels::{run_wide, Wide};

    /// Both parameterizations, several bin counts, raw parameters from small
    /// to saturating (and a NaN lane), values inside, on and past the bounds:
    /// every lane has the bits [`Spline::forward`] gives it, compiled
    /// portably and in the widest vectors this CPU has.
    #[test]
    fn every_lane_has_the_single_value_bits() {
        struct Run<'a>(Spline, Lanes, &'a [f32]);
        impl Wide for Run<'_> {
            type Out = (Lanes, Lanes);
            #[inline(always)]
            fn run(self) -> Self::Out {
                let (mut v, mut ld) = (self.1, [0.0f32; LANES]);
                let mut work = std::vec![0.0f32; work_len(self.0.bins)];
                self.0.forward_lanes(&mut v, self.2, &mut work, &mut ld).unwrap();
                (v, ld)
            }
        }
        let mut next = uniform(0x9e37_79b9);
        for (case, &(bins, zuko)) in
            [(8, false), (8, true), (1, false), (2, true), (5, false), (16, false)].iter().enumerate()
        {
            let spline = Spline { bins, bound: 3.0, zuko };
            let p = params_per_dim(bins);
            for round in 0..40 {
                let scale = [0.5f32, 4.0, 40.0][round % 3];
                let mut raw: std::vec::Vec<f32> = (0..p * LANES).map(|_| next() * scale).collect();
                let mut v: Lanes = core::array::from_fn(|_| next() * 7.0);
                if round == 5 {
                    let k = (p - 1).min(3);
                    raw[k * LANES + 2] = f32::NAN;
                    v[7] = 3.0;
                    v[8] = -3.0;
                    v[9] = f32::NAN;
                    v[10] = 0.0;
                }
                let want: std::vec::Vec<(f32, f32)> = (0..LANES)
                    .map(|l| {
                        let r: std::vec::Vec<f32> = (0..p).map(|k| raw[k * LANES + l]).collect();
                        let mut w = std::vec![0.0f32; super::super::work_len(bins)];
                        spline.forward(v[l], &r, &mut w).unwrap()
                    })
                    .collect();
                for (how, (y, ld)) in
                    [("portable", Run(spline, v, &raw).run()), ("wide", run_wide(Run(spline, v, &raw)))]
                {
                    for (l, &(wy, wld)) in want.iter().enumerate() {
                        assert!(
                            same_bits(y[l], wy) && same_bits(ld[l], wld),
                            "case {case} round {round} ({how}) lane {l}: ({}, {}) vs ({wy}, {wld})",
                            y[l],
                            ld[l]
                        );
                    }
                }
            }
        }
    }
}
