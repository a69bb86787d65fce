//! The CubeCL kernels of the fused rational-quadratic spline: one thread per
//! element, the whole spline (softmax knots, softplus derivatives, bin search,
//! the rational-quadratic map and its log-derivative) in registers.
//!
//! `x [E]`, raw parameters `[E, 3K−1]` (K width logits, K height logits, K−1
//! derivative pre-activations: the runtime's layout), `bound` B, minimum bin
//! width / height / derivative and the derivative shift of
//! `floe_runtime::format::spline`. Outside `[−B, B]` the map is the identity.
//! The arithmetic follows `runtime/src/transforms/spline.rs` step by step.

use cubecl::prelude::*;

/// `log(1 + exp(u))`, stably.
#[cube]
fn softplus<F: Float>(u: F) -> F {
    u.max(F::new(0.0)) + (-u.abs()).exp().log1p()
}

/// `1 / (1 + exp(−u))`.
#[cube]
fn sigmoid<F: Float>(u: F) -> F {
    F::new(1.0) / (F::new(1.0) + (-u).exp())
}

/// The bin of `v` for one row: its knots `(left, right)` in x and in y, its
/// index, and the softmax normalizers (max and sum) of widths and heights.
#[derive(CubeType)]
struct Bin<F: Float> {
    idx: usize,
    xk: F,
    xk1: F,
    yk: F,
    yk1: F,
    dk: F,
    dk1: F,
}

/// Locate the bin holding `v`, searching the x knots (`by_y = false`) or the
/// y knots (`by_y = true`), as the runtime's `bin_index` does: the largest
/// `i < K` with `knot_i <= v` (bin 0 below knot 1).
#[cube]
fn find_bin<F: Float>(
    params: &Tensor<F>,
    base: usize,
    v: F,
    by_y: bool,
    bins: u32,
    bound: f32,
    min_w: f32,
    min_h: f32,
    min_d: f32,
    shift: f32,
) -> Bin<F> {
    let k = bins as usize;
    let bnd = F::cast_from(bound);
    let two_b = bnd + bnd;
    let kf = F::cast_from(bins);
    let wmin = F::cast_from(min_w);
    let hmin = F::cast_from(min_h);
    let mut mw = params[base];
    let mut mh = params[base + k];
    for i in 1..k {
        mw = mw.max(params[base + i]);
        mh = mh.max(params[base + k + i]);
    }
    let mut sw = F::new(0.0);
    let mut sh = F::new(0.0);
    for i in 0..k {
        sw += (params[base + i] - mw).exp();
        sh += (params[base + k + i] - mh).exp();
    }
    let scale_w = F::new(1.0) - wmin * kf;
    let scale_h = F::new(1.0) - hmin * kf;
    let mut cw = F::new(0.0);
    let mut ch = F::new(0.0);
    let mut left = -bnd;
    let mut bottom = -bnd;
    let mut idx = 0usize;
    let mut xk = -bnd;
    let mut xk1 = bnd;
    let mut yk = -bnd;
    let mut yk1 = bnd;
    for i in 0..k {
        cw += wmin + scale_w * ((params[base + i] - mw).exp() / sw);
        ch += hmin + scale_h * ((params[base + k + i] - mh).exp() / sh);
        let mut right = two_b * cw - bnd;
        let mut top = two_b * ch - bnd;
        if i + 1 == k {
            right = bnd;
            top = bnd;
        }
        let probe = select(by_y, bottom, left);
        if i == 0 || v >= probe {
            idx = i;
            xk = left;
            xk1 = right;
            yk = bottom;
            yk1 = top;
        }
        left = right;
        bottom = top;
    }
    let dmin = F::cast_from(min_d);
    let dshift = F::cast_from(shift);
    // Knot derivatives: 1 at both ends, softplus inside. The row's derivative
    // pre-activations start at 2K; knot j (1 <= j <= K−1) reads 2K + j − 1.
    let j0 = select(idx == 0, 2 * k, 2 * k + idx - 1);
    let j1 = select(idx + 1 == k, 2 * k, 2 * k + idx);
    let mut dk = dmin + softplus::<F>(params[base + j0] + dshift);
    let mut dk1 = dmin + softplus::<F>(params[base + j1] + dshift);
    if idx == 0 {
        dk = F::new(1.0);
    }
    if idx + 1 == k {
        dk1 = F::new(1.0);
    }
    Bin::<F> { idx, xk, xk1, yk, yk1, dk, dk1 }
}

/// Forward: `out[e] = y`, `out[E + e] = log|dy/dx|`.
#[cube(launch)]
pub fn rqs_forward_kernel<F: Float>(
    x: &Tensor<F>,
    params: &Tensor<F>,
    out: &mut Tensor<F>,
    bins: u32,
    bound: f32,
    min_w: f32,
    min_h: f32,
    min_d: f32,
    shift: f32,
    #[define(F)] _dtype: ElemType,
) {
    let e = ABSOLUTE_POS;
    let n = x.len();
    if e >= n {
        terminate!();
    }
    let k = bins as usize;
    let base = e * (3 * k - 1);
    let bnd = F::cast_from(bound);
    let xi = x[e];
    if !(xi >= -bnd && xi <= bnd) {
        out[e] = xi;
        out[n + e] = F::new(0.0);
        terminate!();
    }
    let b = find_bin::<F>(params, base, xi, false, bins, bound, min_w, min_h, min_d, shift);
    let wk = b.xk1 - b.xk;
    let hk = b.yk1 - b.yk;
    let delta = hk / wk;
    let theta = (xi - b.xk) / wk;
    let omt = F::new(1.0) - theta;
    let t1m = theta * omt;
    let num = hk * (delta * theta * theta + b.dk * t1m);
    let den = delta + (b.dk1 + b.dk - F::new(2.0) * delta) * t1m;
    let dnum = delta * delta * (b.dk1 * theta * theta + F::new(2.0) * delta * t1m + b.dk * omt * omt);
    out[e] = b.yk + num / den;
    out[n + e] = dnum.ln() - F::new(2.0) * den.ln();
}

/// Inverse: `out[e] = x = s⁻¹(y)`, `out[E + e] = log|dy/dx|` at that `x` (the
/// forward log-derivative, as the runtime's `inverse` returns it).
#[cube(launch)]
pub fn rqs_inverse_kernel<F: Float>(
    y: &Tensor<F>,
    params: &Tensor<F>,
    out: &mut Tensor<F>,
    bins: u32,
    bound: f32,
    min_w: f32,
    min_h: f32,
    min_d: f32,
    shift: f32,
    #[define(F)] _dtype: ElemType,
) {
    let e = ABSOLUTE_POS;
    let n = y.len();
    if e >= n {
        terminate!();
    }
    let k = bins as usize;
    let base = e * (3 * k - 1);
    let bnd = F::cast_from(bound);
    let yi = y[e];
    if !(yi >= -bnd && yi <= bnd) {
        out[e] = yi;
        out[n + e] = F::new(0.0);
        terminate!();
    }
    let b = find_bin::<F>(params, base, yi, true, bins, bound, min_w, min_h, min_d, shift);
    let wk = b.xk1 - b.xk;
    let hk = b.yk1 - b.yk;
    let delta = hk / wk;
    let dy = yi - b.yk;
    let s = b.dk1 + b.dk - F::new(2.0) * delta;
    let qa = hk * (delta - b.dk) + dy * s;
    let qb = hk * b.dk - dy * s;
    let qc = -delta * dy;
    let disc = (qb * qb - F::new(4.0) * qa * qc).max(F::new(0.0));
    let theta = (F::new(2.0) * qc) / (-qb - disc.sqrt());
    let omt = F::new(1.0) - theta;
    let t1m = theta * omt;
    let den = delta + s * t1m;
    let dnum = delta * delta * (b.dk1 * theta * theta + F::new(2.0) * delta * t1m + b.dk * omt * omt);
    out[e] = theta * wk + b.xk;
    out[n + e] = dnum.ln() - F::new(2.0) * den.ln();
}

/// Backward of the forward map: from `grad [2, E]` (∂L/∂y, ∂L/∂log|det|) to
/// `grad_x [E]` and `grad_params [E, 3K−1]`, analytically (the chain through the
/// rational-quadratic map, the cumulative knots, the softmaxes and the softplus).
#[cube(launch)]
pub fn rqs_backward_kernel<F: Float>(
    x: &Tensor<F>,
    params: &Tensor<F>,
    grad: &Tensor<F>,
    grad_x: &mut Tensor<F>,
    grad_params: &mut Tensor<F>,
    bins: u32,
    bound: f32,
    min_w: f32,
    min_h: f32,
    min_d: f32,
    shift: f32,
    #[define(F)] _dtype: ElemType,
) {
    let e = ABSOLUTE_POS;
    let n = x.len();
    if e >= n {
        terminate!();
    }
    let k = bins as usize;
    let p = 3 * k - 1;
    let base = e * p;
    let bnd = F::cast_from(bound);
    let zero = F::new(0.0);
    let one = F::new(1.0);
    let two = F::new(2.0);
    let xi = x[e];
    let gy = grad[e];
    let gld = grad[n + e];
    if !(xi >= -bnd && xi <= bnd) {
        grad_x[e] = gy;
        for j in 0..p {
            grad_params[base + j] = zero;
        }
        terminate!();
    }
    let b = find_bin::<F>(params, base, xi, false, bins, bound, min_w, min_h, min_d, shift);
    let wk = b.xk1 - b.xk;
    let hk = b.yk1 - b.yk;
    let s = hk / wk;
    let th = (xi - b.xk) / wk;
    let omt = one - th;
    let t = th * omt;
    let dt = one - two * th; // d t / d theta
    let c = b.dk1 + b.dk - two * s;
    // y = yk + hk·A/den, A = s θ² + dk t, den = s + c t.
    let a = s * th * th + b.dk * t;
    let den = s + c * t;
    let den2 = den * den;
    let r = a / den;
    let dy_dth = hk * ((two * s * th + b.dk * dt) * den - a * c * dt) / den2;
    let dy_ds = hk * (th * th * den - a * (one - two * t)) / den2;
    let dy_ddk = hk * (t * den - a * t) / den2;
    let dy_ddk1 = hk * (-a * t) / den2;
    // ld = 2 log s + log Q − 2 log den, Q = dk1 θ² + 2 s t + dk (1−θ)².
    let q = b.dk1 * th * th + two * s * t + b.dk * omt * omt;
    let dld_dth = (two * b.dk1 * th + two * s * dt - two * b.dk * omt) / q - two * c * dt / den;
    let dld_ds = two / s + two * t / q - two * (one - two * t) / den;
    let dld_ddk = omt * omt / q - two * t / den;
    let dld_ddk1 = th * th / q - two * t / den;

    let g_th = gy * dy_dth + gld * dld_dth;
    let g_s = gy * dy_ds + gld * dld_ds;
    let g_dk = gy * dy_ddk + gld * dld_ddk;
    let g_dk1 = gy * dy_ddk1 + gld * dld_ddk1;
    // θ = (x − xk)/wk, s = hk/wk.
    let g_hk = gy * r + g_s / wk;
    let g_wk = -(g_th * th + g_s * s) / wk;
    grad_x[e] = g_th / wk;
    let g_xk = -g_th / wk - g_wk;
    let g_xk1 = g_wk;
    let g_yk = gy - g_hk;
    let g_yk1 = g_hk;

    // Knot i (1 <= i <= K−1) = −B + 2B Σ_{j<i} w_j; knots 0 and K are fixed.
    // So ∂L/∂w_j = 2B (g_xk [1<=idx<=K−1, j<idx] + g_xk1 [idx+1<=K−1, j<idx+1]).
    let idx = b.idx;
    let two_b = bnd + bnd;
    let kf = F::cast_from(bins);
    let lo_live = idx >= 1;
    let hi_live = idx + 1 < k;
    let wmin = F::cast_from(min_w);
    let hmin = F::cast_from(min_h);
    let scale_w = one - wmin * kf;
    let scale_h = one - hmin * kf;
    let mut mw = params[base];
    let mut mh = params[base + k];
    for i in 1..k {
        mw = mw.max(params[base + i]);
        mh = mh.max(params[base + k + i]);
    }
    let mut sw = zero;
    let mut sh = zero;
    for i in 0..k {
        sw += (params[base + i] - mw).exp();
        sh += (params[base + k + i] - mh).exp();
    }
    // Σ_i p_i ∂L/∂p_i for each softmax.
    let mut dot_w = zero;
    let mut dot_h = zero;
    for j in 0..k {
        let pw = (params[base + j] - mw).exp() / sw;
        let ph = (params[base + k + j] - mh).exp() / sh;
        let mut gw = zero;
        let mut gh = zero;
        if lo_live && j < idx {
            gw += g_xk;
            gh += g_yk;
        }
        if hi_live && j < idx + 1 {
            gw += g_xk1;
            gh += g_yk1;
        }
        dot_w += pw * (two_b * scale_w * gw);
        dot_h += ph * (two_b * scale_h * gh);
    }
    for j in 0..k {
        let pw = (params[base + j] - mw).exp() / sw;
        let ph = (params[base + k + j] - mh).exp() / sh;
        let mut gw = zero;
        let mut gh = zero;
        if lo_live && j < idx {
            gw += g_xk;
            gh += g_yk;
        }
        if hi_live && j < idx + 1 {
            gw += g_xk1;
            gh += g_yk1;
        }
        grad_params[base + j] = pw * (two_b * scale_w * gw - dot_w);
        grad_params[base + k + j] = ph * (two_b * scale_h * gh - dot_h);
    }
    // Derivative j+1 (1 <= j+1 <= K−1) = dmin + softplus(raw[2K + j] + dshift).
    let dshift = F::cast_from(shift);
    for j in 0..k - 1 {
        let u = params[base + 2 * k + j] + dshift;
        let mut g = zero;
        if j + 1 == idx {
            g += g_dk;
        }
        if j == idx {
            g += g_dk1;
        }
        grad_params[base + 2 * k + j] = g * sigmoid::<F>(u);
    }
}
