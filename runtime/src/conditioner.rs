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
use crate::format::{bf16_to_f32, Activation, DType, LayerRecord, FLAG_INT8, FLAG_RESIDUAL, FLAG_W8};
use crate::kernels::quant::{dense_i8, dense_w8, multiplier, paired_index, quantize, requantize};
use crate::kernels::{activate, dense_f32, take};
use crate::model::Core;

/// How a conditioner's numbers are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quant {
    F32,
    W8,
    Int8,
}

/// Shape of a conditioner, derived from its layer record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MlpShape {
    pub n_in: usize,
    pub n_out: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub residual: bool,
    pub act: Activation,
    pub quant: Quant,
}

/// Words of f32 scratch that hold `n` i16 values.
const fn i16_words(n: usize) -> usize {
    n.div_ceil(2)
}

impl MlpShape {
    pub(crate) fn new(rec: &LayerRecord, n_in: usize, n_out: usize) -> MlpShape {
        let quant = if rec.flags & FLAG_INT8 != 0 {
            Quant::Int8
        } else if rec.flags & FLAG_W8 != 0 {
            Quant::W8
        } else {
            Quant::F32
        };
        MlpShape {
            n_in,
            n_out,
            hidden: rec.hidden as usize,
            blocks: rec.blocks as usize,
            residual: rec.flags & FLAG_RESIDUAL != 0,
            act: rec.activation,
            quant,
        }
    }

    /// Flags the record may carry: at most one quantization, int8 only for plain
    /// ReLU conditioners.
    pub(crate) fn flags_ok(rec: &LayerRecord) -> bool {
        let w8 = rec.flags & FLAG_W8 != 0;
        let int8 = rec.flags & FLAG_INT8 != 0;
        if w8 && int8 {
            return false;
        }
        !int8 || (rec.flags & FLAG_RESIDUAL == 0 && rec.activation == Activation::Relu)
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
        match self.quant {
            Quant::F32 => (2, 0),
            Quant::W8 => (3, 0),
            Quant::Int8 => (3, 1),
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
        let (rows, cols) = self.dense_shape(d);
        match (self.quant, k) {
            (Quant::F32, 0) => (rows, cols, DType::F32),
            (Quant::F32, _) => (rows, 1, DType::F32),
            (_, 0) => (rows, cols, DType::I8),
            (_, 1) => (rows, 1, DType::BF16),
            (Quant::W8, _) => (rows, 1, DType::F32),
            (_, _) => (rows, 1, DType::I32),
        }
    }

    /// `f32` words of work space for [`mlp_eval`].
    pub(crate) fn work_len(&self) -> usize {
        match (self.quant, self.residual) {
            (Quant::Int8, _) => i16_words(self.n_in) + 2 * i16_words(self.hidden) + self.hidden.max(self.n_out),
            (_, true) => 3 * self.hidden,
            (_, false) => 2 * self.hidden,
        }
    }
}

/// One dense layer `y = W x + b` of a conditioner, f32 or w8.
fn dense(core: &Core<'_>, shape: &MlpShape, first: u32, d: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    let t = first + shape.weight_index(d) as u32;
    match shape.quant {
        Quant::F32 => dense_f32(core.f32_tensor(t)?, core.f32_tensor(t + 1)?, x, y),
        Quant::W8 => dense_w8(core.i8_tensor(t)?, core.u16_tensor(t + 1)?, core.f32_tensor(t + 2)?, x, y),
        Quant::Int8 => Err(Error::Internal),
    }
}

/// Evaluate the conditioner whose tensors start at `first` on `input`, writing
/// `out`. `work` must hold [`MlpShape::work_len`] values.
pub(crate) fn mlp_eval(
    core: &Core<'_>,
    shape: &MlpShape,
    first: u32,
    input: &[f32],
    out: &mut [f32],
    mut work: &mut [f32],
) -> Result<()> {
    if shape.n_in != input.len() || shape.n_out != out.len() {
        return Err(Error::Internal);
    }
    if shape.quant == Quant::Int8 {
        return int8_eval(core, shape, first, input, out, work);
    }
    let hdim = shape.hidden;
    let h = take(&mut work, hdim)?;
    let t1 = take(&mut work, hdim)?;
    let last = shape.n_dense() - 1;
    if shape.residual {
        let t2 = take(&mut work, hdim)?;
        dense(core, shape, first, 0, input, h)?;
        for blk in 0..shape.blocks {
            t1.copy_from_slice(h);
            activate(shape.act, t1);
            dense(core, shape, first, 1 + 2 * blk, t1, t2)?;
            activate(shape.act, t2);
            dense(core, shape, first, 2 + 2 * blk, t2, t1)?;
            for (hi, ti) in h.iter_mut().zip(t1.iter()) {
                *hi += *ti;
            }
        }
        dense(core, shape, first, last, h, out)
    } else {
        dense(core, shape, first, 0, input, h)?;
        activate(shape.act, h);
        let (mut cur, mut nxt) = (h, t1);
        for l in 1..last {
            dense(core, shape, first, l, cur, nxt)?;
            activate(shape.act, nxt);
            core::mem::swap(&mut cur, &mut nxt);
        }
        dense(core, shape, first, last, cur, out)
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

/// One hidden dense of the int8 conditioner: `y = relu(requantize(W x + B))`,
/// centred on the output zero point.
#[allow(clippy::too_many_arguments)]
fn int8_hidden(
    core: &Core<'_>,
    shape: &MlpShape,
    first: u32,
    a: &[f32],
    d: usize,
    x: &[i16],
    y: &mut [i16],
    acc: &mut [i32],
) -> Result<()> {
    let t = first + shape.weight_index(d) as u32;
    let (w, s, b) = (core.i8_tensor(t)?, core.u16_tensor(t + 1)?, core.i32_tensor(t + 2)?);
    dense_i8(w, b, x, acc)?;
    let (ratio, zp) = row(a, d + 1)?;
    let n = y.len();
    for (i, (&v, &sc)) in acc.iter().zip(s).enumerate() {
        let (m, sh) = multiplier(bf16_to_f32(sc) * ratio);
        // ReLU is the clamp at the zero point.
        let q = requantize(v, m, sh).saturating_add(zp).clamp(zp, 127);
        *y.get_mut(paired_index(i, n)).ok_or(Error::Internal)? = (q - zp) as i16;
    }
    Ok(())
}

/// The fully int8 conditioner (plain, ReLU).
fn int8_eval(
    core: &Core<'_>,
    shape: &MlpShape,
    first: u32,
    input: &[f32],
    out: &mut [f32],
    mut work: &mut [f32],
) -> Result<()> {
    let a = core.f32_tensor(first)?;
    let q_in = take_i16(&mut work, shape.n_in)?;
    let mut cur = take_i16(&mut work, shape.hidden)?;
    let mut nxt = take_i16(&mut work, shape.hidden)?;
    let acc_words = take(&mut work, shape.hidden.max(shape.n_out))?;
    let acc_all: &mut [i32] = bytemuck::cast_slice_mut(acc_words);
    let (inv_s0, zp0) = row(a, 0)?;
    quantize(input, inv_s0, zp0, q_in)?;
    let last = shape.n_dense() - 1;
    let acc = acc_all.get_mut(..shape.hidden).ok_or(Error::Internal)?;
    int8_hidden(core, shape, first, a, 0, q_in, cur, acc)?;
    for d in 1..last {
        int8_hidden(core, shape, first, a, d, cur, nxt, acc)?;
        core::mem::swap(&mut cur, &mut nxt);
    }
    let t = first + shape.weight_index(last) as u32;
    let (w, s, b) = (core.i8_tensor(t)?, core.u16_tensor(t + 1)?, core.i32_tensor(t + 2)?);
    let acc = acc_all.get_mut(..shape.n_out).ok_or(Error::Internal)?;
    dense_i8(w, b, cur, acc)?;
    let (s_in, _) = row(a, last + 1)?;
    for ((o, &v), &sc) in out.iter_mut().zip(acc.iter()).zip(s) {
        *o = (v as f32 * bf16_to_f32(sc)) * s_in;
    }
    Ok(())
}

/// Largest |bias| of an int8 dense: keeps `b + Σ w·x` inside i32 (see `dense_i8`).
const MAX_I32_BIAS: i32 = 1 << 30;

/// Load-time checks of a quantized conditioner's values: symmetric int8 weights
/// (no -128), non-negative scales, biases within ±2^30, and an int8 table of
/// positive finite scales with integral zero points in -128 ..= 127.
pub(crate) fn check_quant(core: &Core<'_>, shape: &MlpShape, first: u32) -> Result<bool> {
    if shape.quant == Quant::F32 {
        return Ok(true);
    }
    for d in 0..shape.n_dense() {
        let t = first + shape.weight_index(d) as u32;
        if core.i8_tensor(t)?.contains(&i8::MIN) {
            return Ok(false);
        }
        if !core.u16_tensor(t + 1)?.iter().all(|&v| bf16_to_f32(v) >= 0.0) {
            return Ok(false);
        }
        if shape.quant == Quant::Int8
            && !core.i32_tensor(t + 2)?.iter().all(|b| b.unsigned_abs() <= MAX_I32_BIAS as u32)
        {
            return Ok(false);
        }
    }
    if shape.quant == Quant::Int8 {
        let a = core.f32_tensor(first)?;
        let last = shape.n_dense();
        for r in 0..=last {
            let (v, zp) = match a.get(2 * r..2 * r + 2) {
                Some([v, zp]) => (*v, *zp),
                _ => return Ok(false),
            };
            let zp_ok = if r == last { zp == 0.0 } else { zp == libm::roundf(zp) && (-128.0..=127.0).contains(&zp) };
            if !(v > 0.0 && v.is_finite() && zp_ok) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// An optional observer of conditioner evaluations: `(layer, input, output)`.
pub(crate) struct Tracer<'t> {
    pub(crate) f: Option<&'t mut crate::model::Trace<'t>>,
    pub(crate) layer: u16,
}

impl Tracer<'_> {
    /// Report one evaluation of the current layer's conditioner (the observer may
    /// rewrite `output`).
    pub(crate) fn emit(&mut self, input: &[f32], output: &mut [f32]) {
        if let Some(f) = self.f.as_mut() {
            f(self.layer, input, output);
        }
    }
}
