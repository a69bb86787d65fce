//! Rational-quadratic spline, batched, in Burn: the parameterization and
//! constants of [`floe_runtime::format::spline`], as the runtime evaluates them.

use burn::prelude::*;
use floe_runtime::format::spline::{
    DERIVATIVE_SHIFT, MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE, ZUKO_NEG_LN_SLOPE,
};

use super::math::softplus;

/// zuko's soft clip `r / (1 + |k·r / A|)` ([`floe_runtime::format::spline::zuko_clip`]).
pub fn zuko_clip<const D: usize>(r: Tensor<D>, k: f32, a: f32) -> Tensor<D> {
    let den = r.clone().mul_scalar(k).div_scalar(a).abs().add_scalar(1.0);
    r / den
}

/// Knots `[E, K+1]` from raw logits `[E, K]`.
fn knots(raw: Tensor<2>, k: usize, bound: f32, min: f32) -> Tensor<2> {
    let [e, _] = raw.dims();
    let device = raw.device();
    let p = burn::tensor::activation::softmax(raw, 1);
    let w = p.mul_scalar(1.0 - min * k as f32).add_scalar(min);
    let c = w.cumsum(1).mul_scalar(2.0 * bound).sub_scalar(bound);
    let inner = c.slice([0..e, 0..k - 1]);
    Tensor::cat(vec![Tensor::full([e, 1], -bound, &device), inner, Tensor::full([e, 1], bound, &device)], 1)
}

/// Forward spline on `x [E]` with raw parameters `[E, 3K-1]`; returns `(y, log|dy/dx|)`.
/// `K >= 2`. On a CubeCL device this is one fused kernel ([`super::fused`]);
/// elsewhere (and with the fused kernel turned off) the Burn-ops reference.
pub fn rqs_forward(x: Tensor<1>, raw: Tensor<2>, k: usize, bound: f32) -> (Tensor<1>, Tensor<1>) {
    if super::fused::fused_on(&x.device()) {
        super::fused::forward(x, raw, k, bound)
    } else {
        rqs_forward_reference(x, raw, k, bound)
    }
}

/// The Burn-ops spline: the reference the fused kernel is tested against, and
/// the CPU path.
pub fn rqs_forward_reference(x: Tensor<1>, raw: Tensor<2>, k: usize, bound: f32) -> (Tensor<1>, Tensor<1>) {
    let [e] = x.dims();
    let cw = knots(raw.clone().slice([0..e, 0..k]), k, bound, MIN_BIN_WIDTH);
    let ch = knots(raw.clone().slice([0..e, k..2 * k]), k, bound, MIN_BIN_HEIGHT);
    let dint = softplus(raw.slice([0..e, 2 * k..3 * k - 1]).add_scalar(DERIVATIVE_SHIFT)).add_scalar(MIN_DERIVATIVE);
    rqs_eval(x, cw, ch, dint, k, bound)
}

/// The spline with zuko's parameterization (`FLAG_ZUKO`): soft-clipped logits,
/// no minimum bin size, `exp` of soft-clipped derivatives. Burn ops only (an
/// imported flow is frozen on the CPU).
pub fn rqs_forward_zuko(x: Tensor<1>, raw: Tensor<2>, k: usize, bound: f32) -> (Tensor<1>, Tensor<1>) {
    let [e] = x.dims();
    let clip = |t: Tensor<2>| zuko_clip(t, 2.0, ZUKO_NEG_LN_SLOPE);
    let cw = knots(clip(raw.clone().slice([0..e, 0..k])), k, bound, 0.0);
    let ch = knots(clip(raw.clone().slice([0..e, k..2 * k])), k, bound, 0.0);
    let dint = zuko_clip(raw.slice([0..e, 2 * k..3 * k - 1]), 1.0, ZUKO_NEG_LN_SLOPE).exp();
    rqs_eval(x, cw, ch, dint, k, bound)
}

/// The spline from its knots `[E, K+1]` and interior derivatives `[E, K−1]`.
fn rqs_eval(
    x: Tensor<1>,
    cw: Tensor<2>,
    ch: Tensor<2>,
    dint: Tensor<2>,
    k: usize,
    bound: f32,
) -> (Tensor<1>, Tensor<1>) {
    let [e] = x.dims();
    let device = x.device();
    let ones = Tensor::<2>::ones([e, 1], &device);
    let d = Tensor::cat(vec![ones.clone(), dint, ones], 1);

    let inside = x.clone().greater_equal_elem(-bound).bool_and(x.clone().lower_equal_elem(bound));
    let xc = x.clone().clamp(-bound, bound);
    let interior = cw.clone().slice([0..e, 1..k]);
    let idx = xc.clone().unsqueeze_dim::<2>(1).greater_equal(interior).int().sum_dim(1);
    let idx1 = idx.clone().add_scalar(1);
    let g = |t: &Tensor<2>, i: &Tensor<2, Int>| t.clone().gather(1, i.clone()).squeeze_dim::<1>(1);
    let (xk, xk1) = (g(&cw, &idx), g(&cw, &idx1));
    let (yk, yk1) = (g(&ch, &idx), g(&ch, &idx1));
    let (dk, dk1) = (g(&d, &idx), g(&d, &idx1));
    let wk = xk1 - xk.clone();
    let hk = yk1 - yk.clone();
    let delta = hk.clone() / wk.clone();
    let theta = (xc - xk) / wk;
    let omt = theta.clone().neg().add_scalar(1.0);
    let t1m = theta.clone() * omt.clone();
    let th2 = theta.clone() * theta;
    let num = hk * (delta.clone() * th2.clone() + dk.clone() * t1m.clone());
    let s = dk1.clone() + dk.clone() - delta.clone().mul_scalar(2.0);
    let den = delta.clone() + s * t1m.clone();
    let y_in = yk + num / den.clone();
    let dnum = delta.clone() * delta.clone() * (dk1 * th2 + delta.mul_scalar(2.0) * t1m + dk * omt.clone() * omt);
    let ld_in = dnum.log() - den.log().mul_scalar(2.0);
    let y = x.mask_where(inside.clone(), y_in);
    let ld = Tensor::<1>::zeros([e], &device).mask_where(inside, ld_in);
    (y, ld)
}
