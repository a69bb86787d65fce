//! The lane versions of [`super`]'s `exp` and of `libm`'s `logf` and
//! `log1pf`: each computes the single-value function of every element of an
//! array, with its bits, written so that a vectorizing compiler runs the
//! elements side by side (`Model::log_prob_batch`'s splines).

use super::{exp, exp_parts};

/// Where [`exp_lanes`] takes its branch-free path: e^x is normal with
/// `e` in −125 ..= 126 (k ≥ −4000 needs x ≥ −86.64).
const LANE_LO: f32 = -86.0;
const LANE_HI: f32 = 88.0;

/// [`exp`] of every lane, with [`exp`]'s bits: lanes in [−86, 88] (a softmax's
/// arguments, almost always) take [`exp`]'s normal-result path without its
/// branches, so a vectorizing compiler runs them side by side; any other lane
/// (NaN, ±∞, huge, subnormal results) is then recomputed by [`exp`] itself.
#[inline(always)]
pub fn exp_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    let fast = |v: f32| {
        let (p, e) = exp_parts(v);
        f32::from_bits(p.to_bits().wrapping_add((e << 23) as u32))
    };
    lanes(x, |v| (LANE_LO..=LANE_HI).contains(&v), 0.0, fast, exp)
}

/// A function of every lane: `fast` (branch-free, vectorizable) on the lanes
/// `main` accepts — the others get it on `stand_in` first, then `slow`, the
/// reference function, once any lane needs it.
#[inline(always)]
fn lanes<const N: usize>(
    x: &[f32; N],
    main: impl Fn(f32) -> bool,
    stand_in: f32,
    fast: impl Fn(f32) -> f32,
    slow: impl Fn(f32) -> f32,
) -> [f32; N] {
    let mut out = [0.0f32; N];
    let mut odd = false;
    for (o, &v) in out.iter_mut().zip(x) {
        let inside = main(v);
        odd |= !inside;
        *o = fast(if inside { v } else { stand_in });
    }
    if odd {
        for (o, &v) in out.iter_mut().zip(x) {
            if !main(v) {
                *o = slow(v);
            }
        }
    }
    out
}

/// `libm`'s `logf` and `log1pf` constants (FreeBSD's): the f32s of its literals.
const LN2_HI: f32 = f32::from_bits(0x3f317180); // 6.9313812256e-01
const LN2_LO: f32 = f32::from_bits(0x3717f7d1); // 9.0580006145e-06
const LG1: f32 = f32::from_bits(0x3f2aaaaa); // 0.66666662693 (0xaaaaaa.0p-24)
const LG2: f32 = f32::from_bits(0x3eccce13); // 0.40000972152 (0xccce13.0p-25)
const LG3: f32 = f32::from_bits(0x3e91e9ee); // 0.28498786688 (0x91e9ee.0p-25)
const LG4: f32 = f32::from_bits(0x3e789e26); // 0.24279078841 (0xf89e26.0p-26)

/// `libm`'s shared tail of `logf` and `log1pf` for the reduced `f`: `(s, r, hfsq)`.
#[inline(always)]
fn log_poly(f: f32) -> (f32, f32, f32) {
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    (s, t2 + t1, 0.5 * f * f)
}

/// `libm::logf` of every lane, with its bits: lanes holding a positive normal
/// f32 other than 1 run `logf`'s main path (reduction to [√½, √2], the same
/// polynomial and sums in the same order) without its branches, so a
/// vectorizing compiler runs them side by side; any other lane (0, subnormal,
/// negative, ∞, NaN, 1) is then recomputed by `libm::logf` itself.
#[inline(always)]
pub fn ln_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    let main = |v: f32| (0x0080_0000..0x7f80_0000).contains(&v.to_bits()) && v.to_bits() != 0x3f80_0000;
    let fast = |v: f32| {
        let ix = v.to_bits() + (0x3f80_0000 - 0x3f35_04f3);
        let k = ((ix >> 23) as i32) - 0x7f;
        let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
        let (s, r, hfsq) = log_poly(f);
        let dk = k as f32;
        s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
    };
    lanes(x, main, 2.0, fast, libm::logf)
}

/// `libm::log1pf` of every lane, with its bits: lanes in [2^-24, 1] (the
/// arguments of [`crate::kernels::softplus`]) run `log1pf`'s two paths for them (1 + x
/// below √2: no reduction; above: reduced, with the correction term) as
/// selects instead of branches, so a vectorizing compiler runs them side by
/// side; any other lane is then recomputed by `libm::log1pf` itself.
#[inline(always)]
pub fn ln_1p_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    let fast = |x: f32| {
        // log1pf's reduced path (taken for x >= 0x3ed413d0, 1 + x >= √2-).
        let u = 1.0 + x;
        let iu = u.to_bits() + (0x3f80_0000 - 0x3f35_04f3);
        let k1 = (iu >> 23) as i32 - 0x7f;
        let c1 = (if k1 >= 2 { 1.0 - (u - x) } else { x - (u - 1.0) }) / u;
        let f1 = f32::from_bits((iu & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
        let reduce = x.to_bits() >= 0x3ed4_13d0;
        let (k, c, f) = if reduce { (k1, c1, f1) } else { (0, 0.0, x) };
        let (s, r, hfsq) = log_poly(f);
        let dk = k as f32;
        s * (hfsq + r) + (dk * LN2_LO + c) - hfsq + f + dk * LN2_HI
    };
    lanes(x, |v| (0x3380_0000..=0x3f80_0000).contains(&v.to_bits()), 0.5, fast, libm::log1pf)
}

/// [`crate::kernels::softplus`] of every lane, with its bits.
#[inline(always)]
pub fn softplus_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    let mut a = [0.0f32; N];
    for (ai, &v) in a.iter_mut().zip(x) {
        *ai = -libm::fabsf(v);
    }
    let l = ln_1p_lanes(&exp_lanes(&a));
    let mut out = [0.0f32; N];
    for ((o, &v), li) in out.iter_mut().zip(x).zip(l) {
        let m = if v > 0.0 { v } else { 0.0 };
        *o = m + li;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The same f32 bits, or both NaN: Rust leaves a NaN result's sign and
    /// payload unspecified (aarch64 builds were seen to differ in the sign of
    /// a NaN between the lane and the single-value code), so NaN is compared
    /// as NaN.
    pub(crate) fn same_bits(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Seeded values in [-0.5, 0.5) (xorshift32) for the lane tests.
    pub(crate) fn uniform(seed: u32) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    /// Every `stride`-th f32 bit pattern (both signs), then each edge and its
    /// two neighbours.
    fn sweep(stride: u32, edges: impl IntoIterator<Item = u32>) -> std::vec::Vec<f32> {
        let mut xs: std::vec::Vec<f32> = (0..u32::MAX / stride).map(|k| f32::from_bits(k * stride)).collect();
        for v in edges {
            xs.extend([v.wrapping_sub(1), v, v.wrapping_add(1)].map(f32::from_bits));
        }
        xs
    }

    /// `xs` in arrays of 16, the last padded (with 0.25) so that every value,
    /// the edges appended last included, is tested.
    fn arrays(mut xs: std::vec::Vec<f32>) -> impl Iterator<Item = [f32; 16]> {
        while !xs.len().is_multiple_of(16) {
            xs.push(0.25);
        }
        (0..xs.len() / 16).map(move |k| core::array::from_fn(|i| xs[16 * k + i]))
    }

    #[test]
    fn exp_lanes_has_the_bits_of_exp() {
        // Every 4099th f32 (both signs), and the edges of the branch-free range.
        let edges = [LANE_LO, LANE_HI, -86.64, -87.0, 88.7, 89.0, -104.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        for a in arrays(sweep(4099, edges.map(f32::to_bits))) {
            for (&x, y) in a.iter().zip(exp_lanes(&a)) {
                assert!(same_bits(y, exp(x)), "exp_lanes({x:e}): {y:e} vs {:e}", exp(x));
            }
        }
    }

    #[test]
    fn log_lanes_have_the_bits_of_libm() {
        // Every 1021st f32 (both signs), the edges of each branch-free range,
        // the specials, and a dense sweep of softplus's arguments.
        let edges = [0x0080_0000u32, 0x7f80_0000, 0x3f80_0000, 0x3380_0000, 0x3ed4_13d0, 0x0000_0001, 0xbf80_0000];
        let mut xs = sweep(1021, edges);
        xs.extend([0.0, -0.0, 1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -1.0]);
        let mut v = -90.0f32;
        while v < 90.0 {
            xs.push(v);
            v += 0.000_93;
        }
        for a in arrays(xs) {
            let (l, l1p, sp) = (ln_lanes(&a), ln_1p_lanes(&a), softplus_lanes(&a));
            for (i, &x) in a.iter().enumerate() {
                assert!(same_bits(l[i], libm::logf(x)), "ln_lanes({x:e})");
                assert!(same_bits(l1p[i], libm::log1pf(x)), "ln_1p_lanes({x:e})");
                assert!(same_bits(sp[i], crate::kernels::softplus(x)), "softplus_lanes({x:e})");
            }
        }
    }
}
