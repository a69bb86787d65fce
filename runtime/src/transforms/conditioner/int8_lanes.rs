//! The int8 conditioner on [`LANES`] rows at once ([`Conditioner::eval_lanes`]).

use super::{dequantize, i16_words, row, take_i16, unit_ratio, Conditioner};
use crate::error::{Error, Result};
use crate::kernels::quant::{
    dense_i8_lanes, dense_i8_lanes_pairs, quantize_value, requantize_relu, requantize_relu_word,
};
use crate::kernels::{take, LANES};

/// `f32` words of work space [`Conditioner::int8_eval_lanes`] needs.
pub(super) fn work_len(n_in: usize, hidden: usize, n_out: usize) -> usize {
    i16_words(n_in * LANES) + 2 * i16_words(hidden * LANES) + hidden.max(n_out) * LANES
}

impl Conditioner<'_, '_> {
    /// `acc = B + W x` of an int8 dense on [`LANES`] inputs, in the
    /// conditioner's weight layout.
    fn dense_int8_lanes(&self, w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
        if super::ROW_PAIRS && self.shape.row_pairs {
            dense_i8_lanes_pairs(w, b, x, acc)
        } else {
            dense_i8_lanes(w, b, x, acc)
        }
    }

    /// [`Conditioner::int8_eval`] on [`LANES`] inputs at once, in the layout of
    /// [`Conditioner::eval_lanes`]: every value quantized, summed (exact
    /// integers), requantized and dequantized by the single-row functions, so
    /// each lane gets the bits `eval` gives.
    pub(super) fn int8_eval_lanes(&self, input: &[f32], out: &mut [f32], mut work: &mut [f32]) -> Result<()> {
        let shape = &self.shape;
        let a = self.view.f32s(self.first)?;
        let q_in = take_i16(&mut work, shape.n_in * LANES)?;
        let mut cur = take_i16(&mut work, shape.hidden * LANES)?;
        let mut nxt = take_i16(&mut work, shape.hidden * LANES)?;
        let acc_words = take(&mut work, shape.hidden.max(shape.n_out) * LANES)?;
        let acc_all: &mut [i32] = bytemuck::cast_slice_mut(acc_words);
        let (inv_s0, zp0) = row(a, 0)?;
        for (q, &v) in q_in.iter_mut().zip(input) {
            *q = quantize_value(v, inv_s0, zp0);
        }
        let last = shape.n_dense() - 1;
        for d in 0..last {
            let acc = acc_all.get_mut(..shape.hidden * LANES).ok_or(Error::Internal)?;
            let x = if d == 0 { &*q_in } else { &*cur };
            let (ratio, zp) = row(a, d + 1)?;
            if shape.words {
                let (w, r, b) = self.int8_dense_words(d)?;
                self.dense_int8_lanes(w, b, x, acc)?;
                for ((ys, accs), &word) in nxt.chunks_exact_mut(LANES).zip(acc.chunks_exact(LANES)).zip(r) {
                    for (y, &v) in ys.iter_mut().zip(accs) {
                        *y = requantize_relu_word(v, word, zp);
                    }
                }
            } else {
                let (w, s, b) = self.int8_dense(d)?;
                self.dense_int8_lanes(w, b, x, acc)?;
                for ((ys, accs), &sc) in nxt.chunks_exact_mut(LANES).zip(acc.chunks_exact(LANES)).zip(s) {
                    let real = unit_ratio(sc, ratio);
                    for (y, &v) in ys.iter_mut().zip(accs) {
                        *y = requantize_relu(v, real, zp);
                    }
                }
            }
            core::mem::swap(&mut cur, &mut nxt);
        }
        let (w, s, b) = self.int8_dense(last)?;
        let acc = acc_all.get_mut(..shape.n_out * LANES).ok_or(Error::Internal)?;
        self.dense_int8_lanes(w, b, cur, acc)?;
        let (s_in, _) = row(a, last + 1)?;
        for ((os, accs), &sc) in out.chunks_exact_mut(LANES).zip(acc.chunks_exact(LANES)).zip(s) {
            for (o, &v) in os.iter_mut().zip(accs) {
                *o = dequantize(v, sc, s_in);
            }
        }
        Ok(())
    }
}
