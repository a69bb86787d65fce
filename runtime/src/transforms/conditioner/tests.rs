//! The requantization loops against each other.

use super::requantize::*;
use super::unit_ratio;
use crate::format::requant_words::word;

#[test]
fn the_compact_loop_gives_the_unrolled_loops_bits() {
    // `requantize_compact` runs only on the Cortex-M0 and RV32 builds; here
    // it is checked against the per-form loops the host and the Cortex-M4F
    // run, for both forms, every group shape (n mod 4) and every zero point's
    // clamp.
    let mut s = 0x2545_F491u32;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    for n in [1usize, 3, 4, 7, 8, 13, 64] {
        for zp in [-128, -5, 0, 77, 127] {
            let acc: [i32; 64] = core::array::from_fn(|_| (next() as i32) >> (next() % 24));
            // Scales whose products with the ratio span the fast range and
            // beyond it (the wide path), zero included.
            let scales: [u16; 64] =
                core::array::from_fn(|k| if k == 5 { 0 } else { 0x3A00 + (next() % 0x0C00) as u16 });
            let ratio = 0.37f32;
            let words: [i32; 64] = core::array::from_fn(|k| word(unit_ratio(scales[k], ratio)).unwrap_or(-1 << 8 | 1));
            let (mut a, mut b) = ([0i16; 64], [0i16; 64]);
            requantize_compact(&acc[..n], Units::Scales(&scales[..n], ratio), &mut a[..n], zp).unwrap();
            requantize_scales(&acc[..n], &scales[..n], ratio, &mut b[..n], zp).unwrap();
            assert_eq!(a[..n], b[..n], "scales, n {n} zp {zp}");
            requantize_compact(&acc[..n], Units::Words(&words[..n]), &mut a[..n], zp).unwrap();
            requantize_words(&acc[..n], &words[..n], &mut b[..n], zp).unwrap();
            assert_eq!(a[..n], b[..n], "words, n {n} zp {zp}");
            // And the word form is the scale form wherever a word exists.
            let mut c = [0i16; 64];
            requantize_scales(&acc[..n], &scales[..n], ratio, &mut c[..n], zp).unwrap();
            for (k, &sc) in scales[..n].iter().enumerate() {
                if word(unit_ratio(sc, ratio)).is_some() {
                    let at = crate::format::row_pairs::paired_index(k, n);
                    assert_eq!(b[at], c[at], "unit {k} of {n}, zp {zp}");
                }
            }
        }
    }
}
