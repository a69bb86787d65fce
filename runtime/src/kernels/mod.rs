//! Numerical kernels: dense layers (f32, w8, int8), activations, softplus.
//!
//! The building blocks a model's conditioners run on, public for benchmarks and
//! for the firmware's cost program; evaluating a model needs none of them
//! directly. Every kernel accumulates in a fixed, sequential order and computes
//! transcendental functions in f32 software ([`math`], `libm`'s f32 functions),
//! so the host and a Cortex-M produce the same bits.

use crate::error::{Error, Result};
use crate::format::Activation;

#[cfg(all(feature = "dsp", target_arch = "arm", target_endian = "little"))]
mod dsp;
mod logsum;
pub mod math;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use logsum::LogSum;

/// `y = W x + b` with `W` row-major `y.len() x x.len()`.
///
/// Each output is `sum_j W[i][j] * x[j]` accumulated left to right (a multiply
/// rounded, then an add rounded: never fused), then `+ b[i]`. Four rows go
/// through the inputs together, so each `x[j]` is loaded once per four rows
/// (Cortex-M4F: `VMLA` is this unfused multiply-add); every row keeps its own
/// order, so the bits are those of one row at a time.
pub fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    let cols = x.len();
    if cols == 0 || w.len() != cols * y.len() || b.len() != y.len() {
        return Err(Error::Internal);
    }
    let mut blocks = w.chunks_exact(4 * cols);
    let mut bias = b.chunks_exact(4);
    let mut out = y.chunks_exact_mut(4);
    for ((blk, bb), yb) in (&mut blocks).zip(&mut bias).zip(&mut out) {
        #[cfg(all(feature = "dsp", target_arch = "arm", target_abi = "eabihf", target_endian = "little"))]
        if dsp::f32_block4(blk, bb, x, yb) {
            continue;
        }
        let (r0, rest) = blk.split_at(cols);
        let (r1, rest) = rest.split_at(cols);
        let (r2, r3) = rest.split_at(cols);
        let (mut a0, mut a1, mut a2, mut a3) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for ((((&xj, &w0), &w1), &w2), &w3) in x.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
            a0 += w0 * xj;
            a1 += w1 * xj;
            a2 += w2 * xj;
            a3 += w3 * xj;
        }
        if let ([b0, b1, b2, b3], [y0, y1, y2, y3]) = (bb, yb) {
            *y0 = a0 + b0;
            *y1 = a1 + b1;
            *y2 = a2 + b2;
            *y3 = a3 + b3;
        }
    }
    let rest = blocks.remainder();
    let (rb, ry) = (bias.remainder(), out.into_remainder());
    for ((row, bi), yi) in rest.chunks_exact(cols).zip(rb).zip(ry.iter_mut()) {
        let mut acc = 0.0f32;
        for (wij, xj) in row.iter().zip(x) {
            acc += wij * xj;
        }
        *yi = acc + bi;
    }
    Ok(())
}

/// Rows evaluated together by [`dense_f32_lanes`] and `Model::log_prob_batch`.
pub const LANES: usize = 16;

/// [`dense_f32`] on [`LANES`] inputs at once: `x` holds `cols × LANES` values
/// (input `j` of lane `l` at `j·LANES + l`), `y` gets `rows × LANES` the same
/// way. Each lane performs exactly the one-row operation sequence — its sum
/// from 0.0, `+= w_ij · x_j` left to right (unfused), then `+ b_i` — so every lane
/// has the bits [`dense_f32`] gives that row; the lanes run side by side in the
/// CPU's vector registers (SSE2 on x86-64, NEON on aarch64: the compiler
/// vectorizes the lane loops, and Rust never contracts them into FMA).
///
/// On x86-64 a CPU with AVX-512F or AVX2 runs the same loops compiled for it
/// (the sixteen lanes in one 512-bit or two 256-bit registers instead of four
/// SSE registers), chosen at run time
/// (`kernels/x86.rs`); the operations, and so the bits, are the same.
pub fn dense_f32_lanes(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    run_wide(DenseLanes { w, b, x, y, relu: false })
}

/// [`dense_f32_lanes`] followed by a ReLU (`v < 0` becomes 0, NaN stays), in
/// the same pass: the bits of the two in turn.
pub(crate) fn dense_f32_lanes_relu(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    run_wide(DenseLanes { w, b, x, y, relu: true })
}

/// [`dense_f32_lanes`]'s arguments, for [`run_wide`].
struct DenseLanes<'a> {
    w: &'a [f32],
    b: &'a [f32],
    x: &'a [f32],
    y: &'a mut [f32],
    relu: bool,
}

impl Wide for DenseLanes<'_> {
    type Out = Result<()>;
    #[inline(always)]
    fn run(self) -> Result<()> {
        if self.relu {
            dense_f32_lanes_body::<true>(self.w, self.b, self.x, self.y)
        } else {
            dense_f32_lanes_body::<false>(self.w, self.b, self.x, self.y)
        }
    }
}

/// A lane computation [`run_wide`] compiles for each vector extension.
pub(crate) trait Wide {
    /// What it returns.
    type Out;
    /// The computation; implementations are `#[inline(always)]`.
    fn run(self) -> Self::Out;
}

/// Run `w` in the widest vectors this CPU has: on x86-64 AVX-512F or AVX2
/// when present (detected at run time, `kernels/x86.rs`), else the portable build
/// (SSE2 on x86-64, NEON on aarch64). Every variant performs the same IEEE
/// operations in the same order, so the bits do not depend on the choice.
#[inline(always)]
pub(crate) fn run_wide<W: Wide>(w: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    return x86::run_wide(w);
    #[cfg(not(target_arch = "x86_64"))]
    w.run()
}

/// [`dense_f32_lanes`]'s loops, inlined into each instruction-set variant.
/// With `RELU`, each output `v` is then `0.0` where `v < 0.0` (the ReLU of
/// [`activate`]).
#[inline(always)]
fn dense_f32_lanes_body<const RELU: bool>(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    let rows = b.len();
    let cols = x.len() / LANES;
    if cols == 0 || x.len() != cols * LANES || w.len() != cols * rows || y.len() != rows * LANES {
        return Err(Error::Internal);
    }
    // Four output rows per pass over the inputs: four independent accumulator
    // chains per lane keep the vector units busy (one row alone waits on its
    // add's latency at every input), and each input vector is loaded once per
    // four rows. Every (row, lane) still sums from 0.0 left to right.
    let mut blocks = w.chunks_exact(4 * cols);
    let mut bias = b.chunks_exact(4);
    let mut out = y.chunks_exact_mut(4 * LANES);
    for ((blk, bb), yb) in (&mut blocks).zip(&mut bias).zip(&mut out) {
        let (r0, rest) = blk.split_at(cols);
        let (r1, rest) = rest.split_at(cols);
        let (r2, r3) = rest.split_at(cols);
        let mut acc = [[0.0f32; LANES]; 4];
        for ((((xj, &w0), &w1), &w2), &w3) in x.chunks_exact(LANES).zip(r0).zip(r1).zip(r2).zip(r3) {
            for (a, wk) in acc.iter_mut().zip([w0, w1, w2, w3]) {
                for (al, &v) in a.iter_mut().zip(xj) {
                    *al += wk * v;
                }
            }
        }
        for ((yi, a), &bi) in yb.chunks_exact_mut(LANES).zip(acc).zip(bb) {
            for (o, al) in yi.iter_mut().zip(a) {
                let v = al + bi;
                *o = if RELU && v < 0.0 { 0.0 } else { v };
            }
        }
    }
    let rest = blocks.remainder();
    for ((row, &bi), yi) in
        rest.chunks_exact(cols).zip(bias.remainder()).zip(out.into_remainder().chunks_exact_mut(LANES))
    {
        let mut acc = [0.0f32; LANES];
        for (&wij, xj) in row.iter().zip(x.chunks_exact(LANES)) {
            for (a, &v) in acc.iter_mut().zip(xj) {
                *a += wij * v;
            }
        }
        for (o, a) in yi.iter_mut().zip(acc) {
            let v = a + bi;
            *o = if RELU && v < 0.0 { 0.0 } else { v };
        }
    }
    Ok(())
}

/// Apply an activation in place.
pub fn activate(act: Activation, v: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::Relu => {
            for x in v.iter_mut() {
                // `max` would turn a NaN into 0; keep NaN visible instead.
                if *x < 0.0 {
                    *x = 0.0;
                }
            }
        }
        Activation::Tanh => {
            for x in v.iter_mut() {
                *x = libm::tanhf(*x);
            }
        }
    }
}

/// Numerically stable softplus `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    let m = if x > 0.0 { x } else { 0.0 };
    // −|x| ≤ 0 (or NaN): `exp_nonpos`, exp's bits without its overflow branch.
    m + libm::log1pf(crate::kernels::math::exp_nonpos(-libm::fabsf(x)))
}

/// Cut `n` values off the front of a mutable slice.
#[inline]
pub(crate) fn take<'s>(s: &mut &'s mut [f32], n: usize) -> Result<&'s mut [f32]> {
    let whole = core::mem::take(s);
    if n > whole.len() {
        *s = whole;
        return Err(Error::Internal);
    }
    let (head, tail) = whole.split_at_mut(n);
    *s = tail;
    Ok(head)
}

/// Checked sub-slice.
#[inline]
pub(crate) fn sub(s: &[f32], start: usize, len: usize) -> Result<&[f32]> {
    s.get(start..start.checked_add(len).ok_or(Error::Internal)?).ok_or(Error::Internal)
}

/// Checked mutable sub-slice.
#[inline]
pub(crate) fn sub_mut(s: &mut [f32], start: usize, len: usize) -> Result<&mut [f32]> {
    s.get_mut(start..start.checked_add(len).ok_or(Error::Internal)?).ok_or(Error::Internal)
}

/// Checked element read.
#[inline]
pub(crate) fn at(s: &[f32], i: usize) -> Result<f32> {
    s.get(i).copied().ok_or(Error::Internal)
}

/// Checked element write.
#[inline]
pub(crate) fn set(s: &mut [f32], i: usize, v: f32) -> Result<()> {
    *s.get_mut(i).ok_or(Error::Internal)? = v;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_computes_wx_plus_b() {
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [0.5, -1.0];
        let x = [1.0, 0.0, -1.0];
        let mut y = [0.0; 2];
        dense_f32(&w, &b, &x, &mut y).unwrap();
        assert_eq!(y, [1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0]);
    }

    #[test]
    fn dense_blocks_of_four_rows_give_the_one_row_bits() {
        // 7 rows (a block and a remainder of 3), 5 columns: every output equals
        // its own left-to-right sum, bit for bit.
        let mut s = 7u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / 65_536.0 - 128.0
        };
        let w: [f32; 35] = core::array::from_fn(|_| next());
        let b: [f32; 7] = core::array::from_fn(|_| next());
        let x: [f32; 5] = core::array::from_fn(|_| next() * 1e-3);
        let mut y = [0.0f32; 7];
        dense_f32(&w, &b, &x, &mut y).unwrap();
        for i in 0..7 {
            let mut acc = 0.0f32;
            for j in 0..5 {
                acc += w[i * 5 + j] * x[j];
            }
            assert_eq!((acc + b[i]).to_bits(), y[i].to_bits(), "row {i}");
        }
    }

    #[test]
    fn dense_lanes_give_each_row_its_one_row_bits() {
        let mut s = 11u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / 65_536.0 - 128.0
        };
        let (rows, cols) = (5, 7);
        let w: [f32; 35] = core::array::from_fn(|_| next());
        let b: [f32; 5] = core::array::from_fn(|_| next());
        let xs: [[f32; 7]; LANES] = core::array::from_fn(|_| core::array::from_fn(|_| next() * 1e-3));
        let mut xl = [0.0f32; 7 * LANES];
        for (l, x) in xs.iter().enumerate() {
            for (j, &v) in x.iter().enumerate() {
                xl[j * LANES + l] = v;
            }
        }
        let mut yl = [0.0f32; 5 * LANES];
        dense_f32_lanes(&w, &b, &xl, &mut yl).unwrap();
        for (l, x) in xs.iter().enumerate() {
            let mut y = [0.0f32; 5];
            dense_f32(&w, &b, x, &mut y).unwrap();
            for i in 0..rows {
                assert_eq!(y[i].to_bits(), yl[i * LANES + l].to_bits(), "row {i} lane {l}");
            }
        }
        assert_eq!(dense_f32_lanes(&w, &b, &xl[..cols], &mut yl), Err(Error::Internal));
    }

    #[test]
    fn dense_rejects_bad_shapes() {
        let mut y = [0.0; 2];
        assert_eq!(dense_f32(&[1.0; 5], &[0.0; 2], &[1.0; 3], &mut y), Err(Error::Internal));
    }

    #[test]
    fn softplus_is_stable() {
        assert!((softplus(0.0) - core::f32::consts::LN_2).abs() < 1e-7);
        assert_eq!(softplus(100.0), 100.0);
        assert!(softplus(-100.0) >= 0.0 && softplus(-100.0) < 1e-30);
    }
}
