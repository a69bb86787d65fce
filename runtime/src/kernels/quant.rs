//! Quantized kernels.
//!
//! - **w8** (weight-only): int8 weights with a bf16 scale per output channel,
//!   f32 activations; `y_i = (Σ_j w_ij·x_j)·s_i + b_i`, accumulated in f32 left to
//!   right.
//! - **int8**: int8 activations (asymmetric, per tensor) and weights (symmetric,
//!   per output channel), exact int32 accumulation, and requantization by a Q31
//!   fixed-point multiplier and a shift with one rounding (TFLite-Micro's
//!   single-rounding scheme). Integer arithmetic is exact and the multipliers are
//!   derived from f32 bit patterns, so every target gives the same bits.

use crate::error::{Error, Result};
use crate::format::bf16_to_f32;

mod row_pairs;
pub use row_pairs::dense_i8_pairs;

/// `y = diag(s) (W x) + b` with int8 `W` (row-major `y.len() x x.len()`) and bf16
/// per-row scales `s`. Each row accumulates `w_ij · x_j` in f32 left to right,
/// then multiplies by its scale and adds its bias.
pub fn dense_w8(w: &[i8], scale: &[u16], b: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    let cols = x.len();
    if cols == 0 || w.len() != cols * y.len() || b.len() != y.len() || scale.len() != y.len() {
        return Err(Error::Internal);
    }
    for (((row, &s), bi), yi) in w.chunks_exact(cols).zip(scale).zip(b).zip(y.iter_mut()) {
        let mut acc = 0.0f32;
        for (&wij, &xj) in row.iter().zip(x) {
            acc += f32::from(wij) * xj;
        }
        *yi = acc * bf16_to_f32(s) + bi;
    }
    Ok(())
}

/// Where element `j` of an int8 activation vector is kept (the *paired*
/// layout: each complete group of four as elements 0, 2, 1, 3, so that one
/// 32-bit load yields the pair a packed 16-bit multiply-accumulate (`SMLAD`)
/// needs next to the `SXTB16`-extracted weights 0, 2 (and 1, 3); a trailing
/// partial group in order). The row-pair weight layout stores its inputs in
/// the same order.
pub(crate) use crate::format::row_pairs::paired_index;

/// Quantize `x` to int8 as `q = clamp(round(x · inv_scale) + zp, -128, 127)`
/// (`round`: half away from zero) and store `q - zp`, the centred value the dot
/// products use, as i16 in the *paired* layout [`dense_i8`] reads: each complete
/// group of four stored as elements 0, 2, 1, 3 (so one 32-bit load feeds a packed
/// 16-bit multiply-accumulate), a trailing partial group in order.
pub fn quantize(x: &[f32], inv_scale: f32, zp: i32, q: &mut [i16]) -> Result<()> {
    let n = x.len();
    if n != q.len() {
        return Err(Error::Internal);
    }
    for (j, &v) in x.iter().enumerate() {
        *q.get_mut(paired_index(j, n)).ok_or(Error::Internal)? = quantize_value(v, inv_scale, zp);
    }
    Ok(())
}

/// One value of [`quantize`]: `clamp(round(v · inv_scale) + zp, -128, 127) - zp`.
#[inline]
pub(crate) fn quantize_value(v: f32, inv_scale: f32, zp: i32) -> i16 {
    // Clamp in f32 first so the conversion is exact; `as` maps NaN to 0.
    let r = libm::roundf(v * inv_scale).clamp(-512.0, 512.0) as i32;
    let qv = r.saturating_add(zp).clamp(-128, 127);
    (qv - zp) as i16
}

/// [`dense_i8`] on [`LANES`](super::LANES) inputs at once: `x` holds `cols × LANES`
/// centred int8 values (input `j` of lane `l` at `j·LANES + l`, no pairing),
/// `acc` gets `rows × LANES` sums the same way. Integer sums wrap the same in
/// any order, so every lane has the sum [`dense_i8`] gives its row.
pub(crate) fn dense_i8_lanes(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
    super::run_wide(LanesI8 { w, b, x, acc, pairs: false })
}

/// [`dense_i8_lanes`] on weights in the row-pair layout (see
/// [`dense_i8_pairs`]); `x` and `acc` as there (inputs in order, not paired:
/// a pair's stored position `k` reads input [`paired_index`]`(k, cols)`).
pub(crate) fn dense_i8_lanes_pairs(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
    super::run_wide(LanesI8 { w, b, x, acc, pairs: true })
}

/// The int8 lanes' loops, inlined into each instruction-set variant: whole row
/// pairs when `pairs`, then single rows in row-major order (all of them when
/// not `pairs`, an odd last row when `pairs`).
struct LanesI8<'a> {
    w: &'a [i8],
    b: &'a [i32],
    x: &'a [i16],
    acc: &'a mut [i32],
    pairs: bool,
}

impl super::Wide for LanesI8<'_> {
    type Out = Result<()>;
    #[inline(always)]
    fn run(self) -> Result<()> {
        let LanesI8 { w, b, x, acc, pairs } = self;
        const L: usize = super::LANES;
        let cols = x.len() / L;
        if cols == 0 || x.len() != cols * L || w.len() != cols * b.len() || acc.len() != b.len() * L {
            return Err(Error::Internal);
        }
        let paired = if pairs { b.len() - b.len() % 2 } else { 0 };
        let (Some((wp, wl)), Some((bp, bl)), Some((ap, al))) =
            (w.split_at_checked(paired * cols), b.split_at_checked(paired), acc.split_at_mut_checked(paired * L))
        else {
            return Err(Error::Internal);
        };
        for ((pair, bb), a) in wp.chunks_exact(2 * cols).zip(bp.chunks_exact(2)).zip(ap.chunks_exact_mut(2 * L)) {
            let (Some(&b0), Some(&b1)) = (bb.first(), bb.get(1)) else { return Err(Error::Internal) };
            let (mut s0, mut s1) = ([b0; L], [b1; L]);
            for (k, wk) in pair.chunks_exact(2).enumerate() {
                let j = paired_index(k, cols);
                let (Some(xj), &[u, v]) = (x.get(j * L..j * L + L), wk) else { return Err(Error::Internal) };
                let (w0, w1) = (i32::from(u as u8) - 128, i32::from(v));
                for ((l0, l1), &xl) in s0.iter_mut().zip(s1.iter_mut()).zip(xj) {
                    *l0 = l0.wrapping_add(w0 * i32::from(xl));
                    *l1 = l1.wrapping_add(w1 * i32::from(xl));
                }
            }
            let (a0, a1) = a.split_at_mut(L);
            a0.copy_from_slice(&s0);
            a1.copy_from_slice(&s1);
        }
        for ((row, &bi), a) in wl.chunks_exact(cols).zip(bl).zip(al.chunks_exact_mut(L)) {
            let mut s = [bi; L];
            for (&wj, xj) in row.iter().zip(x.chunks_exact(L)) {
                let wj = i32::from(wj);
                for (sl, &xl) in s.iter_mut().zip(xj) {
                    *sl = sl.wrapping_add(wj * i32::from(xl));
                }
            }
            a.copy_from_slice(&s);
        }
        Ok(())
    }
}

/// `acc_i = b_i + Σ_j w_ij · x_j`, exact in i32, with `x` in the paired layout
/// [`quantize`] writes. |w| ≤ 127, |x| ≤ 255 and |b| ≤ 2^30 are checked at load,
/// so no sum can overflow for up to 8192 inputs (the most `D + C` can be; the
/// bound holds to about 33,000); wrapping arithmetic keeps even a violated bound
/// panic-free and deterministic.
///
/// With the `dsp` feature on Arm, rows of whole groups of four go through the
/// `SMLAD` loop (`kernels/dsp.rs`); the integer result is the same.
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
    check_i8_shape(w, b, x, acc)?;
    row_major(w, b, x, acc);
    Ok(())
}

/// The lengths an int8 dense needs: inputs, and `cols` weights and one bias per sum.
#[inline(always)]
fn check_i8_shape(w: &[i8], b: &[i32], x: &[i16], acc: &[i32]) -> Result<()> {
    let cols = x.len();
    if cols == 0 || w.len() != cols * acc.len() || b.len() != acc.len() {
        return Err(Error::Internal);
    }
    Ok(())
}

/// Row-major int8 sums (lengths checked by the caller): the Cortex-M4F's
/// `SMLAD` loop where it applies, else the portable loop.
#[inline(always)]
fn row_major(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) {
    #[cfg(all(feature = "dsp", target_arch = "arm", target_endian = "little"))]
    if super::dsp::dense_paired(w, b, x, acc) {
        return;
    }
    dense_i8_portable(w, b, x, acc);
}

/// [`dense_i8`]'s portable loop (lengths checked by the caller). Out of line,
/// so that its registers and iterators do not widen `dense_i8`'s stack frame
/// under the Arm kernel.
#[inline(never)]
fn dense_i8_portable(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) {
    let cols = x.len();
    let split = cols - cols % 4;
    let (x4, xr) = x.split_at(split);
    for ((row, &bi), a) in w.chunks_exact(cols).zip(b).zip(acc.iter_mut()) {
        let (w4, wr) = row.split_at(split);
        let mut s0 = bi;
        let mut s1 = 0i32;
        for (wc, xc) in w4.chunks_exact(4).zip(x4.chunks_exact(4)) {
            // x holds elements 0, 2, 1, 3 of the group.
            if let ([w0, w1, w2, w3], [x0, x2, x1, x3]) = (wc, xc) {
                s0 = s0.wrapping_add(i32::from(*w0) * i32::from(*x0) + i32::from(*w2) * i32::from(*x2));
                s1 = s1.wrapping_add(i32::from(*w1) * i32::from(*x1) + i32::from(*w3) * i32::from(*x3));
            }
        }
        for (&wj, &xj) in wr.iter().zip(xr) {
            s0 = s0.wrapping_add(i32::from(wj) * i32::from(xj));
        }
        *a = s0.wrapping_add(s1);
    }
}

/// The fixed-point form `(m, shift)` of a positive `real`, with
/// `real = m · 2^(shift - 31)` and `m` in `[2^30, 2^31)`: read off the f32's bits
/// (24 significant bits), exact. Zero, negative, subnormal or non-finite values
/// give `(0, 0)`, the zero multiplier.
#[inline]
pub fn multiplier(real: f32) -> (i32, i32) {
    let bits = real.to_bits();
    let e = ((bits >> 23) & 0xFF) as i32;
    if bits >> 31 != 0 || e == 0 || e == 0xFF {
        return (0, 0);
    }
    let mant = (bits & 0x007F_FFFF) | 0x0080_0000;
    ((mant << 7) as i32, e - 126)
}

/// A hidden int8 unit's output: `clamp(requantize(acc, multiplier(real)) + zp,
/// zp, 127) − zp` (ReLU is the clamp at the zero point), the centred value the
/// next dense reads. Bit for bit that expression, faster in the usual case: a
/// positive normal `real` in [2^-32, 2^-2) (f32 exponent field 95 ..= 124, so a
/// total right shift of 33 ..= 62). There, with `prod = acc·m = hi·2^32 + lo`
/// (0 ≤ lo < 2^32) and t = total − 32 ≥ 1,
/// ⌊(prod + 2^(total−1)) / 2^total⌋ = ⌊(hi + 2^(t−1) + lo/2^32) / 2^t⌋
/// = ⌊(hi + 2^(t−1)) / 2^t⌋ (adding less than one to an integer never crosses a
/// multiple of 2^t); |prod| < 2^62 keeps |hi| < 2^30, so nothing overflows, and
/// the i32 saturation never engages, so clamping the rounded value to
/// `0 ..= 127 − zp` is the same as the saturating add and the clamp; and
/// ⌊(hi + 2^(t−1)) / 2^t⌋ = ⌊(⌊hi / 2^(t−1)⌋ + 1) / 2⌋ = ⌊(⌊hi₂ / 2^t⌋ + 1) / 2⌋
/// with hi₂ = ⌊acc·2m / 2^32⌋ (⌊⌊a/2⌋/2^(t−1)⌋ = ⌊a/2^t⌋). `2m` is `real`'s
/// 24-bit significand at the top of a word, `(bits | 2^23) << 8`; read as i32
/// that is `2m − 2^32`, so hi₂ = ⌊acc·(2m − 2^32) / 2^32⌋ + acc, one `SMMLA`
/// (|hi₂| < 2^31: the sum wraps to the exact value), then the shift, an add
/// and the clamp. On the Cortex-M4F this and the masked form before it took
/// the demo int8 `log_prob`'s requantization (`Conditioner::int8_hidden`, 512
/// units) from 14,437 to 13,068 instructions (QEMU block profile).
#[inline]
pub(crate) fn requantize_relu(acc: i32, real: f32, zp: i32) -> i16 {
    let bits = real.to_bits();
    // k = e − 95 for the exponent field e (the sign bit too: a negative
    // `real` gives a huge k and takes the slow path); the fast path is
    // k < 30, and t = 30 − k = 125 − e, which the compiler then knows needs
    // no shift mask.
    let k = (bits >> 23).wrapping_sub(95);
    if k < 30 {
        let t = 30 - k;
        // The implicit bit ORed in before the shift: an immediate, no constant register.
        let m2 = ((bits | 0x0080_0000) << 8) as i32;
        let hi2 = ((i64::from(acc) * i64::from(m2)) >> 32) as i32;
        let hi2 = hi2.wrapping_add(acc);
        let r = ((hi2 >> t) + 1) >> 1;
        return r.max(0).min(127 - zp) as i16;
    }
    requantize_relu_wide(acc, real, zp)
}

/// [`requantize_relu`] from a unit's stored requantization word
/// (`crate::format::requant_words`): `t = word & 31` and `2m − 2^32 =
/// word & !0xFF` are read off the word instead of derived from the scale, then
/// the same `SMMLA`, shift, add and clamp. For `word = requant_words::word(real)`
/// it gives `requantize_relu(acc, real, zp)`'s bits (the fast path's `t` and `m2`
/// are exactly the word's fields). `Model::load` admits only words with the low
/// byte in 1 ..= 30 and bit 31 set; any other word still gives some value, never
/// a panic.
#[inline]
pub(crate) fn requantize_relu_word(acc: i32, word: i32, zp: i32) -> i16 {
    let t = (word & 31) as u32;
    let m2 = word & !0xFF;
    let hi2 = ((i64::from(acc) * i64::from(m2)) >> 32) as i32;
    let hi2 = hi2.wrapping_add(acc);
    let r = (hi2 >> t).wrapping_add(1) >> 1;
    r.max(0).min(127 - zp) as i16
}

/// [`requantize_relu`] outside the usual range, in i64; out of line so that the
/// fast path keeps its registers.
/// Clamping the rounded i64 value straight to `0 ..= 127 − zp` is the same as
/// [`requantize`]'s i32 saturation, the saturating add and the clamp: both
/// keep the sign and cap at 127 − zp ≤ 255. A total shift ≤ 0 scales a non-zero
/// `acc` by at least `m ≥ 2^30`, so only its sign matters.
#[cold]
#[inline(never)]
fn requantize_relu_wide(acc: i32, real: f32, zp: i32) -> i16 {
    let top = 127 - zp;
    let (m, sh) = multiplier(real);
    let total = 31 - sh;
    let r = if m == 0 || total > 62 {
        0
    } else if total > 0 {
        (i64::from(acc) * i64::from(m) + (1i64 << (total - 1))) >> total
    } else if acc > 0 {
        i64::from(top)
    } else {
        0
    };
    // max/min, not clamp: `clamp` asserts min ≤ max (a panic path for zp > 127).
    r.max(0).min(i64::from(top)) as i16
}

/// `round(acc · m · 2^(shift - 31))` with one rounding (half towards +∞),
/// saturated to i32.
#[inline]
pub fn requantize(acc: i32, m: i32, shift: i32) -> i32 {
    if m == 0 {
        return 0;
    }
    let prod = i64::from(acc) * i64::from(m);
    let total = 31 - shift;
    let r = if total > 62 {
        0
    } else if total > 0 {
        (prod + (1i64 << (total - 1))) >> total
    } else if total > -32 {
        // A multiplier ≥ 2^31: saturate instead of overflowing.
        prod.saturating_mul(1i64 << (-total))
    } else if prod == 0 {
        0
    } else if prod > 0 {
        i64::MAX
    } else {
        i64::MIN
    };
    r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests;
