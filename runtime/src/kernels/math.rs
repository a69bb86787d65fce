//! Elementary functions in f32 arithmetic only, for the runtime's hot paths.
//!
//! No f64 (a Cortex-M4F has a single-precision FPU and a Cortex-M0 none: f64
//! means soft-float calls), no fused multiply-add, no target intrinsics: every
//! operation is an IEEE-754 f32 add, multiply or divide, or integer bit work, in
//! a fixed order, so every target computes the same bits. (Rust never contracts
//! `a * b + c` into an FMA on its own.)
//!
//! Error bounds, measured against f64 by the tests below:
//! - [`exp`]: within 0.56 ulp of e^x wherever e^x is a normal f32 (measured on
//!   every 257th f32 there, 8.7 M points; so faithfully rounded: one of the two
//!   f32 neighbours of the exact value, the nearest one almost always);
//!   +∞ above ln(f32::MAX), 0 below −104, NaN for NaN.
//! - [`cos_turns`]: cos(2πu) for u in [0, 1) within 1.5e-7 absolute.
//! - [`lgamma`]: ln Γ(x) for x in (0, 1e30] within 4e-6 · max(1, |ln Γ(x)|)
//!   absolute.
//!
//! `ln` and `ln_1p` stay `libm`'s `logf` / `log1pf`: FreeBSD's f32 algorithms,
//! which compute in f32 only (read in libm 0.2.16's source; `libm`'s `expf` is
//! f32 too but slower than [`exp`]). Measured by the tests below: `logf` within
//! 0.77 ulp (every 257th positive normal f32), `log1pf` within 0.72 ulp on
//! (−1, 1e6], and `kernels::softplus` (`max(x, 0) + log1pf(exp(−|x|))`) within
//! 1.42 ulp on [−80, 80]. The f64 the firmware used to link came from
//! `cosf` (Box–Muller) and `lgammaf` (the Student-t normalizer), replaced here.
//!
//! [`exp_lanes`], [`ln_lanes`], [`ln_1p_lanes`], [`softplus_lanes`] (`math/lanes.rs`):
//! the same functions on arrays, bit for bit, for the vectorized batch path.

mod lanes;
#[cfg(test)]
pub(crate) use lanes::tests::{same_bits, uniform};
pub use lanes::{exp_lanes, ln_1p_lanes, ln_lanes, softplus_lanes};

/// `2^(j/32)` for j = 0 ..= 31 as an f32 pair `(hi, lo)`: `hi` rounded to
/// nearest, `lo` the rounded remainder (bit patterns, generated in 50-digit
/// decimal arithmetic).
const EXP2_32: [(u32, u32); 32] = [
    (0x3f800000, 0x00000000),
    (0x3f82cd87, 0xb34ea7a9),
    (0x3f85aac3, 0x334f9891),
    (0x3f88980f, 0xb37eda4b),
    (0x3f8b95c2, 0xb260aba1),
    (0x3f8ea43a, 0xb3697465),
    (0x3f91c3d3, 0x33675624),
    (0x3f94f4f0, 0xb32e0212),
    (0x3f9837f0, 0x33231b71),
    (0x3f9b8d3a, 0xb30c5563),
    (0x3f9ef532, 0x33412342),
    (0x3fa27043, 0x30c3125a),
    (0x3fa5fed7, 0xb32c9d5e),
    (0x3fa9a15b, 0xb3162b08),
    (0x3fad583f, 0xb22deaf6),
    (0x3fb123f6, 0xb37c5aa8),
    (0x3fb504f3, 0x32cfe77a),
    (0x3fb8fbaf, 0x330ec5f7),
    (0x3fbd08a4, 0xb3414fe8),
    (0x3fc12c4d, 0xb2d6663e),
    (0x3fc5672a, 0x320aa837),
    (0x3fc9b9be, 0xb37323a2),
    (0x3fce248c, 0x3228fc24),
    (0x3fd2a81e, 0xb35c1daa),
    (0x3fd744fd, 0xb2d4a58a),
    (0x3fdbfbb8, 0xb3504a1c),
    (0x3fe0ccdf, 0xb21eab59),
    (0x3fe5b907, 0xb2441be6),
    (0x3feac0c7, 0xb24116de),
    (0x3fefe4ba, 0xb348464a),
    (0x3ff5257d, 0x32292436),
    (0x3ffa83b3, 0xb2923758),
];

/// 32 / ln 2.
const INV_LN2_32: f32 = f32::from_bits(0x4238_aa3b);
/// ln 2 / 32 with 11 significant bits, so `k · LN2_32_HI` is exact for |k| < 2^13.
const LN2_32_HI: f32 = f32::from_bits(0x3cb1_6000); // 0.0216522216796875
/// ln 2 / 32 − `LN2_32_HI`.
const LN2_32_LO: f32 = f32::from_bits(0x3710_bfbf);
/// 1.5 · 2^23: adding and subtracting it rounds an f32 below 2^22 to the nearest
/// integer (ties to even), the same on every IEEE-754 target.
const ROUND: f32 = 12_582_912.0;

/// e^x in f32 arithmetic: x = (32e + j + r·32/ln2)·ln2/32 with |r| ≤ ln2/64,
/// e^x = 2^e · 2^(j/32) · e^r, e^r − 1 by its cubic Taylor polynomial (error
/// below 6e-10), the table value split in two to keep its rounding out.
#[inline]
pub fn exp(x: f32) -> f32 {
    if !(x <= 89.0) {
        return if x > 0.0 { f32::INFINITY } else { x }; // +∞, or NaN
    }
    if x < -104.0 {
        return 0.0;
    }
    let (p, e) = exp_parts(x);
    if (-125..=127).contains(&e) {
        // Normal result: add e to the exponent field.
        f32::from_bits(p.to_bits().wrapping_add((e << 23) as u32))
    } else if e > 0 {
        p * f32::from_bits(0x7f00_0000) * 2.0 // 2^127 · 2: overflows to +∞
    } else {
        // Subnormal result: scale by 2^(e + 64) (exact), then by 2^-64 (one rounding).
        f32::from_bits(p.to_bits().wrapping_add(((e + 64) << 23) as u32)) * f32::from_bits(0x1f80_0000)
    }
}

/// [`exp`] for `x ≤ 0` or NaN, with its bits: a softmax's shifted logits
/// (`r − max`) are never above 0, so the overflow branch and the upper half of
/// the exponent check can go ([`exp_nonpos_lean`]). On bare-metal builds
/// without the `dsp` feature (the Cortex-M0 and RV32 boards, soft float) it is
/// [`exp`] itself: a second copy would cost them about 370 bytes of flash,
/// and the minimal program must stay under 24 KiB there.
#[inline]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    if cfg!(all(target_os = "none", not(feature = "dsp"))) {
        exp(x)
    } else {
        exp_nonpos_lean(x)
    }
}

/// [`exp_nonpos`]'s own code path. For `x > 0` the result is unspecified
/// (beyond about 88.7 the exponent field overflows into garbage), never a
/// panic; no caller passes one.
#[inline]
pub(crate) fn exp_nonpos_lean(x: f32) -> f32 {
    if !(x >= -104.0) {
        return if x < -104.0 { 0.0 } else { x }; // 0, or NaN
    }
    let (p, e) = exp_parts(x);
    if e >= -125 {
        f32::from_bits(p.to_bits().wrapping_add((e << 23) as u32))
    } else {
        f32::from_bits(p.to_bits().wrapping_add(((e + 64) << 23) as u32)) * f32::from_bits(0x1f80_0000)
    }
}

/// [`exp`]'s reduction and polynomial for |x| ≤ 104: `(p, e)` with
/// e^x ≈ p · 2^e, p in [0.98, 1.98]. Shared with [`exp_lanes`], so that both
/// perform the same operations.
#[inline(always)]
fn exp_parts(x: f32) -> (f32, i32) {
    let kf = (x * INV_LN2_32 + ROUND) - ROUND;
    let k = kf as i32; // |k| ≤ 4802: exact
                       // x − k·HI is exact (Sterbenz when k ≠ 0; both terms on a 2^-30 grid).
    let r = (x - kf * LN2_32_HI) - kf * LN2_32_LO;
    let q = r * (1.0 + r * (0.5 + r * (1.0 / 6.0)));
    let (hi, lo) = match EXP2_32.get((k & 31) as usize) {
        Some(&(h, l)) => (f32::from_bits(h), f32::from_bits(l)),
        None => (1.0, 0.0), // not reached: k & 31 < 32
    };
    (hi + (hi * q + lo), k >> 5)
}

/// cos(2π·u) for u in [0, 1) (the Box–Muller angle), in f32 arithmetic: the
/// quadrant from the nearest quarter turn (exact), then the Taylor polynomial of
/// cos or sin in the remaining quarter-turn fraction f, |f| ≤ 1/2.
pub fn cos_turns(u: f32) -> f32 {
    let v = 4.0 * u;
    let nf = (v + ROUND) - ROUND;
    let f = v - nf; // exact, |f| ≤ 1/2
    let f2 = f * f;
    let c = f32::from_bits(0x3f800000)
        - f2 * (f32::from_bits(0x3f9de9e6)
            - f2 * (f32::from_bits(0x3e81e0f8)
                - f2 * (f32::from_bits(0x3caae9e4)
                    - f2 * (f32::from_bits(0x3a70fa83) - f2 * f32::from_bits(0x37d368f9)))));
    let s = f
        * (f32::from_bits(0x3fc90fdb)
            - f2 * (f32::from_bits(0x3f255de7)
                - f2 * (f32::from_bits(0x3da335e3)
                    - f2 * (f32::from_bits(0x3b996966) - f2 * f32::from_bits(0x39283c1a)))));
    match (nf as i32) & 3 {
        0 => c,
        1 => -s,
        2 => -c,
        _ => s,
    }
}

/// ln Γ(x) for x > 0 in f32 arithmetic: shifted up to y ≥ 8 by the recurrence
/// (one product, one logarithm), then Stirling's series to 1/(1260 y^5)
/// (truncation below 3e-10). NaN for x ≤ 0 or NaN; +∞ for +∞.
pub fn lgamma(x: f32) -> f32 {
    if !(x > 0.0) {
        return f32::NAN;
    }
    if x == f32::INFINITY {
        return x;
    }
    if x < 1e-30 {
        return -libm::logf(x); // ln Γ(x) = −ln x − γx + O(x²)
    }
    let mut y = x;
    let mut prod = 1.0f32;
    while y < 8.0 {
        prod *= y;
        y += 1.0;
    }
    let inv = 1.0 / y;
    let inv2 = inv * inv;
    let series = inv * ((1.0 / 12.0) - inv2 * ((1.0 / 360.0) - inv2 * (1.0 / 1260.0)));
    let half_ln_2pi = 0.918_938_5_f32;
    let stirling = (y - 0.5) * libm::logf(y) - y + half_ln_2pi + series;
    if prod == 1.0 {
        stirling
    } else {
        stirling - libm::logf(prod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error of `got` in units of the last place of the f32 nearest `exact`.
    fn ulps(got: f32, exact: f64) -> f64 {
        let r = exact as f32;
        let ulp = (f32::from_bits(r.to_bits() + 1) - r) as f64;
        (got as f64 - exact).abs() / ulp
    }

    #[test]
    fn exp_is_within_0_56_ulp_over_the_normal_range() {
        // Every 257th f32 from -87.3 (e^x normal) to ln f32::MAX, both signs.
        let mut worst = 0.0f64;
        let mut n = 0u32;
        for start in [0x8000_0000u32, 0] {
            let mut b = start;
            loop {
                let x = f32::from_bits(b);
                let inside = if start == 0 { x <= 88.72283 } else { x >= -87.33 };
                if !inside {
                    break;
                }
                let e = ulps(exp(x), (x as f64).exp());
                assert!(e <= 0.56, "exp({x:e}) = {} vs {}: {e} ulp", exp(x), (x as f64).exp());
                worst = worst.max(e);
                n += 1;
                b += 257;
            }
        }
        assert!(n > 8_000_000 && worst > 0.4, "{n} points, worst {worst}");
    }

    #[test]
    fn libm_logs_and_softplus_are_within_their_stated_bounds() {
        // `libm`'s f32 `logf` (every 257th positive normal f32) and `log1pf` on
        // (-1, 1e6], and `kernels::softplus` over the range the splines feed it,
        // against f64: the bounds docs/FORMAT.md and math.rs state.
        let (mut worst_log, mut worst_log1p, mut worst_sp) = (0.0f64, 0.0f64, 0.0f64);
        let mut b = 0x0080_0000u32;
        while b < 0x7f80_0000 {
            let x = f32::from_bits(b);
            worst_log = worst_log.max(ulps(libm::logf(x), (x as f64).ln()));
            b += 257;
        }
        let mut x = -0.999_999f32;
        while x < 1e6 {
            worst_log1p = worst_log1p.max(ulps(libm::log1pf(x), (x as f64).ln_1p()));
            x = if x.abs() < 1e-30 {
                1e-30
            } else if x < 0.0 {
                x * 0.999
            } else {
                x * 1.001 + 1e-30
            };
        }
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = if x > 0.0 { x as f64 + (-(x as f64)).exp().ln_1p() } else { (x as f64).exp().ln_1p() };
            worst_sp = worst_sp.max(ulps(crate::kernels::softplus(x), exact));
            x += 0.000_37;
        }
        assert!(worst_log <= 0.8, "logf: {worst_log} ulp");
        assert!(worst_log1p <= 0.75, "log1pf: {worst_log1p} ulp");
        assert!(worst_sp <= 1.5, "softplus: {worst_sp} ulp");
    }

    #[test]
    fn exp_handles_the_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(88.72284), f32::INFINITY); // just above ln f32::MAX
        assert!(exp(88.72283).is_finite());
        assert_eq!(exp(-104.5), 0.0);
        // exp_nonpos_lean gives exp's bits on its whole domain: every f32 exponent
        // of x ≤ 0 (random significands), the cut-offs, infinities and NaN.
        let mut s = 0x9e37_79b9u32;
        for k in 0..200_000u32 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = -f32::from_bits((k % 256) << 23 | s >> 9);
            assert!(same_bits(exp_nonpos_lean(x), exp(x)), "exp_nonpos({x:e})");
        }
        for x in [0.0, -0.0, -104.0, -104.00001, -87.33655, -87.33654, -103.97, f32::NEG_INFINITY, f32::NAN, -f32::NAN]
        {
            assert!(same_bits(exp_nonpos_lean(x), exp(x)), "exp_nonpos({x:e})");
            assert!(same_bits(exp_nonpos(x), exp(x)), "exp_nonpos({x:e})");
        }
        // Subnormal results: within one subnormal step of the exact value.
        for &x in &[-87.4f32, -90.0, -95.5, -100.0, -103.2] {
            let exact = (x as f64).exp();
            assert!((exp(x) as f64 - exact).abs() <= 1.5e-45, "{x}");
        }
    }

    #[test]
    fn cos_turns_matches_f64() {
        let mut worst = 0.0f64;
        for i in 0..(1u32 << 20) {
            let u = (i as f32 + 0.5) / (1u32 << 20) as f32;
            let e = (cos_turns(u) as f64 - (core::f64::consts::TAU * u as f64).cos()).abs();
            worst = worst.max(e);
        }
        assert!(worst < 1.5e-7, "worst {worst}");
    }

    #[test]
    fn lgamma_matches_f64() {
        let mut x = 1e-30f32;
        while x < 1e30 {
            let exact = libm::lgamma(x as f64);
            let err = (lgamma(x) as f64 - exact).abs();
            assert!(err <= 4e-6 * exact.abs().max(1.0), "lgamma({x}) = {} vs {exact}", lgamma(x));
            x *= 1.0137;
        }
        for &x in &[0.5f32, 1.0, 1.5, 2.0, 2.5, 3.0, 4.5, 7.999, 8.0, 30.0] {
            let exact = libm::lgamma(x as f64);
            assert!((lgamma(x) as f64 - exact).abs() <= 4e-6 * exact.abs().max(1.0), "{x}");
        }
        assert!(lgamma(0.0).is_nan() && lgamma(-1.0).is_nan() && lgamma(f32::NAN).is_nan());
    }
}
