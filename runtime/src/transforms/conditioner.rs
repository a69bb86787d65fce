//! MLP conditioners: plain or residual (as in NSF), with the context appended to
//! the input; f32, weight-only int8 ("w8") or fully int8.
//!
//! A conditioner is a chain of dense layers ("denses"): plain with `L` hidden
//! layers has `L + 1` (`in→H`, `L−1 × H→H`, `H→out`); residual with `R` blocks has
//! `2R + 2` (`in→H`, per block `H→H`, `H→H`, then `H→out`). Tensors, in order:
//! - f32: per dense `W (rows x cols, f32)`, `b (rows, f32)`.
//! - w8: per dense `W (rows x cols, i8)`, `s (rows, bf16)`, `b (rows, f32)`.
//! - int8 (plain only, ReLU): `A ((L + 2) x 2, f32)` — input quantization
//!   `(1/s_0, zp_0)`, per hidden dense `(s_in/s_out, zp_out)`, last `(s_L, 0)` —
//!   then per dense `W (i8)`, `s (bf16)`, `B (rows, i32)`.
//!
//! Evaluation: plain `h = act(W0 x + b0)`, `h = act(W h + b)`, `out = Wf h + bf`;
//! residual `h = W0 x + b0`; per block `h += W2 act(W1 act(h) + b1) + b2`;
//! `out = Wf h + bf`. See docs/FORMAT.md for the int8 arithmetic.

use crate::error::{Error, Result};
use crate::format::{bf16_to_f32, Activation, DType, LayerRecord, Precision, View, MAX_BLOCKS, MAX_DIM};
use crate::kernels::quant::{dense_i8, dense_i8_pairs, dense_w8, quantize};
use crate::kernels::{activate, dense_f32, dense_f32_lanes, dense_f32_lanes_relu, take, LANES};

mod checks;
mod int8_lanes;
mod requantize;
#[cfg(test)]
mod tests;

use requantize::{requantize_compact, requantize_scales, requantize_words, Units, COMPACT_REQUANTIZE};

/// Whether this build reads int8 weights in the row-pair layout (the
/// `row-pairs` feature; `dsp` implies it).
pub(crate) const ROW_PAIRS: bool = cfg!(feature = "row-pairs");

/// Shape of a conditioner, derived from its layer record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MlpShape {
    pub n_in: usize,
    pub n_out: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub residual: bool,
    pub act: Activation,
    pub precision: Precision,
    /// int8 weights in the row-pair layout (`crate::format::row_pairs`).
    pub row_pairs: bool,
    /// int8 hidden denses with stored requantization words
    /// (`crate::format::requant_words`) in place of bf16 scales.
    pub words: bool,
}

/// Words of f32 scratch that hold `n` i16 values.
const fn i16_words(n: usize) -> usize {
    n.div_ceil(2)
}

impl MlpShape {
    pub(crate) fn new(rec: &LayerRecord, n_in: usize, n_out: usize) -> MlpShape {
        MlpShape {
            n_in,
            n_out,
            hidden: rec.hidden as usize,
            blocks: rec.blocks as usize,
            residual: rec.residual(),
            act: rec.activation,
            // Both quantization flags set is rejected at load (`record_ok`).
            precision: rec.precision().unwrap_or(Precision::Int8),
            row_pairs: ROW_PAIRS && rec.row_pairs(),
            words: rec.requant_words(),
        }
    }

    /// Whether the record's conditioner fields are valid: at most one
    /// quantization, int8 only for plain ReLU conditioners, a width, an
    /// activation and a depth in range.
    pub(crate) fn record_ok(&self, rec: &LayerRecord) -> bool {
        checks::flags_ok(rec, ROW_PAIRS)
            && self.hidden >= 1
            && self.hidden <= MAX_DIM
            && rec.activation != Activation::None
            && (self.residual || self.blocks >= 1)
            && self.blocks <= MAX_BLOCKS
    }

    /// Number of dense layers.
    pub(crate) fn n_dense(&self) -> usize {
        if self.residual {
            2 + 2 * self.blocks
        } else {
            1 + self.blocks
        }
    }

    /// `(rows, cols)` of dense `d`.
    pub(crate) fn dense_shape(&self, d: usize) -> (usize, usize) {
        let rows = if d + 1 == self.n_dense() { self.n_out } else { self.hidden };
        let cols = if d == 0 { self.n_in } else { self.hidden };
        (rows, cols)
    }

    /// Tensors per dense layer and tensors before the first dense.
    fn layout(&self) -> (usize, usize) {
        match self.precision {
            Precision::F32 => (2, 0),
            Precision::W8 => (3, 0),
            Precision::Int8 => (3, 1),
        }
    }

    /// Number of tensors the conditioner owns.
    pub(crate) fn n_tensors(&self) -> usize {
        let (per, lead) = self.layout();
        lead + per * self.n_dense()
    }

    /// Index (within the conditioner) of the weight matrix of dense `d`.
    pub(crate) fn weight_index(&self, d: usize) -> usize {
        let (per, lead) = self.layout();
        lead + per * d
    }

    /// `(rows, cols, dtype)` of tensor `j` of the conditioner.
    pub(crate) fn tensor_spec(&self, j: usize) -> (usize, usize, DType) {
        let (per, lead) = self.layout();
        if j < lead {
            return (self.blocks + 2, 2, DType::F32);
        }
        let (d, k) = ((j - lead) / per, (j - lead) % per);
        let hidden = d + 1 < self.n_dense();
        let rows = if hidden { self.hidden } else { self.n_out };
        let cols = if d == 0 { self.n_in } else { self.hidden };
        match (self.precision, k) {
            (Precision::F32, 0) => (rows, cols, DType::F32),
            (Precision::F32, _) => (rows, 1, DType::F32),
            (_, 0) => (rows, cols, DType::I8),
            (Precision::Int8, 1) if self.words && hidden => (rows, 1, DType::I32),
            (_, 1) => (rows, 1, DType::BF16),
            (Precision::W8, _) => (rows, 1, DType::F32),
            (_, _) => (rows, 1, DType::I32),
        }
    }

    /// `f32` words of work space for [`Conditioner::eval`].
    pub(crate) fn work_len(&self) -> usize {
        match (self.precision, self.residual) {
            (Precision::Int8, _) => i16_words(self.n_in) + 2 * i16_words(self.hidden) + self.hidden.max(self.n_out),
            (_, true) => 3 * self.hidden,
            (_, false) => 2 * self.hidden,
        }
    }
}

/// The weights of one dense of a conditioner.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Weights<'a> {
    /// f32 weights.
    F32(&'a [f32]),
    /// int8 weights (w8 and int8 conditioners), row-major.
    I8(&'a [i8]),
}

/// A conditioner bound to its file: its shape and where its tensors start.
/// Tensors are read (bounds-checked) as each dense needs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conditioner<'v, 'a> {
    view: &'v View<'a>,
    first: u32,
    shape: MlpShape,
}

impl<'v, 'a> Conditioner<'v, 'a> {
    /// The conditioner whose tensors start at `first`.
    pub(crate) fn new(view: &'v View<'a>, first: u32, shape: MlpShape) -> Conditioner<'v, 'a> {
        Conditioner { view, first, shape }
    }

    /// Its shape.
    pub(crate) fn shape(&self) -> &MlpShape {
        &self.shape
    }

    /// Index in the file of tensor `j` of the conditioner.
    fn tensor(&self, j: usize) -> u32 {
        self.first + j as u32
    }

    /// The weight matrix of dense `d`.
    pub(crate) fn weights(&self, d: usize) -> Result<Weights<'a>> {
        let t = self.tensor(self.shape.weight_index(d));
        match self.shape.precision {
            Precision::F32 => self.view.f32s(t).map(Weights::F32),
            // Row pairs: not a row-major matrix (MADE layers, the one reader,
            // never have them).
            Precision::Int8 if ROW_PAIRS && self.shape.row_pairs => Err(Error::Internal),
            Precision::W8 | Precision::Int8 => self.view.i8s(t).map(Weights::I8),
        }
    }

    /// One dense layer `y = W x + b`, f32 or w8.
    fn dense(&self, d: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
        let t = self.tensor(self.shape.weight_index(d));
        let v = self.view;
        match self.shape.precision {
            Precision::F32 => dense_f32(v.f32s(t)?, v.f32s(t + 1)?, x, y),
            Precision::W8 => dense_w8(v.i8s(t)?, v.u16s(t + 1)?, v.f32s(t + 2)?, x, y),
            Precision::Int8 => Err(Error::Internal),
        }
    }

    /// Whether [`Conditioner::eval_lanes`] can run it (f32 or int8 weights;
    /// w8 runs row by row).
    pub(crate) fn has_lanes(&self) -> bool {
        matches!(self.shape.precision, Precision::F32 | Precision::Int8)
    }

    /// `f32` words of work space for [`Conditioner::eval_lanes`].
    pub(crate) fn lanes_work_len(&self) -> usize {
        let shape = &self.shape;
        if shape.precision == Precision::Int8 {
            return int8_lanes::work_len(shape.n_in, shape.hidden, shape.n_out);
        }
        (if shape.residual { 3 } else { 2 }) * shape.hidden * LANES
    }

    /// [`Conditioner::eval`] on [`LANES`] inputs at once (f32 and int8 conditioners):
    /// `input` holds `n_in × LANES` values, input `j` of lane `l` at
    /// `j·LANES + l`; `out` gets `n_out × LANES` the same way. Every lane goes
    /// through the one-row sequence of operations (see
    /// [`crate::kernels::dense_f32_lanes`]), so each gets the bits `eval` gives.
    pub(crate) fn eval_lanes(&self, input: &[f32], out: &mut [f32], mut work: &mut [f32]) -> Result<()> {
        let shape = &self.shape;
        if input.len() != shape.n_in * LANES || out.len() != shape.n_out * LANES {
            return Err(Error::Internal);
        }
        match shape.precision {
            Precision::F32 => {}
            Precision::Int8 => return self.int8_eval_lanes(input, out, work),
            _ => return Err(Error::Internal),
        }
        let hdim = shape.hidden * LANES;
        let h = take(&mut work, hdim)?;
        let t1 = take(&mut work, hdim)?;
        let last = shape.n_dense() - 1;
        let dense = |d: usize, x: &[f32], y: &mut [f32]| -> Result<()> {
            let t = self.tensor(shape.weight_index(d));
            dense_f32_lanes(self.view.f32s(t)?, self.view.f32s(t + 1)?, x, y)
        };
        // A hidden layer and its activation; a ReLU in the dense pass itself.
        let hidden = |d: usize, x: &[f32], y: &mut [f32]| -> Result<()> {
            if shape.act == Activation::Relu {
                let t = self.tensor(shape.weight_index(d));
                return dense_f32_lanes_relu(self.view.f32s(t)?, self.view.f32s(t + 1)?, x, y);
            }
            dense(d, x, y)?;
            activate(shape.act, y);
            Ok(())
        };
        if shape.residual {
            let t2 = take(&mut work, hdim)?;
            dense(0, input, h)?;
            for blk in 0..shape.blocks {
                t1.copy_from_slice(h);
                activate(shape.act, t1);
                dense(1 + 2 * blk, t1, t2)?;
                activate(shape.act, t2);
                dense(2 + 2 * blk, t2, t1)?;
                for (hi, ti) in h.iter_mut().zip(t1.iter()) {
                    *hi += *ti;
                }
            }
            dense(last, h, out)
        } else {
            hidden(0, input, h)?;
            let (mut cur, mut nxt) = (h, t1);
            for l in 1..last {
                hidden(l, cur, nxt)?;
                core::mem::swap(&mut cur, &mut nxt);
            }
            dense(last, cur, out)
        }
    }

    /// Evaluate on `input`, writing `out`. `work` must hold [`MlpShape::work_len`] values.
    pub(crate) fn eval(&self, input: &[f32], out: &mut [f32], work: &mut [f32]) -> Result<()> {
        let shape = &self.shape;
        if shape.n_in != input.len() || shape.n_out != out.len() {
            return Err(Error::Internal);
        }
        if shape.precision == Precision::Int8 {
            self.int8_eval(input, out, work)
        } else {
            self.float_eval(input, out, work)
        }
    }

    /// [`Conditioner::eval`] with f32 activations (f32 or w8 weights). Out of
    /// line, like [`Conditioner::int8_eval`]: each path's stack frame is then
    /// only on its own calls' stack (the 1,200-byte bounds of `log_prob` and
    /// `sample` hold with the Cortex-M4F's four-row int8 kernel under them).
    #[inline(never)]
    fn float_eval(&self, input: &[f32], out: &mut [f32], mut work: &mut [f32]) -> Result<()> {
        let shape = &self.shape;
        let hdim = shape.hidden;
        let h = take(&mut work, hdim)?;
        let t1 = take(&mut work, hdim)?;
        let last = shape.n_dense() - 1;
        if shape.residual {
            let t2 = take(&mut work, hdim)?;
            self.dense(0, input, h)?;
            for blk in 0..shape.blocks {
                t1.copy_from_slice(h);
                activate(shape.act, t1);
                self.dense(1 + 2 * blk, t1, t2)?;
                activate(shape.act, t2);
                self.dense(2 + 2 * blk, t2, t1)?;
                for (hi, ti) in h.iter_mut().zip(t1.iter()) {
                    *hi += *ti;
                }
            }
            self.dense(last, h, out)
        } else {
            self.dense(0, input, h)?;
            activate(shape.act, h);
            let (mut cur, mut nxt) = (h, t1);
            for l in 1..last {
                self.dense(l, cur, nxt)?;
                activate(shape.act, nxt);
                core::mem::swap(&mut cur, &mut nxt);
            }
            self.dense(last, cur, out)
        }
    }

    /// `acc = B + W x` of an int8 dense, in the conditioner's weight layout.
    fn dense_int8(&self, w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> Result<()> {
        if ROW_PAIRS && self.shape.row_pairs {
            dense_i8_pairs(w, b, x, acc)
        } else {
            dense_i8(w, b, x, acc)
        }
    }

    /// `(W, s, B)` of dense `d` of an int8 conditioner (`s`: bf16 scales).
    fn int8_dense(&self, d: usize) -> Result<(&'a [i8], &'a [u16], &'a [i32])> {
        let t = self.tensor(self.shape.weight_index(d));
        Ok((self.view.i8s(t)?, self.view.u16s(t + 1)?, self.view.i32s(t + 2)?))
    }

    /// `(W, R, B)` of hidden dense `d` of an int8 conditioner with stored
    /// requantization words `R`.
    fn int8_dense_words(&self, d: usize) -> Result<(&'a [i8], &'a [i32], &'a [i32])> {
        let t = self.tensor(self.shape.weight_index(d));
        Ok((self.view.i8s(t)?, self.view.i32s(t + 1)?, self.view.i32s(t + 2)?))
    }

    /// One hidden dense of the int8 conditioner: `y = relu(requantize(W x + B))`,
    /// centred on the output zero point, with `(ratio, zp)` from row `d + 1` of
    /// the table `a`; each unit's multiplier read from its stored word, or
    /// derived from its scale and `ratio`.
    fn int8_hidden(&self, a: &[f32], d: usize, x: &[i16], y: &mut [i16], acc: &mut [i32]) -> Result<()> {
        let (ratio, zp) = row(a, d + 1)?;
        let t = self.tensor(self.shape.weight_index(d));
        self.dense_int8(self.view.i8s(t)?, self.view.i32s(t + 2)?, x, acc)?;
        let units = if self.shape.words {
            Units::Words(self.view.i32s(t + 1)?)
        } else {
            Units::Scales(self.view.u16s(t + 1)?, ratio)
        };
        if COMPACT_REQUANTIZE {
            return requantize_compact(acc, units, y, zp);
        }
        match units {
            Units::Words(r) => requantize_words(acc, r, y, zp),
            Units::Scales(s, ratio) => requantize_scales(acc, s, ratio, y, zp),
        }
    }

    /// The fully int8 conditioner (plain, ReLU).
    #[inline(never)]
    fn int8_eval(&self, input: &[f32], out: &mut [f32], mut work: &mut [f32]) -> Result<()> {
        let shape = &self.shape;
        let a = self.view.f32s(self.first)?;
        let q_in = take_i16(&mut work, shape.n_in)?;
        let mut cur = take_i16(&mut work, shape.hidden)?;
        let mut nxt = take_i16(&mut work, shape.hidden)?;
        let acc_words = take(&mut work, shape.hidden.max(shape.n_out))?;
        let acc_all: &mut [i32] = bytemuck::cast_slice_mut(acc_words);
        let (inv_s0, zp0) = row(a, 0)?;
        quantize(input, inv_s0, zp0, q_in)?;
        let last = shape.n_dense() - 1;
        let acc = acc_all.get_mut(..shape.hidden).ok_or(Error::Internal)?;
        self.int8_hidden(a, 0, q_in, cur, acc)?;
        for d in 1..last {
            self.int8_hidden(a, d, cur, nxt, acc)?;
            core::mem::swap(&mut cur, &mut nxt);
        }
        let (w, s, b) = self.int8_dense(last)?;
        let acc = acc_all.get_mut(..shape.n_out).ok_or(Error::Internal)?;
        self.dense_int8(w, b, cur, acc)?;
        let (s_in, _) = row(a, last + 1)?;
        for ((o, &v), &sc) in out.iter_mut().zip(acc.iter()).zip(s) {
            *o = dequantize(v, sc, s_in);
        }
        Ok(())
    }
}

/// Carve `n` i16 values out of f32 scratch.
fn take_i16<'s>(work: &mut &'s mut [f32], n: usize) -> Result<&'s mut [i16]> {
    let words = take(work, i16_words(n))?;
    let v: &mut [i16] = bytemuck::cast_slice_mut(words);
    v.get_mut(..n).ok_or(Error::Internal)
}

/// `(value, zero point)` row `r` of the int8 table `a`.
fn row(a: &[f32], r: usize) -> Result<(f32, i32)> {
    match a.get(2 * r..2 * r + 2) {
        Some([v, zp]) => Ok((*v, *zp as i32)),
        _ => Err(Error::Internal),
    }
}

/// A hidden int8 unit's requantization ratio: its weights' bf16 scale times
/// the layer's `ratio` (input scale / output scale), in f32. One definition for
/// the single-row and the lane paths, so both requantize with the same bits.
#[inline(always)]
fn unit_ratio(sc: u16, ratio: f32) -> f32 {
    bf16_to_f32(sc) * ratio
}

/// An output int8 unit's value: its exact sum times its weights' bf16 scale,
/// then times the input scale `s_in`, in f32 (both paths, as [`unit_ratio`]).
#[inline(always)]
fn dequantize(v: i32, sc: u16, s_in: f32) -> f32 {
    (v as f32 * bf16_to_f32(sc)) * s_in
}

/// Largest |bias| of an int8 dense: keeps `b + Σ w·x` inside i32 (see `dense_i8`).
const MAX_I32_BIAS: i32 = 1 << 30;
