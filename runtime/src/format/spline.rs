//! Numerical conventions of the rational-quadratic spline (Durkan et al. 2019)
//! that the file's raw conditioner outputs are read with: the exporter's Burn
//! module and the runtime's evaluator both take them from here.
//!
//! K bins on `[-B, B]`, identity tails outside. From `3K - 1` raw outputs per
//! coordinate, laid out `[w_0..w_K, h_0..h_K, d_1..d_{K-1}]`:
//! widths `w = MIN_BIN_WIDTH + (1 - MIN_BIN_WIDTH·K) softmax(raw_w)` (heights the
//! same), interior derivatives `MIN_DERIVATIVE + softplus(raw_d + DERIVATIVE_SHIFT)`,
//! boundary derivatives 1.

/// Minimum bin width, as a fraction of the interval.
pub const MIN_BIN_WIDTH: f32 = 1e-3;
/// Minimum bin height, as a fraction of the interval.
pub const MIN_BIN_HEIGHT: f32 = 1e-3;
/// Minimum knot derivative.
pub const MIN_DERIVATIVE: f32 = 1e-3;
/// `ln(e^(1 - MIN_DERIVATIVE) - 1)`: raw derivative 0 maps to derivative 1, so a
/// zero conditioner output is the identity.
pub const DERIVATIVE_SHIFT: f32 = 0.539_742_4;

/// Raw parameters per coordinate for K bins.
pub const fn params_per_dim(bins: usize) -> usize {
    (3 * bins).saturating_sub(1)
}

/// zuko's minimum slope (its `slope = 1e-3` default), as `A = −ln(slope)`: under
/// [`super::FLAG_ZUKO`] a spline's raw widths and heights are soft-clipped
/// `r / (1 + 2|r|/A)` before the softmax (no minimum bin size is added), its raw
/// interior derivatives `r / (1 + |r|/A)` and then exponentiated, so every
/// derivative lies in `(1e-3, 1e3)`. An affine map's `param` holds the same `A`.
pub const ZUKO_NEG_LN_SLOPE: f32 = 6.907_755_4;

/// zuko's soft clip `r / (1 + |k·r / A|)`, in its order of operations (`k` = 2
/// for bin logits, 1 for derivatives and affine log-scales).
#[inline]
pub fn zuko_clip(r: f32, k: f32, a: f32) -> f32 {
    r / (1.0 + libm::fabsf(k * r / a))
}
