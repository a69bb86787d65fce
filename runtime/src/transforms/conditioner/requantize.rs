//! Requantizing a hidden int8 dense's accumulators into the next dense's
//! centred int8 inputs, in the paired layout: from stored requantization words
//! or from bf16 scales and the layer's ratio.

use super::unit_ratio;
use crate::error::{Error, Result};
use crate::kernels::quant::{requantize_relu, requantize_relu_word};

/// Whether hidden units are requantized by one small loop for both forms
/// ([`requantize_compact`]) rather than one unrolled loop per form: on
/// bare-metal builds without `dsp` (Cortex-M0, RV32), where flash is the
/// tighter budget (the minimal program's 24 KiB).
pub(super) const COMPACT_REQUANTIZE: bool = cfg!(all(target_os = "none", not(feature = "dsp")));

/// Where a hidden dense's units take their requantization from.
#[derive(Clone, Copy)]
pub(super) enum Units<'a> {
    /// Stored requantization words.
    Words(&'a [i32]),
    /// bf16 scales and the layer's ratio.
    Scales(&'a [u16], f32),
}

/// [`requantize_paired`] for either form in one loop, one unit at a time.
pub(super) fn requantize_compact(acc: &[i32], units: Units<'_>, y: &mut [i16], zp: i32) -> Result<()> {
    let n = y.len();
    if acc.len() != n {
        return Err(Error::Internal);
    }
    for (i, &v) in acc.iter().enumerate() {
        let q = match units {
            Units::Words(r) => requantize_relu_word(v, *r.get(i).ok_or(Error::Internal)?, zp),
            Units::Scales(s, ratio) => requantize_relu(v, unit_ratio(*s.get(i).ok_or(Error::Internal)?, ratio), zp),
        };
        *y.get_mut(crate::format::row_pairs::paired_index(i, n)).ok_or(Error::Internal)? = q;
    }
    Ok(())
}

/// A hidden dense's units requantized from stored words. Out of line, as
/// [`requantize_scales`] is: each keeps its own registers, and the stack of
/// `int8_hidden`'s callers only ever holds one of their frames.
#[inline(never)]
pub(super) fn requantize_words(acc: &[i32], r: &[i32], y: &mut [i16], zp: i32) -> Result<()> {
    requantize_paired(acc, r, y, |v, &word| requantize_relu_word(v, word, zp))
}

/// A hidden dense's units requantized from their scales and the layer's ratio.
#[inline(never)]
pub(super) fn requantize_scales(acc: &[i32], s: &[u16], ratio: f32, y: &mut [i16], zp: i32) -> Result<()> {
    requantize_paired(acc, s, y, |v, &sc| requantize_relu(v, unit_ratio(sc, ratio), zp))
}

/// `y_i = rq(acc_i, unit_i)` for a hidden dense, written straight into the
/// paired layout (see `paired_index`): each whole group of four as elements 0,
/// 2, 1, 3, the rest in order.
#[inline(always)]
fn requantize_paired<U>(acc: &[i32], units: &[U], y: &mut [i16], rq: impl Fn(i32, &U) -> i16) -> Result<()> {
    let n = y.len();
    if acc.len() != n || units.len() != n {
        return Err(Error::Internal);
    }
    let full = n - n % 4;
    let (y4, yr) = y.split_at_mut(full);
    let (a4, ar) = acc.split_at(full);
    let (u4, ur) = units.split_at(full);
    for ((yc, ac), uc) in y4.chunks_exact_mut(4).zip(a4.chunks_exact(4)).zip(u4.chunks_exact(4)) {
        if let ([y0, y1, y2, y3], [a0, a1, a2, a3], [u0, u1, u2, u3]) = (yc, ac, uc) {
            *y0 = rq(*a0, u0);
            *y1 = rq(*a2, u2);
            *y2 = rq(*a1, u1);
            *y3 = rq(*a3, u3);
        }
    }
    for ((yi, &v), u) in yr.iter_mut().zip(ar).zip(ur) {
        *yi = rq(v, u);
    }
    Ok(())
}
