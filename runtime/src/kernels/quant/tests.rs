//! The int8 kernels against exact wide arithmetic.

use super::*;

#[test]
fn multiplier_reproduces_the_real_value() {
    for &r in &[1.0f32, 0.5, 0.75, 3.0e-3, 1.7, 123.456, 1e-9] {
        let (m, s) = multiplier(r);
        let back = m as f64 * 2f64.powi(s - 31);
        assert_eq!(back as f32, r, "{r}: m={m} shift={s}");
        assert!((1 << 30..=i32::MAX).contains(&m));
    }
    assert_eq!(multiplier(0.0), (0, 0));
    assert_eq!(multiplier(-1.0), (0, 0));
    assert_eq!(multiplier(f32::NAN), (0, 0));
}

#[test]
fn requantize_rounds_once_and_saturates() {
    let (m, s) = multiplier(0.5);
    assert_eq!(requantize(3, m, s), 2); // 1.5 -> 2 (half up)
    assert_eq!(requantize(-3, m, s), -1); // -1.5 -> -1 (half towards +inf)
    assert_eq!(requantize(4, m, s), 2);
    let (m, s) = multiplier(0.001);
    for acc in [-100_000, -1234, 0, 7, 99_999] {
        let exact = acc as f64 * m as f64 * 2f64.powi(s - 31);
        assert!((requantize(acc, m, s) as f64 - exact).abs() <= 0.5, "{acc}");
    }
    let (m, s) = multiplier(1e12);
    assert_eq!(requantize(5, m, s), i32::MAX);
    assert_eq!(requantize(-5, m, s), i32::MIN);
}

#[test]
fn requantize_relu_equals_the_wide_formula_at_every_scale() {
    // The 32-bit fast path against the rounding written in i128, for every
    // f32 exponent the ratio can have (both paths), random significands,
    // extreme accumulators and every zero point's clamp.
    let mut s = 0x1234_5678u32;
    let mut next = || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        s
    };
    let mut words = 0;
    for e in 0..=255u32 {
        for k in 0..200 {
            let real = f32::from_bits(e << 23 | next() >> 9);
            let acc = match k {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => 0,
                3 => -1,
                _ => (next() as i32) >> (k % 31),
            };
            let zp = (next() % 256) as i32 - 128;
            let (m, shift) = multiplier(real);
            let total = 31 - shift;
            let prod = i128::from(acc) * i128::from(m);
            // |prod| < 2^62: beyond a shift of 64 everything rounds to 0.
            let wide = if total > 64 {
                0
            } else if total > 0 {
                (prod + (1i128 << (total - 1))) >> total
            } else {
                prod << (-total).min(64)
            };
            let r = wide.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
            assert_eq!(requantize(acc, m, shift), r, "acc {acc} real {real:e}");
            let want = (r.saturating_add(zp).clamp(zp, 127) - zp) as i16;
            assert_eq!(requantize_relu(acc, real, zp), want, "acc {acc} real {real:e} zp {zp}");
            // A stored word exists exactly in the fast range, and reads the same bits.
            let word = crate::format::requant_words::word(real);
            assert_eq!(word.is_some(), (95..=124).contains(&e), "exponent {e}");
            if let Some(word) = word {
                assert!(crate::format::requant_words::is_valid(word));
                assert_eq!(requantize_relu_word(acc, word, zp), want, "word: acc {acc} real {real:e} zp {zp}");
                words += 1;
            }
        }
    }
    assert_eq!(words, 30 * 200);
}

#[test]
fn dense_i8_is_the_exact_dot_product() {
    // Every width the portable loop takes: fewer than four inputs, whole
    // groups of four, and groups with a partial one after (the Cortex-M4F's
    // kernel is diffed against this loop by the firmware cost program).
    const MAX: usize = 11;
    for cols in [1, 2, 3, 4, 5, 8, MAX] {
        let mut w = [0i8; 3 * MAX];
        for (k, v) in w.iter_mut().enumerate() {
            *v = (((k * 37) % 255) as i32 - 127) as i8;
        }
        let mut x = [0i16; MAX];
        for (k, v) in x.iter_mut().enumerate() {
            *v = (k as i16 * 53) % 511 - 255;
        }
        // Stored in the paired layout.
        let mut xs = [0i16; MAX];
        for k in 0..cols {
            xs[paired_index(k, cols)] = x[k];
        }
        let b = [5, -1 << 30, 1 << 30];
        let mut acc = [0i32; 3];
        dense_i8(&w[..3 * cols], &b, &xs[..cols], &mut acc).unwrap();
        for r in 0..3 {
            let want: i64 = b[r] as i64 + (0..cols).map(|j| w[r * cols + j] as i64 * x[j] as i64).sum::<i64>();
            assert!(want.abs() < i32::MAX as i64);
            assert_eq!(acc[r] as i64, want, "{cols} inputs, row {r}");
        }
    }
}

#[test]
fn quantize_clamps_and_centres_in_the_paired_layout() {
    let mut q = [0i16; 5];
    quantize(&[0.0, 1.0, -1.0, 1e9, -1e9], 10.0, -3, &mut q).unwrap();
    assert_eq!(q, [0, -10, 10, 130, -125]);
}

#[test]
fn paired_index_is_a_permutation() {
    for n in 1..14 {
        let mut seen = [false; 14];
        for j in 0..n {
            let p = paired_index(j, n);
            assert!(p < n && !seen[p]);
            seen[p] = true;
        }
    }
    assert_eq!([0, 1, 2, 3, 4].map(|j| paired_index(j, 5)), [0, 2, 1, 3, 4]);
}
