//! The sampler as an ONNX graph: the flow's inverse, what `Model::inverse`
//! computes, every layer inverted in reverse order.

use floe_runtime::format::LayerKind;
use floe_runtime::Model;
use onnx_protobuf::{Message, ModelProto};

use super::graph::Attr;
use super::{builder, doc, flow_layers, lu_matrix, transposed, Builder};
use crate::error::{FloeError, Result};

impl Builder<'_> {
    /// The inverse of [`Builder::affine`]: `x = (z − t)·e^{−log σ}`.
    pub(super) fn affine_inverse(&mut self, z: &str, out: &str, n: usize, clamp: f32, zuko: bool) -> String {
        let (t, log_sigma) = self.affine_params(out, n, clamp, zuko);
        let neg = self.g.unary("Neg", &log_sigma);
        let e = self.g.unary("Exp", &neg);
        let u = self.g.sub(z, &t);
        self.g.mul(&u, &e)
    }

    /// The inverse of layer `i` applied to `state` (`[N, D]`, its output):
    /// its input, as `Model::inverse` computes it.
    pub(super) fn layer_inverse(&mut self, i: usize, state: &str) -> Result<String> {
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
