//! nflows 0.14: a `Flow` whose `_transform._transforms.{i}` are permutations
//! (`_permutation`) and `PiecewiseRationalQuadraticCouplingTransform`s
//! (`identity_features`, `transform_features`, a `ResidualNet` `transform_net` with `initial_layer`, `blocks.{b}.
//! linear_layers.{0,1}`, `final_layer`), linear tails, over a `StandardNormal`.
//!
//! nflows' spline is floe's (min bin width and height 1e-3, min derivative
//! 1e-3, boundary derivatives 1, identity tails), except that it divides the
//! bin logits by √H before the softmax and applies softplus to the raw
//! derivatives without floe's shift: both are folded into the final layer's
//! rows. Its `ResidualNet` without batch norm is floe's residual conditioner.
//! A coupling's mask becomes a permutation (identity features first, in order)
//! around floe's coupling.

use burn::prelude::*;
use floe_runtime::format::spline::DERIVATIVE_SHIFT;
use floe_runtime::format::BaseKind;

use super::state::StateDict;
use super::zuko::count;
use super::{check_names, index_below, inverse, is_permutation, mlp, permute, ImportOptions, Imported};
use crate::error::Result;
use crate::flow::{BaseDist, Coupling, Elementwise, Flow, MlpSpec};

pub(super) fn import(sd: &StateDict, opts: &ImportOptions, tanh: bool, device: &Device) -> Result<Imported> {
    const T: &str = "_transform._transforms.";
    let n = (0..).take_while(|i| sd.tensors.keys().any(|k| k.starts_with(&format!("{T}{i}.")))).count();
    if n == 0 {
        return Err(sd.err(format!("no transforms (`{T}0.…`): not an nflows Flow state dict")));
    }
    // Exactly the tensors of permutations and RQ couplings with a ResidualNet
    // (no batch norm, no context layer) over a StandardNormal without embedding
    // net; a parameter-free transform between them leaves a gap that makes a
    // later transform's index ≥ n.
    check_names(sd, "an nflows flow of permutations and RQ spline couplings", |p| match p {
        ["_distribution", "_log_z"] => true,
        ["_transform", "_transforms", i, "_permutation" | "identity_features" | "transform_features"] => {
            index_below(i, n)
        }
        ["_transform", "_transforms", i, "transform_net", "initial_layer" | "final_layer", "weight" | "bias"] => {
            index_below(i, n)
        }
        ["_transform", "_transforms", i, "transform_net", "blocks", b, "linear_layers", "0" | "1", "weight" | "bias"] => {
            index_below(i, n) && index_below(b, usize::MAX)
        }
        _ => false,
    })?;
    for key in ["min_bin_width", "min_bin_height", "min_derivative"] {
        if let Some(v) = sd.meta_f32(key)? {
            if v != 1e-3 {
                return Err(sd.err(format!("{key} = {v}: floe's spline has nflows' default 1e-3")));
            }
        }
    }
    let bound = match opts.bound {
        Some(b) => Some(b),
        None => sd.meta_f32("tail_bound")?,
    };
    let mut d = None;
    let mut layers = Vec::new();
    let mut summary = Vec::new();
    for i in 0..n {
        let pre = format!("{T}{i}.");
        if let Ok(p) = sd.get(&format!("{pre}_permutation")) {
            let perm: Vec<usize> = p.values.iter().map(|&v| v as usize).collect();
            let dd = *d.get_or_insert(perm.len());
            if !is_permutation(&perm, dd) {
                return Err(sd.err(format!("{pre}_permutation {perm:?} is not a permutation of 0..{dd}")));
            }
            summary.push(format!("transform {i}: permutation {perm:?}"));
            layers.push(permute(perm));
            continue;
        }
        let (Ok(ident), Ok(trans)) =
            (sd.get(&format!("{pre}identity_features")), sd.get(&format!("{pre}transform_features")))
        else {
            let keys: Vec<&str> = sd.names_under(&pre).collect();
            return Err(sd.err(format!(
                "transform {i} ({keys:?}) is neither a permutation nor a PiecewiseRationalQuadraticCouplingTransform"
            )));
        };
        // nflows keeps a coupling's mask as the two index lists (each ascending).
        let ident: Vec<usize> = ident.values.iter().map(|&v| v as usize).collect();
        let trans: Vec<usize> = trans.values.iter().map(|&v| v as usize).collect();
        let dd = *d.get_or_insert(ident.len() + trans.len());
        let order: Vec<usize> = ident.iter().chain(&trans).copied().collect();
        if !is_permutation(&order, dd) || ident.is_empty() || trans.is_empty() {
            return Err(sd.err(format!(
                "{pre}identity_features {ident:?} and transform_features {trans:?} do not split 0..{dd} in two"
            )));
        }
        let net = format!("{pre}transform_net.");
        if let Some(k) = sd.names_under(&net).find(|k| k.contains("batch_norm") || k.contains("context_layer")) {
            return Err(sd.err(format!("{k}: ResidualNet with batch norm or context is not supported")));
        }
        let bound = bound.ok_or_else(|| {
            sd.err("nflows' tail_bound is not in the state dict: pass --bound (the file's metadata `tail_bound` also works)".into())
        })?;
        if !(bound.is_finite() && bound > 0.0) {
            return Err(sd.err(format!("tail bound {bound}: must be finite and > 0")));
        }
        let (split, m) = (ident.len(), trans.len());
        let w0 = sd.get(&format!("{net}initial_layer.weight"))?;
        let h = w0.shape.first().copied().unwrap_or(0);
        if w0.shape != [h, split] {
            return Err(sd.err(format!(
                "{net}initial_layer.weight: shape {:?} for {split} identity features (a conditional flow?)",
                w0.shape
            )));
        }
        let blocks = count(sd, &format!("{net}blocks."), ".linear_layers.0.weight");
        if let Some(k) = sd.names_under(&format!("{net}blocks.{blocks}.")).next() {
            return Err(sd.err(format!("{k}: residual block {blocks} is incomplete")));
        }
        if let Some(k) = sd
            .names_under(&format!("{net}blocks."))
            .find(|k| k.split('.').nth(5).and_then(|b| b.parse::<usize>().ok()).is_some_and(|b| b > blocks))
        {
            return Err(sd.err(format!("{k}: residual blocks are not numbered 0..{blocks}")));
        }
        let mut dense = vec![dense_of(sd, &format!("{net}initial_layer"), h, split)?];
        for b in 0..blocks {
            for l in 0..2 {
                dense.push(dense_of(sd, &format!("{net}blocks.{b}.linear_layers.{l}"), h, h)?);
            }
        }
        let fw = sd.get(&format!("{net}final_layer.weight"))?;
        let rows = fw.shape.first().copied().unwrap_or(0);
        if rows % m != 0 || !(rows / m + 1).is_multiple_of(3) || rows / m < 2 {
            return Err(sd.err(format!(
                "{net}final_layer: {rows} outputs for {m} features is not a linear-tails spline (3K − 1 each)"
            )));
        }
        let p = rows / m;
        let k = (p + 1) / 3;
        let (mut wf, mut bf) = dense_of(sd, &format!("{net}final_layer"), rows, h)?;
        // nflows: widths and heights / √H (the ResidualNet's hidden_features); raw
        // derivatives into softplus unshifted.
        let root = (h as f64).sqrt() as f32;
        for f in 0..m {
            for q in 0..p {
                let o = f * p + q;
                if q < 2 * k {
                    wf[o * h..(o + 1) * h].iter_mut().for_each(|v| *v /= root);
                    bf[o] /= root;
                } else {
                    bf[o] -= DERIVATIVE_SHIFT;
                }
            }
        }
        dense.push((wf, bf));
        let spec = MlpSpec { hidden: h, blocks, residual: true, tanh, zero_last: true };
        let elem = Elementwise::Spline { bins: k, bound, zuko: false };
        let cond = mlp(&spec, split, m * p, None, &dense, device)?;
        layers.push(permute(order.clone()));
        layers.push(crate::flow::Layer::Coupling(Coupling { mlp: cond, split, dim: dd, elem, spec }));
        layers.push(permute(inverse(&order)));
        summary.push(format!(
            "transform {i}: spline coupling of features {trans:?} given {ident:?} (K = {k}, B = {bound}, ResidualNet {blocks} × {h})"
        ));
    }
    let d = d.ok_or_else(|| sd.err("no transform gives the dimension".into()))?;
    summary.push("base: N(0, I)".into());
    Ok(Imported {
        flow: Flow { layers, base: BaseDist::new(BaseKind::StdNormal, d, 0, device), dim: d, context_dim: 0 },
        summary,
    })
}

/// `(weight, bias)` of a `nn.Linear` named `name` (`rows × cols`).
fn dense_of(sd: &StateDict, name: &str, rows: usize, cols: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let w = sd.shaped(&format!("{name}.weight"), &[rows, cols])?.to_vec();
    let b = sd.shaped(&format!("{name}.bias"), &[rows])?.to_vec();
    Ok((w, b))
}
