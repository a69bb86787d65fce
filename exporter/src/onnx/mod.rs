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
//! diagonal normal, Student-t, mixture by `ReduceLogSumExp`). A trajectory
//! file exports its first step's flow with the context the caller gives (as
//! `Model::log_prob` does). [`export_sampler`] writes the inverse instead
//! (base-space points in, data out: what `Model::inverse` computes). `cargo
//! xtask onnx` checks ONNX Runtime against the runtime on every bundled model,
//! both graphs.

mod graph;
mod int8;
mod spline;

use floe_runtime::exporter_hooks::tensor_record;
use floe_runtime::format::{Activation, BaseKind, DType, LayerKind, LayerRecord, Precision};
use floe_runtime::Model;
use onnx_protobuf::{Message, ModelProto};

use crate::error::{FloeError, Result};
use graph::{Attr, Graph};

pub use graph::OPSET;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

fn unsupported(msg: String) -> FloeError {
    FloeError::Onnx(msg)
}

/// A tensor of the file, widened: f32 and bf16 as f32, i8, i32, u16.
enum Data {
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
struct Builder<'m> {
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
fn transposed<T: Copy>(w: &[T], rows: usize, cols: usize) -> Vec<T> {
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
    fn conditioner(&mut self, r: &LayerRecord, input: &str) -> Result<String> {
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
    fn with_context(&mut self, x: &str) -> String {
        match self.context.clone() {
            Some(c) => self.g.concat(&[x, &c], 1),
            None => x.to_owned(),
        }
    }

    /// An affine map's `(t, log σ)` (`[N, n]` each) from its parameters `out`
    /// (`[N, 2n]`, `[t, s]` per coordinate): `log σ = A·tanh(s/A)` (zuko:
    /// `s/(1 + |s/A|)`).
    fn affine_params(&mut self, out: &str, n: usize, clamp: f32, zuko: bool) -> (String, String) {
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

    /// The inverse of [`Builder::affine`]: `x = (z − t)·e^{−log σ}`.
    fn affine_inverse(&mut self, z: &str, out: &str, n: usize, clamp: f32, zuko: bool) -> String {
        let (t, log_sigma) = self.affine_params(out, n, clamp, zuko);
        let neg = self.g.unary("Neg", &log_sigma);
        let e = self.g.unary("Exp", &neg);
        let u = self.g.sub(z, &t);
        self.g.mul(&u, &e)
    }

    /// The elementwise map of conditioned layer `r` on `v` (`[N, n]`) with
    /// parameters `out`, forward or inverse.
    fn elementwise(&mut self, r: &LayerRecord, v: &str, out: &str, n: usize, inverse: bool) -> String {
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
    fn coupling(&mut self, r: &LayerRecord, state: &str, inverse: bool) -> Result<String> {
        let (d, split) = (self.d, usize::from(r.split));
        let a = self.g.slice(state, 1, 0, split as i64);
        let b = self.g.slice(state, 1, split as i64, d as i64);
        let input = self.with_context(&a);
        let out = self.conditioner(r, &input)?;
        let b = self.elementwise(r, &b, &out, d - split, inverse);
        Ok(self.g.concat(&[&a, &b], 1))
    }

    /// A permutation layer's indices (`z_i = x_{perm_i}`).
    fn permutation(&self, r: &LayerRecord) -> Result<Vec<usize>> {
        if r.kind == LayerKind::Reverse {
            return Ok((0..self.d).rev().collect());
        }
        match self.src.tensor(r.first_tensor)?.data {
            Data::U16(p) => Ok(p.iter().map(|&v| usize::from(v)).collect()),
            _ => Err(FloeError::Internal("ONNX export: permutation dtype")),
        }
    }

    /// The inverse of layer `i` applied to `state` (`[N, D]`, its output):
    /// its input, as `Model::inverse` computes it.
    fn layer_inverse(&mut self, i: usize, state: &str) -> Result<String> {
        let r = self.src.model.layer_info(i)?.record;
        let d = self.d;
        let tensor = |b: &Builder<'_>, k: u32| b.src.tensor(r.first_tensor + k);
        match r.kind {
            LayerKind::LuLinear => {
                let (lu, ldiag, bias) = (tensor(self, 0)?, tensor(self, 1)?, tensor(self, 2)?);
                let (lu, ldiag, bias) = (lu.f32()?, ldiag.f32()?, bias.f32()?);
                let inv = lu_inverse(lu, ldiag, d);
                let wt = self.g.f32s("lu_inv", &[d as i64, d as i64], &transposed(&inv, d, d));
                let b = self.g.f32s("bias", &[d as i64], bias);
                let u = self.g.sub(state, &b);
                Ok(self.g.op("MatMul", &[&u, &wt], &[]))
            }
            LayerKind::Permute | LayerKind::Reverse => {
                let perm = self.permutation(&r)?;
                let mut inv = vec![0i64; d];
                for (t, &p) in perm.iter().enumerate() {
                    *inv.get_mut(p).ok_or(FloeError::Internal("ONNX export: permutation index"))? = t as i64;
                }
                let idx = self.g.ints(&inv);
                Ok(self.g.op("Gather", &[state, &idx], &[Attr::Int("axis", 1)]))
            }
            LayerKind::ActNorm => {
                let (ls, shift) = (tensor(self, 0)?, tensor(self, 1)?);
                let (ls, shift) = (ls.f32()?, shift.f32()?);
                let e: Vec<f32> = ls.iter().map(|&v| (-v).exp()).collect();
                let e = self.g.f32s("inv_scale", &[d as i64], &e);
                let s = self.g.f32s("shift", &[d as i64], shift);
                let u = self.g.sub(state, &s);
                Ok(self.g.mul(&u, &e))
            }
            LayerKind::AffineCoupling | LayerKind::SplineCoupling => self.coupling(&r, state, true),
            LayerKind::MadeAffine | LayerKind::MadeSpline => {
                // D passes, as the runtime: pass j sees x_0 … x_{j−1} (the
                // rest 0) and fixes x_j.
                let zero = self.g.f32(0.0);
                let mut x = self.g.mul(state, &zero);
                for j in 0..d {
                    let input = self.with_context(&x);
                    let out = self.conditioner(&r, &input)?;
                    let all = self.elementwise(&r, state, &out, d, true);
                    let pick: Vec<bool> = (0..d).map(|i| i == j).collect();
                    let pick = self.g.bools("pass", &[d as i64], &pick);
                    x = self.g.op("Where", &[&pick, &all, &x], &[]);
                }
                Ok(x)
            }
            LayerKind::Encoder => Err(FloeError::Internal("ONNX export: an encoder inside the flow")),
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

    /// `log p_base(z)` (`[N]`), its constant part included.
    fn base(&mut self, z: &str) -> Result<String> {
        let d = self.d;
        let model = self.src.model;
        let first_base = 4u32;
        let half = self.g.f32(-0.5);
        Ok(match model.base_kind() {
            BaseKind::StdNormal => {
                let sq = self.g.mul(z, z);
                let s = self.g.sum_last(&sq);
                self.ld_const -= d as f64 * HALF_LN_2PI;
                self.g.mul(&s, &half)
            }
            BaseKind::DiagNormal => {
                let (loc, ls) = (self.src.tensor(first_base)?, self.src.tensor(first_base + 1)?);
                let (loc, ls) = (loc.f32()?, ls.f32()?);
                self.ld_const -= d as f64 * HALF_LN_2PI + ls.iter().map(|&v| f64::from(v)).sum::<f64>();
                let loc = self.g.f32s("loc", &[d as i64], loc);
                let inv: Vec<f32> = ls.iter().map(|&v| (-v).exp()).collect();
                let inv = self.g.f32s("inv_scale", &[d as i64], &inv);
                let u = self.g.sub(z, &loc);
                let u = self.g.mul(&u, &inv);
                let sq = self.g.mul(&u, &u);
                let s = self.g.sum_last(&sq);
                self.g.mul(&s, &half)
            }
            BaseKind::StudentT => {
                let df = self.src.tensor(first_base)?;
                let df = df.f32()?;
                for &v in df {
                    let v = f64::from(v);
                    self.ld_const +=
                        libm::lgamma(0.5 * (v + 1.0)) - libm::lgamma(0.5 * v) - 0.5 * (v * std::f64::consts::PI).ln();
                }
                let nu = self.g.f32s("df", &[d as i64], df);
                let coef: Vec<f32> = df.iter().map(|&v| -0.5 * (v + 1.0)).collect();
                let coef = self.g.f32s("coef", &[d as i64], &coef);
                let sq = self.g.mul(z, z);
                let q = self.g.div(&sq, &nu);
                // log1p(q) as the runtime has it, accurately for small q:
                // with u = 1 + q, log(u)·q/(u − 1), and q itself where u == 1.
                let one = self.g.f32(1.0);
                let u = self.g.add(&one, &q);
                let lu = self.g.unary("Log", &u);
                let um1 = self.g.sub(&u, &one);
                let l = self.g.mul(&lu, &q);
                let l = self.g.div(&l, &um1);
                let exact = self.g.op("Equal", &[&u, &one], &[]);
                let l = self.g.op("Where", &[&exact, &q, &l], &[]);
                let l = self.g.mul(&l, &coef);
                self.g.sum_last(&l)
            }
            BaseKind::Mixture => {
                let (w, loc, ls) =
                    (self.src.tensor(first_base)?, self.src.tensor(first_base + 1)?, self.src.tensor(first_base + 2)?);
                let k = w.rows;
                let (w, locv, lsv) = (w.f32()?, loc.f32()?, ls.f32()?);
                let max = w.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let lse = max + w.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
                self.ld_const -= d as f64 * HALF_LN_2PI + lse;
                let loc = self.g.f32s("loc", &[k as i64, d as i64], locv);
                let inv: Vec<f32> = lsv.iter().map(|&v| (-v).exp()).collect();
                let inv = self.g.f32s("inv_scale", &[k as i64, d as i64], &inv);
                let lsc = self.g.f32s("log_scale", &[k as i64, d as i64], lsv);
                let z3 = self.g.reshape(z, &[0, 1, d as i64]);
                let u = self.g.sub(&z3, &loc);
                let u = self.g.mul(&u, &inv);
                let sq = self.g.mul(&u, &u);
                let sq = self.g.mul(&sq, &half);
                let t = self.g.sub(&sq, &lsc);
                let t = self.g.sum_last(&t);
                let logits = self.g.f32s("logits", &[k as i64], w);
                let t = self.g.add(&t, &logits);
                self.g.op("ReduceLogSumExp", &[&t], &[Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 0)])
            }
        })
    }
}

/// The layers `Model::log_prob` runs: all of them, or a trajectory file's
/// first step flow (after its encoder).
fn flow_layers(model: &Model<'_>) -> std::ops::Range<usize> {
    let n = model.n_layers();
    match model.trajectory_layout() {
        Some(t) if t.per_step => 1..1 + (n - 1) / usize::from(t.horizon).max(1),
        Some(_) => 1..n,
        None => 0..n,
    }
}

/// A builder for `model`, with input `first` (`[N, D]`) and, for a
/// conditional model, the input `context` standardized.
fn builder<'m>(model: &'m Model<'m>, bytes: &'m [u8], first: &str) -> (Builder<'m>, String) {
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
fn doc(model: &Model<'_>, what: &str, first: &str, out: &str) -> String {
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
fn lu_matrix(lu: &[f32], ldiag: &[f32], d: usize) -> Vec<f64> {
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

/// `W⁻¹` (row-major, f32) of an LU layer's [`lu_matrix`], inverted in f64 by
/// Gauss–Jordan with partial pivoting.
fn lu_inverse(lu: &[f32], ldiag: &[f32], d: usize) -> Vec<f32> {
    let mut w = lu_matrix(lu, ldiag, d);
    let mut inv: Vec<f64> = (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    for c in 0..d {
        let p = (c..d).max_by(|&a, &b| w[a * d + c].abs().total_cmp(&w[b * d + c].abs())).unwrap_or(c);
        for k in 0..d {
            w.swap(c * d + k, p * d + k);
            inv.swap(c * d + k, p * d + k);
        }
        let piv = w[c * d + c];
        for k in 0..d {
            w[c * d + k] /= piv;
            inv[c * d + k] /= piv;
        }
        for r in (0..d).filter(|&r| r != c) {
            let f = w[r * d + c];
            if f != 0.0 {
                for k in 0..d {
                    w[r * d + k] -= f * w[c * d + k];
                    inv[r * d + k] -= f * inv[c * d + k];
                }
            }
        }
    }
    inv.iter().map(|&v| v as f32).collect()
}

/// The sampler of `model` (whose file is `bytes`) as an ONNX graph: input `z`
/// `[N, D]`, a point of the base distribution's space (for a normal base,
/// standard normal draws; draw from the file's base otherwise), and `context`
/// `[N, C]` for a conditional model; output `x` `[N, D]` in data units — what
/// `Model::inverse` computes, every layer inverted in reverse order (a MADE
/// layer in D passes of its conditioner), then the standardization undone.
pub fn export_sampler(model: &Model<'_>, bytes: &[u8]) -> Result<ModelProto> {
    let d = model.dim();
    let (mut b, mut state) = builder(model, bytes, "z");
    for i in flow_layers(model).rev() {
        state = b.layer_inverse(i, &state)?;
    }
    let (mean, std) = model.standardization();
    let m = b.g.f32s("x_mean", &[d as i64], mean);
    let s = b.g.f32s("x_std", &[d as i64], std);
    let u = b.g.mul(&state, &s);
    let x = b.g.add(&u, &m);
    b.g.output(&x, "x", &[None, Some(d as i64)]);
    Ok(b.g.model(doc(model, "the sampler x = f^-1(z{c}), z a point of the base's space", "z", &format!("x [N, {d}]"))))
}

/// [`export_sampler`] serialized (the `.onnx` file's bytes).
pub fn export_sampler_bytes(model: &Model<'_>, bytes: &[u8]) -> Result<Vec<u8>> {
    export_sampler(model, bytes)?.write_to_bytes().map_err(|e| FloeError::Onnx(format!("protobuf: {e}")))
}

/// [`export`] serialized (the `.onnx` file's bytes).
pub fn export_bytes(model: &Model<'_>, bytes: &[u8]) -> Result<Vec<u8>> {
    export(model, bytes)?.write_to_bytes().map_err(|e| FloeError::Onnx(format!("protobuf: {e}")))
}
