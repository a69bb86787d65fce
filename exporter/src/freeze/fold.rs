//! A trained [`Flow`] as a file description: every Burn module becomes the layer
//! record and tensors of its runtime twin, and an ActNorm directly followed by an
//! LU linear is folded into it.

use floe_runtime::format::{BaseKind, LayerKind, Precision};

use super::{FrozenLayer, FrozenModel, FrozenTensor};
use crate::data::Standardization;
use crate::error::{Result, TrainingError};
use crate::flow::math::to_vec;
use crate::flow::{BaseDist, Coupling, Elementwise, Flow, Layer, Made, Mlp, MlpSpec, Permute};

/// The flow with its standardizations as a file description. An ActNorm directly
/// followed by an LU linear is folded into it: `L (U + D)(x e^s + b) + c` is again
/// an LU linear with `U' = U E`, `log D' = log D + s` and bias `L (U + D) b + c`.
pub fn fold(flow: &Flow, x_std: &Standardization, c_std: &Standardization) -> Result<FrozenModel> {
    let d = flow.dim;
    let mut layers = Vec::new();
    let mut i = 0;
    while i < flow.layers.len() {
        match (&flow.layers[i], flow.layers.get(i + 1)) {
            (Layer::ActNorm(a), Some(Layer::LuLinear(l))) => {
                let (s, b) = a.values();
                let (mut lu, mut ld, bias) = l.values();
                // new bias: W b + c, with W = L (U + D) evaluated in f64.
                let w = to_vec(l.weight());
                let nb: Vec<f32> = (0..d)
                    .map(|r| (0..d).map(|c| w[r * d + c] as f64 * b[c] as f64).sum::<f64>() as f32 + bias[r])
                    .collect();
                for r in 0..d {
                    for c in r + 1..d {
                        lu[r * d + c] = (lu[r * d + c] as f64 * (s[c] as f64).exp()) as f32;
                    }
                }
                for (x, si) in ld.iter_mut().zip(&s) {
                    *x += si;
                }
                layers.push(lu_layer(d, lu, ld, nb));
                i += 2;
                continue;
            }
            (Layer::ActNorm(a), _) => {
                let (s, b) = a.values();
                layers.push(FrozenLayer::plain(
                    LayerKind::ActNorm,
                    vec![FrozenTensor::vector(s), FrozenTensor::vector(b)],
                ));
            }
            (Layer::LuLinear(l), _) => {
                let (lu, ld, b) = l.values();
                layers.push(lu_layer(d, lu, ld, b));
            }
            (Layer::Permute(p), _) => layers.push(permute_layer(p)),
            (Layer::Coupling(c), _) => layers.push(coupling_layer(c)),
            (Layer::Made(m), _) => layers.push(made_layer(m)),
        }
        i += 1;
    }
    let (base, base_tensors) = base(&flow.base);
    let m = FrozenModel {
        dim: d,
        context_dim: flow.context_dim,
        x_mean: x_std.mean.clone(),
        x_std: x_std.std.clone(),
        c_mean: c_std.mean.clone(),
        c_std: c_std.std.clone(),
        base,
        base_tensors,
        layers,
        anomaly: None,
        stream: None,
        alarm: None,
        trajectory: None,
    };
    let all_finite = m
        .base_tensors
        .iter()
        .chain(m.layers.iter().flat_map(|l| l.tensors.iter()))
        .all(|t| t.f32s().iter().all(|v| v.is_finite()));
    if !all_finite {
        return Err(TrainingError::NonFiniteWeights.into());
    }
    Ok(m)
}

impl Flow {
    /// [`fold`]: the flow with its standardizations as a file description.
    pub fn frozen(&self, x_std: &Standardization, c_std: &Standardization) -> Result<FrozenModel> {
        fold(self, x_std, c_std)
    }
}

/// The base's kind and tensors (Student-t stores its degrees of freedom, not
/// their logarithm).
fn base(b: &BaseDist) -> (BaseKind, Vec<FrozenTensor>) {
    match (b.kind, &b.loc, &b.log_scale, &b.log_df) {
        (BaseKind::DiagNormal, Some(loc), Some(ls), _) => (
            BaseKind::DiagNormal,
            vec![FrozenTensor::vector(to_vec(loc.val())), FrozenTensor::vector(to_vec(ls.val()))],
        ),
        (BaseKind::StudentT, _, _, Some(ldf)) => {
            (BaseKind::StudentT, vec![FrozenTensor::vector(to_vec(ldf.val().exp()))])
        }
        (BaseKind::Mixture | BaseKind::FullMixture, ..) => match (&b.mix_logits, &b.mix_loc, &b.mix_log_scale) {
            (Some(w), Some(loc), Some(ls)) => {
                let [k, d] = loc.val().dims();
                let mut tensors = vec![
                    FrozenTensor::vector(to_vec(w.val())),
                    FrozenTensor::matrix(k, d, to_vec(loc.val().reshape([k * d]))),
                    FrozenTensor::matrix(k, d, to_vec(ls.val().reshape([k * d]))),
                ];
                match (b.kind, &b.mix_lower) {
                    (BaseKind::FullMixture, Some(lower)) => {
                        // Row i's entries j < i of each component, packed row after row.
                        let full = to_vec(lower.val().reshape([k * d * d]));
                        let packed: Vec<f32> = (0..k)
                            .flat_map(|c| (0..d).flat_map(move |i| (0..i).map(move |j| (c, i, j))))
                            .map(|(c, i, j)| full[(c * d + i) * d + j])
                            .collect();
                        tensors.push(FrozenTensor::matrix(k, d * (d - 1) / 2, packed));
                        (BaseKind::FullMixture, tensors)
                    }
                    _ => (BaseKind::Mixture, tensors),
                }
            }
            _ => (BaseKind::StdNormal, vec![]),
        },
        _ => (BaseKind::StdNormal, vec![]),
    }
}

/// An LU layer from plain values (the packed matrix's diagonal is zeroed).
fn lu_layer(d: usize, mut lu: Vec<f32>, log_diag: Vec<f32>, bias: Vec<f32>) -> FrozenLayer {
    for i in 0..d {
        lu[i * d + i] = 0.0;
    }
    FrozenLayer::plain(
        LayerKind::LuLinear,
        vec![FrozenTensor::matrix(d, d, lu), FrozenTensor::vector(log_diag), FrozenTensor::vector(bias)],
    )
}

/// A permutation, or the tensor-free reversal.
fn permute_layer(p: &Permute) -> FrozenLayer {
    if p.reverse {
        FrozenLayer::plain(LayerKind::Reverse, vec![])
    } else {
        let perm = p.perm.iter().map(|&i| i as u16).collect();
        FrozenLayer::plain(LayerKind::Permute, vec![FrozenTensor::indices(perm)])
    }
}

/// A conditioned layer's record fields and its conditioner's tensors.
fn conditioned(kind: LayerKind, split: usize, elem: &Elementwise, spec: &MlpSpec, mlp: &Mlp) -> FrozenLayer {
    let (bins, param) = elem.record_fields();
    FrozenLayer {
        kind,
        activation: spec.activation(),
        precision: Precision::F32,
        residual: spec.residual,
        split: split as u16,
        bins,
        hidden: spec.hidden as u16,
        blocks: spec.blocks as u16,
        param,
        zuko: elem.zuko(),
        tensors: mlp_tensors(mlp),
    }
}

fn coupling_layer(c: &Coupling) -> FrozenLayer {
    conditioned(c.elem.layer_kind(false), c.split, &c.elem, &c.spec, &c.mlp)
}

fn made_layer(m: &Made) -> FrozenLayer {
    conditioned(m.elem.layer_kind(true), 0, &m.elem, &m.spec, &m.mlp)
}

/// A conditioner's tensors in file order: per linear, `W` row-major `out x in`
/// (masked entries exactly 0), then `b`.
pub(crate) fn mlp_tensors(mlp: &Mlp) -> Vec<FrozenTensor> {
    let mut out = Vec::new();
    for (i, l) in mlp.linears.iter().enumerate() {
        let [n_in, n_out] = l.weight.dims();
        let w = to_vec(l.weight.val());
        let m = mlp.masks.get(i).map(|m| to_vec(m.clone()));
        let mut t = vec![0.0f32; n_in * n_out];
        for r in 0..n_out {
            for c in 0..n_in {
                let keep = m.as_ref().is_none_or(|m| m[c * n_out + r] != 0.0);
                t[r * n_in + c] = if keep { w[c * n_out + r] } else { 0.0 };
            }
        }
        out.push(FrozenTensor::matrix(n_out, n_in, t));
        let b = l.bias.as_ref().map(|b| to_vec(b.val())).unwrap_or_else(|| vec![0.0; n_out]);
        out.push(FrozenTensor::vector(b));
    }
    out
}
