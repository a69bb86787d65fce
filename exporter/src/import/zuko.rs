//! zuko 1.x `NSF` / `MAF`: `transform.transforms.{i}` are
//! `MaskedAutoregressiveTransform`s (an `order` buffer and a `MaskedMLP` hyper
//! network `hyper.{0,2,4,…}` with `weight`, `bias`, `mask`), `base` a
//! `DiagNormal` (`loc`, `scale`).
//!
//! A transform with feature order `o` is the MADE layer of the natural order
//! conjugated by the permutation that sorts `o`: feature `π_t` (the one with
//! `o = t`) becomes coordinate t, its input column and its output block move
//! there, and the hidden units stay. zuko's `MaskedMLP` then assigns hidden
//! units exactly the MADE degrees floe's format fixes (`1 + (j mod (D−1))`; with a
//! context, `j mod D`, the format's zuko rule), so its masks are floe's —
//! checked weight by weight here and again by the runtime at load. A context
//! is the hyper network's inputs past the features, as zuko concatenates them.

use burn::prelude::*;
use floe_runtime::format::made::{mask_allows_by, MaskLayer, MaskRule};
use floe_runtime::format::spline::{params_per_dim, ZUKO_NEG_LN_SLOPE};
use floe_runtime::format::BaseKind;

use super::state::StateDict;
use super::{check_names, index_below, inverse, is_permutation, mlp, permute, FlowKind, ImportOptions, Imported};
use crate::error::Result;
use crate::flow::{BaseDist, Elementwise, Flow, Layer, Made, MlpSpec};

/// zuko's spline bound (`MonotonicRQSTransform(bound=5.0)`).
const ZUKO_BOUND: f32 = 5.0;

pub(super) fn import(
    sd: &StateDict,
    opts: &ImportOptions,
    kind: FlowKind,
    tanh: bool,
    device: &Device,
) -> Result<Imported> {
    let n = count(sd, "transform.transforms.", ".order");
    if n == 0 {
        return Err(sd.err("no zuko transforms (`transform.transforms.0.order`): not a zuko NSF/MAF state dict".into()));
    }
    // Exactly NSF's / MAF's tensors: transforms 0..n, each an order and a plain
    // MaskedMLP (`hyper.{j}`; a residual one has `hyper.{j}.{k}`), and the base.
    // A parameter-free transform between them (zuko's UNAF, NAF) leaves a gap
    // that makes a later transform's index ≥ n.
    check_names(sd, "a zuko NSF or MAF", |p| match p {
        ["base", "loc" | "scale"] => true,
        ["transform", "transforms", i, "order"] => index_below(i, n),
        ["transform", "transforms", i, "hyper", j, "weight" | "bias" | "mask"] => {
            index_below(i, n) && index_below(j, usize::MAX)
        }
        _ => false,
    })?;
    // zuko's minimum slope: its affine map's A is in the file, its spline's is
    // the format's constant.
    let slope = sd.meta_f32("slope")?.unwrap_or(1e-3);
    if !(slope > 0.0 && slope < 1.0) || (kind == FlowKind::ZukoNsf && slope != 1e-3) {
        return Err(sd.err(format!(
            "slope {slope}: floe maps zuko's splines with slope 1e-3 (its default), MAF with 0 < slope < 1"
        )));
    }
    let d = sd.get("transform.transforms.0.order")?.shape.first().copied().unwrap_or(0);
    if d < 2 {
        return Err(sd.err(format!("{d} features: floe's MADE layers need at least 2")));
    }
    let bound = match opts.bound {
        Some(b) => b,
        None => sd.meta_f32("bound")?.unwrap_or(ZUKO_BOUND),
    };
    if !(bound.is_finite() && bound > 0.0) {
        return Err(sd.err(format!("spline bound {bound}: must be finite and > 0")));
    }
    let mut layers = Vec::new();
    let mut summary = Vec::new();
    let mut context = 0;
    for i in 0..n {
        let pre = format!("transform.transforms.{i}.");
        let order: Vec<usize> = sd.shaped(&format!("{pre}order"), &[d])?.iter().map(|&v| v as usize).collect();
        if !is_permutation(&order, d) {
            return Err(sd.err(format!(
                "{pre}order {order:?} is not a permutation of 0..{d}: zuko transforms with passes < features \
                 (coupling-style) are not supported"
            )));
        }
        // π_t = the feature whose order is t.
        let pi = inverse(&order);
        let dense = hyper(sd, &pre)?;
        let (h, n_in) = (dense[0].1, dense[0].2);
        if n_in < d || (i > 0 && n_in != d + context) {
            return Err(
                sd.err(format!("{pre}hyper takes {n_in} inputs for {d} features and {context} context features"))
            );
        }
        // The context: the hyper network's inputs past the features.
        context = n_in - d;
        let rule = MaskRule::of(true, context);
        if dense[1..dense.len() - 1].iter().any(|x| x.1 != h || x.2 != h) || dense.len() < 2 {
            return Err(sd.err(format!("{pre}hyper: floe's conditioners have equal hidden widths (≥ 1 hidden layer)")));
        }
        let last = &dense[dense.len() - 1];
        if last.2 != h || last.1 % d != 0 {
            return Err(sd.err(format!("{pre}hyper: last layer {}×{} for {d} features", last.1, last.2)));
        }
        let p = last.1 / d;
        let elem = match kind {
            FlowKind::ZukoMaf if p == 2 => Elementwise::Affine {
                clamp: if slope == 1e-3 { ZUKO_NEG_LN_SLOPE } else { -(f64::from(slope).ln()) as f32 },
                zuko: true,
            },
            FlowKind::ZukoNsf if p >= 2 && (p + 1) % 3 == 0 => {
                Elementwise::Spline { bins: (p + 1) / 3, bound, zuko: true }
            }
            _ => {
                return Err(sd.err(format!(
                    "{pre}hyper: {p} parameters per feature is not a zuko {} ({})",
                    if kind == FlowKind::ZukoMaf { "MAF" } else { "NSF" },
                    if kind == FlowKind::ZukoMaf {
                        "2: shift, scale"
                    } else {
                        "3K − 1: widths, heights, derivatives"
                    }
                )))
            }
        };
        debug_assert_eq!(elem.ppd(), if p == 2 { 2 } else { params_per_dim((p + 1) / 3) });
        // Conjugate: inputs and output blocks in the sorted order.
        let mut ws: Vec<(Vec<f32>, Vec<f32>)> = dense.iter().map(|x| (x.3.clone(), x.4.clone())).collect();
        let (w0, _) = &mut ws[0];
        let cols: Vec<usize> = pi.iter().copied().chain(d..n_in).collect();
        *w0 = (0..h).flat_map(|r| cols.iter().map(move |&c| (r, c))).map(|(r, c)| dense[0].3[r * n_in + c]).collect();
        let lw = &last.3;
        let lb = &last.4;
        let (wl, bl) = ws.last_mut().expect("two dense layers at least");
        for (t, &src) in pi.iter().enumerate() {
            for q in 0..p {
                let (to, from) = (t * p + q, src * p + q);
                wl[to * h..(to + 1) * h].copy_from_slice(&lw[from * h..(from + 1) * h]);
                bl[to] = lb[from];
            }
        }
        // floe's MADE degrees must allow every weight zuko's masks kept.
        let nd = ws.len();
        for (k, (w, _)) in ws.iter().enumerate() {
            let cols = if k == 0 { n_in } else { h };
            let layer = MaskLayer::of(k, nd);
            if let Some(j) = w
                .iter()
                .enumerate()
                .position(|(j, &v)| v != 0.0 && !mask_allows_by(rule, layer, d, p, j / cols, j % cols))
            {
                return Err(sd.err(format!(
                    "{pre}hyper dense {k}: weight ({}, {}) connects what MADE's degree rule masks; \
                     this MaskedMLP's hidden degrees are not the ones floe's format fixes",
                    j / cols,
                    j % cols
                )));
            }
        }
        let spec = MlpSpec { hidden: h, blocks: nd - 1, residual: false, tanh, zero_last: true };
        let cond = mlp(&spec, n_in, d * p, Some((d, p, rule)), &ws, device)?;
        layers.push(permute(pi.clone()));
        layers.push(Layer::Made(Made { mlp: cond, dim: d, elem, spec }));
        layers.push(permute(order.clone()));
        summary.push(format!(
            "transform {i}: order {order:?} → MADE {} ({} × {h}, {}) between permutations",
            match elem {
                Elementwise::Spline { bins, .. } => format!("spline K = {bins}, B = {bound}"),
                Elementwise::Affine { .. } => "affine".into(),
            },
            nd - 1,
            if tanh { "tanh" } else { "ReLU" }
        ));
    }
    let base = base(sd, d, device)?;
    summary.push(format!("base: {}", if base.kind == BaseKind::StdNormal { "N(0, I)" } else { "diagonal normal" }));
    if context > 0 {
        summary.push(format!("context: {context} features (appended to every hyper network's input)"));
    }
    Ok(Imported { flow: Flow { layers, base, dim: d, context_dim: context }, summary })
}

/// How many `{prefix}{i}{suffix}` tensors exist for i = 0, 1, ….
pub(super) fn count(sd: &StateDict, prefix: &str, suffix: &str) -> usize {
    (0..).take_while(|i| sd.tensors.contains_key(&format!("{prefix}{i}{suffix}"))).count()
}

/// The hyper network's dense layers in order: `(index, rows, cols, masked
/// weight, bias)`.
#[allow(clippy::type_complexity)]
fn hyper(sd: &StateDict, pre: &str) -> Result<Vec<(usize, usize, usize, Vec<f32>, Vec<f32>)>> {
    let mut idx: Vec<usize> = sd
        .names_under(&format!("{pre}hyper."))
        .filter_map(|k| k.strip_prefix(&format!("{pre}hyper.")).and_then(|r| r.strip_suffix(".weight")))
        .filter_map(|i| i.parse().ok())
        .collect();
    idx.sort_unstable();
    // zuko's Sequential alternates MaskedLinear and activation: 0, 2, 4, ….
    if idx.iter().enumerate().any(|(k, &i)| i != 2 * k) {
        return Err(sd.err(format!("{pre}hyper: dense layers at {idx:?}, not MaskedMLP's 0, 2, 4, …")));
    }
    if idx.len() < 2 {
        return Err(sd.err(format!("{pre}hyper: fewer than two dense layers")));
    }
    let mut out = Vec::new();
    for i in idx {
        let w = sd.get(&format!("{pre}hyper.{i}.weight"))?;
        let [rows, cols] = w.shape[..] else {
            return Err(sd.err(format!("{pre}hyper.{i}.weight: shape {:?}", w.shape)));
        };
        let b = sd.shaped(&format!("{pre}hyper.{i}.bias"), &[rows])?;
        let mut v = w.values.clone();
        if let Some(m) = sd.tensors.get(&format!("{pre}hyper.{i}.mask")) {
            if m.shape != w.shape {
                return Err(sd.err(format!("{pre}hyper.{i}.mask: shape {:?} for a {rows}×{cols} weight", m.shape)));
            }
            for (x, &k) in v.iter_mut().zip(&m.values) {
                if k == 0.0 {
                    *x = 0.0;
                }
            }
        }
        out.push((i, rows, cols, v, b.to_vec()));
    }
    Ok(out)
}

/// `base.loc`, `base.scale`: N(0, I) when they are 0 and 1, else a diagonal normal.
fn base(sd: &StateDict, d: usize, device: &Device) -> Result<BaseDist> {
    let (loc, scale) = (sd.shaped("base.loc", &[d])?, sd.shaped("base.scale", &[d])?);
    if let Some(s) = scale.iter().find(|&&s| !(s > 0.0 && s.is_finite())) {
        return Err(sd.err(format!("base.scale holds {s}: scales must be finite and > 0")));
    }
    if loc.iter().all(|&v| v == 0.0) && scale.iter().all(|&v| v == 1.0) {
        return Ok(BaseDist::new(BaseKind::StdNormal, d, 0, device));
    }
    let mut b = BaseDist::new(BaseKind::DiagNormal, d, 0, device);
    let t = |v: Vec<f32>| burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(v, [d]), device));
    b.loc = Some(t(loc.to_vec()));
    b.log_scale = Some(t(scale.iter().map(|s| s.ln()).collect()));
    Ok(b)
}
