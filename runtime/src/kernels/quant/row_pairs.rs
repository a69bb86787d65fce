//! The int8 dense on weights in the row-pair layout
//! (`crate::format::row_pairs`): the portable loop, and the dispatch to the
//! Cortex-M4F kernels (`kernels/dsp/row_pairs.rs`); an odd last row goes
//! through the row-major loops.

use super::{check_i8_shape, row_major};
use crate::error::{Error, Result};

/// [`dense_i8`](super::dense_i8) on weights in the row-pair layout
/// ([`crate::format::row_pairs`]): `acc_i = b_i + Σ_j w_ij · x_j`, the same
/// exact (wrapping) i32 sums, `x` in the paired layout (a pair's stored
/// position `k` holds the weights of the input at `x[k]`). An odd last row is
/// stored plainly and goes through [`dense_i8`](super::dense_i8)'s loops. `x` must be centred
/// int8 values, |x| ≤ 255 (what [`quantize`](super::quantize) writes): the Cortex-M4F kernel's
/// second-row sums are exact only within that (`kernels/dsp.rs`).
///
/// With the `dsp` feature on Arm, blocks of two row pairs go through the
/// `UXTB16`/`SMLAD` loop (`kernels/dsp.rs`); the integer result is the same.
#[inline(never)]
pub fn dense_i8_pairs(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
    check_i8_shape(w, b, x, acc)?;
    let cols = x.len();
    let paired = acc.len() - acc.len() % 2;
    let (Some((wp, wl)), Some((bp, bl)), Some((ap, al))) =
        (w.split_at_checked(paired * cols), b.split_at_checked(paired), acc.split_at_mut_checked(paired))
    else {
        return Err(Error::Internal);
    };
    #[cfg(all(feature = "dsp", target_arch = "arm", target_endian = "little"))]
    let done = if cols < 4 && crate::kernels::dsp::narrow_row_pairs(wp, bp, x, ap) {
        bp.len()
    } else {
        crate::kernels::dsp::dense_row_pairs(wp, bp, x, ap)
    };
    #[cfg(not(all(feature = "dsp", target_arch = "arm", target_endian = "little")))]
    let done = 0;
    if let (Some(wr), Some(br), Some(ar)) = (wp.get(done * cols..), bp.get(done..), ap.get_mut(done..)) {
        row_pairs_portable(wr, br, x, ar);
    }
    // The odd last row, row-major: what `dense_i8` does, called from here so
    // that its frame does not sit under this one (the 1,200-byte `sample`
    // stack bound).
    if !al.is_empty() {
        row_major(wl, bl, x, al);
    }
    Ok(())
}

/// [`dense_i8_pairs`]'s portable loop over whole row pairs (lengths checked by
/// the caller): the first row of a pair sums its stored bytes `w + 128` times
/// `x`, then takes `128·Σx` off once (exact in wrapping i32, like the sums).
#[inline(never)]
pub(crate) fn row_pairs_portable(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) {
    let cols = x.len();
    if w.is_empty() {
        return; // every pair went through the Cortex-M4F kernel
    }
    let sum_x = x.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v))).wrapping_mul(128);
    for ((pair, bb), a) in w.chunks_exact(2 * cols).zip(b.chunks_exact(2)).zip(acc.chunks_exact_mut(2)) {
        if let ([b0, b1], [a0, a1]) = (bb, a) {
            let (mut s0, mut s1) = (b0.wrapping_sub(sum_x), *b1);
            // Two inputs per pass (two independent products per row), except
            // on Arm: the Cortex-M0's eight low registers make it slower there,
            // and the Cortex-M4F takes its pairs in `kernels/dsp.rs`.
            #[cfg(not(target_arch = "arm"))]
            let (pair, x) = {
                let (w2, wr) = pair.split_at(pair.len() - pair.len() % 4);
                let (x2, xr) = x.split_at(w2.len() / 2);
                for (wk, xk) in w2.chunks_exact(4).zip(x2.chunks_exact(2)) {
                    if let ([u0, v0, u1, v1], [xa, xb]) = (wk, xk) {
                        let (xa, xb) = (i32::from(*xa), i32::from(*xb));
                        s0 = s0.wrapping_add(i32::from(*u0 as u8) * xa + i32::from(*u1 as u8) * xb);
                        s1 = s1.wrapping_add(i32::from(*v0) * xa + i32::from(*v1) * xb);
                    }
                }
                (wr, xr)
            };
            for (wk, &xk) in pair.chunks_exact(2).zip(x) {
                if let [u, v] = *wk {
                    let xk = i32::from(xk);
                    s0 = s0.wrapping_add(i32::from(u as u8) * xk);
                    s1 = s1.wrapping_add(i32::from(v) * xk);
                }
            }
            *a0 = s0;
            *a1 = s1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{dense_i8, dense_i8_lanes, dense_i8_lanes_pairs, paired_index};
    use super::*;

    #[test]
    fn the_row_pair_layout_gives_the_row_major_sums() {
        // Both layouts, single row and lanes, extreme weights (±127) and
        // activations (±255): odd and even row counts, fewer than four inputs,
        // whole and partial groups of four.
        use crate::format::row_pairs::pack;
        use crate::kernels::LANES;
        const R: usize = 9;
        const C: usize = 13;
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        for rows in 1..=R {
            for cols in [1, 2, 3, 4, 5, 6, 8, 10, C] {
                let w: [i8; R * C] = core::array::from_fn(|k| match k % 7 {
                    0 => 127,
                    1 => -127,
                    _ => (next() % 255) as i8,
                });
                let w: [i8; R * C] = w.map(|v| if v == i8::MIN { 0 } else { v });
                let x: [i16; C] = core::array::from_fn(|k| if k % 3 == 0 { 255 } else { (next() % 511) as i16 - 255 });
                let b: [i32; R] = core::array::from_fn(|k| (next() as i32) >> (k % 3 * 8 + 2));
                let (w, b) = (&w[..rows * cols], &b[..rows]);
                let mut xs = [0i16; C + 1];
                for k in 0..cols {
                    xs[paired_index(k, cols)] = x[k];
                }
                let mut packed = [0i8; R * C];
                pack(w, rows, cols, &mut packed[..rows * cols]).unwrap();
                let (mut want, mut got) = ([0i32; R], [0i32; R]);
                dense_i8(w, b, &xs[..cols], &mut want[..rows]).unwrap();
                dense_i8_pairs(&packed[..rows * cols], b, &xs[..cols], &mut got[..rows]).unwrap();
                assert_eq!(got, want, "{rows} x {cols}");
                for r in 0..rows {
                    let exact = b[r] as i64 + (0..cols).map(|j| w[r * cols + j] as i64 * x[j] as i64).sum::<i64>();
                    assert_eq!(want[r] as i64, exact);
                }
                let xl: [i16; C * LANES] = core::array::from_fn(|k| x[k / LANES] - (k % LANES) as i16);
                let (mut want_l, mut got_l) = ([0i32; R * LANES], [0i32; R * LANES]);
                dense_i8_lanes(w, b, &xl[..cols * LANES], &mut want_l[..rows * LANES]).unwrap();
                dense_i8_lanes_pairs(&packed[..rows * cols], b, &xl[..cols * LANES], &mut got_l[..rows * LANES])
                    .unwrap();
                assert_eq!(got_l, want_l, "lanes, {rows} x {cols}");
                assert!(dense_i8_pairs(&packed[..rows * cols], b, &xs[..cols + 1], &mut got[..rows]).is_err());
            }
        }
    }
}
