//! The spline of [`super`] on [`LANES`] rows at once, for `Model::log_prob_batch`.
//!
//! The knots — two softmaxes of K logits, their running sums — and the bin
//! search run on all lanes side by side ([`crate::kernels::math::exp_lanes`]
//! for the exponentials); the rest of the evaluation (the bin's two knot
//! derivatives, the rational-quadratic formula, its log-derivative) runs lane
//! after lane with the single-row functions. Every lane performs exactly the
//! operations [`Spline::forward`] performs on that row, in the same order, so
//! it gets the same bits (tested in `runtime/tests/batch.rs` and the
//! cross-crate batch tests).

use super::{clip_logit, derivative, forward_in, Bin, Spline};
use crate::error::{Error, Result};
use crate::format::spline::{params_per_dim, MIN_BIN_HEIGHT, MIN_BIN_WIDTH};
use crate::kernels::math::exp_lanes;
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

/// [`super::knots`] on every lane: `raw` holds K logits lane-major (logit `i`
/// of lane `l` at `i · LANES + l`), `knots` gets the K + 1 knots the same way.
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

/// Knot derivative `i` of lane `l` ([`super::derivative_at`]), from the
/// lane-major raw parameters of one coordinate.
#[inline(always)]
fn derivative_at<const ZUKO: bool>(raw: &[f32], bins: usize, i: usize, l: usize) -> Result<f32> {
    if i == 0 || i == bins {
        return Ok(1.0);
    }
    Ok(derivative::<ZUKO>(at(raw, (2 * bins + i - 1) * LANES + l)?))
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
        // super::bin_index on every lane: the last interior knot at or below v.
        let mut idx = [0u32; LANES];
        for i in 1..bins {
            for ((ix, &kn), &x) in idx.iter_mut().zip(block(cw, i)?).zip(v.iter()) {
                if x >= kn {
                    *ix = i as u32;
                }
            }
        }
        for (l, ((x, d), &i)) in v.iter_mut().zip(ld.iter_mut()).zip(&idx).enumerate() {
            if !(*x >= -bound && *x <= bound) {
                *d = 0.0; // the identity tails
                continue;
            }
            let i = i as usize;
            let (xk, yk) = (at(cw, i * LANES + l)?, at(ch, i * LANES + l)?);
            let b = Bin {
                xk,
                wk: at(cw, (i + 1) * LANES + l)? - xk,
                yk,
                hk: at(ch, (i + 1) * LANES + l)? - yk,
                dk: derivative_at::<ZUKO>(raw, bins, i, l)?,
                dk1: derivative_at::<ZUKO>(raw, bins, i + 1, l)?,
            };
            (*x, *d) = forward_in(&b, *x);
        }
        Ok(())
    }
}
