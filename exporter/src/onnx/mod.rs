//! `floe export onnx`: a model file's log-density (or its sampler) as an ONNX graph (opset 17),
//! for ONNX Runtime on servers, phones and browsers.
//!
//! The graph computes what `Model::log_prob` computes, from the same file:
//! inputs `x` `[N, D]` (and `context` `[N, C]` for a conditional model), output
//! `log_prob` `[N]` in nats. Every piece is written out with plain ONNX
//! operators: the standardization, each layer (LU linear as one matrix,
//! permutations as `Gather`, ActNorm, affine and rational-quadratic spline
//! couplings and MADE layers — the spline's bin search from comparisons and a
//! sum, its knots from `CumSum`, `GatherElements` for the bin's values), the
//! conditioners in f32, w8 (int8 weights times their scales) and int8 (the
//! runtime's integer pipeline: the input rounded half away from zero, dot
//! products exact in f32 below 2^24 then in int32, the Q31 requantization in
//! int64 with the runtime's multipliers), and the base density (normal,
//! diagonal normal, Student-t, mixtures diagonal or full by `ReduceLogSumExp`). A trajectory
//! file exports its first step's flow with the context the caller gives (as
//! `Model::log_prob` does). [`export_sampler`] writes the inverse instead
//! (base-space points in, data out: what `Model::inverse` computes). `cargo
//! xtask onnx` checks ONNX Runtime against the runtime on every bundled model,
//! both graphs.

mod base;
mod graph;
mod int8;
mod inverse;
mod spline;

use floe_runtime::exporter_hooks::tensor_record;
use floe_runtime::format::{Activation, DType, LayerKind, LayerRecord, Precision};
use floe_runtime::Model;
use onnx_protobuf::{Message, ModelProto};

use crate::error::{FloeError, Result};
use graph::{Attr, Graph};

pub use graph::OPSET;
pub use inverse::{export_sampler, export_sampler_bytes};

pub(super) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

fn unsupported(msg: String) -> FloeError {
    FloeError::Onnx(msg)
}

/// A tensor of the file, widened: f32 and bf16 as f32, i8, i32, u16.
pub(super) enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
    I32(Vec<i32>),
    U16(Vec<u16>),
}

struct Tensor {
    rows: usize,
    cols: usize,
    data: Data,
}

impl Tensor {
    fn f32(&self) -> Result<&[f32]> {
        match &self.data {
            Data::F32(v) => Ok(v),
            _ => Err(FloeError::Internal("ONNX export: expected an f32 tensor")),
        }
    }
}

/// The model and its file.
struct Source<'m> {
    model: &'m Model<'m>,
    bytes: &'m [u8],
}

impl Source<'_> {
    fn tensor(&self, i: u32) -> Result<Tensor> {
        let r = tensor_record(self.model, i)?;
        let (rows, cols) = (r.rows as usize, r.cols as usize);
        let n = rows * cols;
        let at = r.offset as usize;
        let raw = self.bytes.get(at..at + r.n_bytes()).ok_or(FloeError::Internal("ONNX export: tensor out of file"))?;
        let data = match r.dtype {
            DType::F32 => {
                Data::F32(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
            }
            DType::BF16 => Data::F32(
                raw.chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                    .collect(),
            ),
            DType::I8 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
            DType::I32 => {
                Data::I32(raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
            }
            DType::U16 => Data::U16(raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()),
        };
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::U16(v) => v.len(),
        };
        if len != n {
            return Err(FloeError::Internal("ONNX export: tensor length"));
        }
        Ok(Tensor { rows, cols, data })
    }
}

/// The graph being built, the model's sizes and the log-determinant so far.
pub(super) struct Builder<'m> {
    g: Graph,
    src: Source<'m>,
    d: usize,
    /// The standardized context, `[N, C]`.
    context: Option<String>,
    /// `[N]` log-determinant terms.
    ld_terms: Vec<String>,
    /// Constant log-determinant terms, summed in f64.
    ld_const: f64,
}

/// `[rows × cols]` row-major `w` as the `[cols, rows]` matrix `MatMul` multiplies by.
pub(super) fn transposed<T: Copy>(w: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| w[i * cols + j])).collect()
}

impl Builder<'_> {
    /// `x W^T + b` for an f32 dense, `(x W^T)·s + b` for a w8 one.
    fn dense(&mut self, x: &str, t: &[Tensor]) -> Result<String> {
        match t {
            [w, b] => {
                let wt = self.g.f32s("w", &[w.cols as i64, w.rows as i64], &transposed(w.f32()?, w.rows, w.cols));
                let bb = self.g.f32s("b", &[b.rows as i64], b.f32()?);
                let y = self.g.op("MatMul", &[x, &wt], &[]);
                Ok(self.g.add(&y, &bb))
            }
            [w, s, b] => {
                let Data::I8(wv) = &w.data else {
                    return Err(FloeError::Internal("ONNX export: w8 weights are not i8"));
                };
                let wf: Vec<f32> = wv.iter().map(|&v| f32::from(v)).collect();
                let wt = self.g.f32s("w", &[w.cols as i64, w.rows as i64], &transposed(&wf, w.rows, w.cols));
                let ss = self.g.f32s("s", &[s.rows as i64], s.f32()?);
                let bb = self.g.f32s("b", &[b.rows as i64], b.f32()?);
                let y = self.g.op("MatMul", &[x, &wt], &[]);
                let y = self.g.mul(&y, &ss);
                Ok(self.g.add(&y, &bb))
            }
            _ => Err(FloeError::Internal("ONNX export: a dense takes 2 or 3 tensors")),
        }
    }

    fn act(&mut self, a: Activation, x: &str) -> Result<String> {
        match a {
            Activation::Relu => Ok(self.g.unary("Relu", x)),
            Activation::Tanh => Ok(self.g.unary("Tanh", x)),
            Activation::None => Err(unsupported("a conditioner without an activation".into())),
        }
    }

    /// The conditioner of layer record `r` on `input` (`[N, n_in]`).
    pub(super) fn conditioner(&mut self, r: &LayerRecord, input: &str) -> Result<String> {
        let tensors: Vec<Tensor> =
            (r.first_tensor..r.first_tensor + r.n_tensors).map(|i| self.src.tensor(i)).collect::<Result<_>>()?;
        let precision = r.precision().ok_or(FloeError::Internal("ONNX export: precision flags"))?;
        if precision == Precision::Int8 {
            return self.int8_conditioner(r, &tensors, input);
        }
        let per = if precision == Precision::W8 { 3 } else { 2 };
        let denses: Vec<&[Tensor]> = tensors.chunks(per).collect();
        let blocks = usize::from(r.blocks);
        let expected = if r.residual() { 2 * blocks + 2 } else { blocks + 1 };
        if denses.len() != expected || tensors.len() != per * expected {
            return Err(FloeError::Internal("ONNX export: conditioner tensor count"));
        }
        let last = denses.len() - 1;
        if r.residual() {
            let mut h = self.dense(input, denses[0])?;
            for b in 0..blocks {
                let a = self.act(r.activation, &h)?;
                let t = self.dense(&a, denses[1 + 2 * b])?;
                let t = self.act(r.activation, &t)?;
                let t = self.dense(&t, denses[2 + 2 * b])?;
                h = self.g.add(&h, &t);
            }
            self.dense(&h, denses[last])
        } else {
            let mut h = input.to_owned();
            for dense in &denses[..last] {
                let y = self.dense(&h, dense)?;
                h = self.act(r.activation, &y)?;
            }
            self.dense(&h, denses[last])
        }
    }

    /// The conditioner's input: `[x_cond, context]`.
    pub(super) fn with_context(&mut self, x: &str) -> String {
        match self.context.clone() {
            Some(c) => self.g.concat(&[x, &c], 1),
            None => x.to_owned(),
        }
    }

    /// An affine map's `(t, log σ)` (`[N, n]` each) from its parameters `out`
    /// (`[N, 2n]`, `[t, s]` per coordinate): `log σ = A·tanh(s/A)` (zuko:
    /// `s/(1 + |s/A|)`).
    pub(super) fn affine_params(&mut self, out: &str, n: usize, clamp: f32, zuko: bool) -> (String, String) {
        let p = self.g.reshape(out, &[0, n as i64, 2]);
        let t = self.g.slice(&p, 2, 0, 1);
        let t = self.g.reshape(&t, &[0, n as i64]);
        let s = self.g.slice(&p, 2, 1, 2);
        let s = self.g.reshape(&s, &[0, n as i64]);
        let log_sigma = if zuko {
            self.zuko_clip(&s, 1.0, clamp)
        } else {
            let a = self.g.f32(clamp);
            let s = self.g.div(&s, &a);
            let s = self.g.unary("Tanh", &s);
            self.g.mul(&a, &s)
        };
        (t, log_sigma)
    }

    /// Affine map of `x` (`[N, n]`): `z = x·e^{log σ} + t`.
    fn affine(&mut self, x: &str, out: &str, n: usize, clamp: f32, zuko: bool) -> String {
        let (t, log_sigma) = self.affine_params(out, n, clamp, zuko);
        let ld = self.g.sum_last(&log_sigma);
        self.ld_terms.push(ld);
        let e = self.g.unary("Exp", &log_sigma);
        let z = self.g.mul(x, &e);
        self.g.add(&z, &t)
    }

    /// The elementwise map of conditioned layer `r` on `v` (`[N, n]`) with
    /// parameters `out`, forward or inverse.
    pub(super) fn elementwise(&mut self, r: &LayerRecord, v: &str, out: &str, n: usize, inverse: bool) -> String {
        let zuko = r.flags & floe_runtime::format::FLAG_ZUKO != 0;
        let (bins, p) = (usize::from(r.bins), r.param);
        match (r.kind.is_spline(), inverse) {
            (false, false) => self.affine(v, out, n, p, zuko),
            (false, true) => self.affine_inverse(v, out, n, p, zuko),
            (true, false) => self.spline(v, out, n, bins, p, zuko),
            (true, true) => self.spline_inverse(v, out, n, bins, p, zuko),
        }
    }

    /// A coupling layer `r` on `state`, forward or inverse: the pass-through
    /// part conditions the map of the rest.
    pub(super) fn coupling(&mut self, r: &LayerRecord, state: &str, inverse: bool) -> Result<String> {
        let (d, split) = (self.d, usize::from(r.split));
        let a = self.g.slice(state, 1, 0, split as i64);
        let b = self.g.slice(state, 1, split as i64, d as i64);
        let input = self.with_context(&a);
        let out = self.conditioner(r, &input)?;
        let b = self.elementwise(r, &b, &out, d - split, inverse);
        Ok(self.g.concat(&[&a, &b], 1))
    }

    /// A permutation layer's indices (`z_i = x_{perm_i}`).
    pub(super) fn permutation(&self, r: &LayerRecord) -> Result<Vec<usize>> {
        if r.kind == LayerKind::Reverse {
            return Ok((0..self.d).rev().collect());
        }
        match self.src.tensor(r.first_tensor)?.data {
            Data::U16(p) => Ok(p.iter().map(|&v| usize::from(v)).collect()),
            _ => Err(FloeError::Internal("ONNX export: permutation dtype")),
        }
    }

    /// Layer `i` applied to `state` (`[N, D]`); the new state.
    fn layer(&mut self, i: usize, state: &str) -> Result<String> {
        let r = self.src.model.layer_info(i)?.record;
        let d = self.d;
        let tensor = |b: &Builder<'_>, k: u32| b.src.tensor(r.first_tensor + k);
        match r.kind {
            LayerKind::LuLinear => {
                let (lu, ldiag, bias) = (tensor(self, 0)?, tensor(self, 1)?, tensor(self, 2)?);
                let (lu, ldiag, bias) = (lu.f32()?, ldiag.f32()?, bias.f32()?);
                // W = L·(U + diag(e^{log_diag})), in f64, then f32.
                let w = lu_matrix(lu, ldiag, d);
                let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let wt = self.g.f32s("lu", &[d as i64, d as i64], &transposed(&wf, d, d));
                let b = self.g.f32s("bias", &[d as i64], bias);
                self.ld_const += ldiag.iter().map(|&v| f64::from(v)).sum::<f64>();
                let y = self.g.op("MatMul", &[state, &wt], &[]);
                Ok(self.g.add(&y, &b))
            }
            LayerKind::Permute | LayerKind::Reverse => {
                let idx: Vec<i64> = self.permutation(&r)?.iter().map(|&v| v as i64).collect();
                let idx = self.g.ints(&idx);
                Ok(self.g.op("Gather", &[state, &idx], &[Attr::Int("axis", 1)]))
            }
            LayerKind::ActNorm => {
                let (ls, shift) = (tensor(self, 0)?, tensor(self, 1)?);
                let (ls, shift) = (ls.f32()?, shift.f32()?);
                self.ld_const += ls.iter().map(|&v| f64::from(v)).sum::<f64>();
                let e: Vec<f32> = ls.iter().map(|&v| v.exp()).collect();
                let e = self.g.f32s("scale", &[d as i64], &e);
                let s = self.g.f32s("shift", &[d as i64], shift);
                let y = self.g.mul(state, &e);
                Ok(self.g.add(&y, &s))
            }
            LayerKind::AffineCoupling | LayerKind::SplineCoupling => self.coupling(&r, state, false),
            LayerKind::MadeAffine | LayerKind::MadeSpline => {
                let input = self.with_context(state);
                let out = self.conditioner(&r, &input)?;
                Ok(self.elementwise(&r, state, &out, d, false))
            }
            LayerKind::Encoder => Err(FloeError::Internal("ONNX export: an encoder inside the flow")),
        }
    }
}

/// The layers `Model::log_prob` runs: all of them, or a trajectory file's
/// first step flow (after its encoder).
pub(super) fn flow_layers(model: &Model<'_>) -> std::ops::Range<usize> {
    let n = model.n_layers();
    match model.trajectory_layout() {
        Some(t) if t.per_step => 1..1 + (n - 1) / usize::from(t.horizon).max(1),
        Some(_) => 1..n,
        None => 0..n,
    }
}

/// A builder for `model`, with input `first` (`[N, D]`) and, for a
/// conditional model, the input `context` standardized.
pub(super) fn builder<'m>(model: &'m Model<'m>, bytes: &'m [u8], first: &str) -> (Builder<'m>, String) {
    let (d, c) = (model.dim(), model.context_dim());
    let mut b = Builder {
        g: Graph::default(),
        src: Source { model, bytes },
        d,
        context: None,
        ld_terms: Vec::new(),
        ld_const: 0.0,
    };
    let x = b.g.input(first, &[None, Some(d as i64)]);
    if c > 0 {
        let ctx = b.g.input("context", &[None, Some(c as i64)]);
        let (cm, cs) = model.context_standardization();
        let cm = b.g.f32s("c_mean", &[c as i64], cm);
        let cs = b.g.f32s("c_std", &[c as i64], cs);
        let v = b.g.sub(&ctx, &cm);
        b.context = Some(b.g.div(&v, &cs));
    }
    (b, x)
}

/// The graph's doc string: `what` (with `{c}` where " | context" goes for a
/// conditional model), its inputs and its output.
pub(super) fn doc(model: &Model<'_>, what: &str, first: &str, out: &str) -> String {
    let (d, c) = (model.dim(), model.context_dim());
    let what = what.replace("{c}", if c > 0 { " | context" } else { "" });
    let ctx = if c > 0 { format!(", context [N, {c}]") } else { String::new() };
    format!("floe model: {what}. Inputs: {first} [N, {d}]{ctx}. Output: {out}.")
}

/// The ONNX model of `model` (whose file is `bytes`).
pub fn export(model: &Model<'_>, bytes: &[u8]) -> Result<ModelProto> {
    let d = model.dim();
    let (mut b, x) = builder(model, bytes, "x");
    let (mean, std) = model.standardization();
    b.ld_const -= std.iter().map(|&s| f64::from(s).ln()).sum::<f64>();
    let m = b.g.f32s("x_mean", &[d as i64], mean);
    let s = b.g.f32s("x_std", &[d as i64], std);
    let u = b.g.sub(&x, &m);
    let mut state = b.g.div(&u, &s);
    for i in flow_layers(model) {
        state = b.layer(i, &state)?;
    }
    let mut lp = b.base(&state)?;
    for t in std::mem::take(&mut b.ld_terms) {
        lp = b.g.add(&lp, &t);
    }
    let k = b.g.f32(b.ld_const as f32);
    let lp = b.g.add(&lp, &k);
    b.g.output(&lp, "log_prob", &[None]);
    Ok(b.g.model(doc(model, "log p(x{c}) in nats", "x", "log_prob [N]")))
}

/// An LU layer's `W = L·(U + diag(e^{log_diag}))` (row-major), in f64.
pub(super) fn lu_matrix(lu: &[f32], ldiag: &[f32], d: usize) -> Vec<f64> {
    let mut w = vec![0.0f64; d * d];
    for row in 0..d {
        for col in 0..d {
            let mut acc = 0.0f64;
            for k in 0..=row.min(col) {
                let l = if k == row { 1.0 } else { f64::from(lu[row * d + k]) };
                let u = if k == col { f64::from(ldiag[k]).exp() } else { f64::from(lu[k * d + col]) };
                acc += l * u;
            }
            w[row * d + col] = acc;
        }
    }
    w
}

/// [`export`] serialized (the `.onnx` file's bytes).
pub fn export_bytes(model: &Model<'_>, bytes: &[u8]) -> Result<Vec<u8>> {
    export(model, bytes)?.write_to_bytes().map_err(|e| FloeError::Onnx(format!("protobuf: {e}")))
}
