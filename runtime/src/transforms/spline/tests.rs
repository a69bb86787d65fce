//! The spline's tests: identity, inverse, derivative, monotonicity, zuko's
//! parameterization, and the knot walk against a full scan.

use super::*;
use std::{vec, vec::Vec};

fn raw(k: usize, seed: u32) -> [f32; 32] {
    let mut r = [0.0f32; 32];
    let mut s = seed;
    for v in r.iter_mut().take(3 * k - 1) {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *v = ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0;
    }
    r
}

/// Both sides' knots the way they were computed before the walk (every
/// knot into an array), for the test below.
fn reference_knots(raw: &[f32], bins: usize, bound: f32, zuko: bool) -> (Vec<f32>, Vec<f32>) {
    let knots = |raw: &[f32], min: f32| {
        let min = if zuko { 0.0 } else { min };
        let logit = |r: f32| if zuko { clip_logit(r) } else { r };
        let m = raw.iter().map(|&r| logit(r)).fold(f32::NEG_INFINITY, |m, r| if r > m { r } else { m });
        let e: Vec<f32> = raw.iter().map(|&r| exp(logit(r) - m)).collect();
        let sum = e.iter().fold(0.0f32, |s, &v| s + v);
        let scale = 1.0 - min * bins as f32;
        let mut k = vec![-bound];
        let mut cum = 0.0f32;
        for &ei in &e {
            cum += min + scale * (ei / sum);
            k.push(2.0 * bound * cum - bound);
        }
        k[bins] = bound;
        k
    };
    (knots(&raw[..bins], MIN_BIN_WIDTH), knots(&raw[bins..2 * bins], MIN_BIN_HEIGHT))
}

/// The bin the way it was found before the walk: every knot computed,
/// then all interior knots scanned.
fn reference_bin(raw: &[f32], bins: usize, bound: f32, zuko: bool, v: f32, by_y: bool) -> [f32; 6] {
    let (cw, ch) = reference_knots(raw, bins, bound, zuko);
    let searched = if by_y { &ch } else { &cw };
    let idx = (1..bins).filter(|&i| v >= searched[i]).max().unwrap_or(0);
    let d = &raw[2 * bins..];
    let der = |i: usize| {
        if i == 0 || i == bins {
            1.0
        } else if zuko {
            derivative::<true>(d[i - 1])
        } else {
            derivative::<false>(d[i - 1])
        }
    };
    [cw[idx], cw[idx + 1] - cw[idx], ch[idx], ch[idx + 1] - ch[idx], der(idx), der(idx + 1)]
}

#[test]
fn the_knot_walk_gives_the_bin_of_a_full_scan_bit_for_bit() {
    // Every field a spline evaluation reads from its bin (the knot, width,
    // height and derivatives at both ends), against every knot computed
    // and scanned: random logits (some large, some infinite or NaN), both
    // parameterizations, both sides, K = 1 ..= 16 and a few up to 256,
    // three bounds; at every knot of both sides and the floats next to
    // them, between the knots, at the bounds and NaN. NaNs are compared by
    // their bits too.
    let mut s = 0x2545_f491u32;
    let mut next = || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        s
    };
    let mut work = vec![0.0f32; work_len(256)];
    for case in 0..1600u32 {
        let bins = if case % 50 == 7 { [64, 255, 256][(case % 3) as usize] } else { 1 + (case % 16) as usize };
        let mut raw = vec![0.0f32; 3 * bins - 1];
        let spread = [0.1f32, 3.0, 40.0][(case % 3) as usize];
        for r in raw.iter_mut() {
            *r = ((next() >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * spread;
        }
        if case % 37 == 5 {
            raw[(next() as usize) % (2 * bins)] = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN][(case % 3) as usize];
        }
        let bound = [3.0f32, 1e-3, 1e30][(case % 5 % 3) as usize];
        let zuko = case % 2 == 1;
        let (cw, ch) = reference_knots(&raw, bins, bound, zuko);
        let mut vs = vec![-bound, bound, 0.0, f32::NAN];
        for &k in cw.iter().chain(&ch) {
            vs.extend([k, f32::from_bits(k.to_bits().wrapping_add(1)), f32::from_bits(k.to_bits().wrapping_sub(1))]);
        }
        for _ in 0..4 {
            vs.push(((next() >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0 * bound);
        }
        for by_y in [false, true] {
            for &v in &vs {
                let want = reference_bin(&raw, bins, bound, zuko, v, by_y);
                let b = if by_y {
                    bin_of::<true>(&raw, bins, bound, zuko, v, &mut work)
                } else {
                    bin_of::<false>(&raw, bins, bound, zuko, v, &mut work)
                }
                .unwrap();
                let got = [b.xk, b.wk, b.yk, b.hk, b.dk, b.dk1];
                assert!(
                    got.iter().zip(want).all(|(g, w)| g.to_bits() == w.to_bits()),
                    "case {case} K {bins} B {bound} by_y {by_y} v {v}: {got:?} vs {want:?}"
                );
            }
        }
    }
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
        let (y, _) = Spline { bins: k, bound: 2.0, zuko: false }.forward(-2.0 + 0.01 * i as f32, r, &mut w).unwrap();
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
