//! `floe import`: flows trained in PyTorch — zuko's NSF / MAF and nflows'
//! spline coupling flows — read from their `state_dict()` (safetensors, or a
//! `torch.save` pickle) through Burn's `burn-store`, mapped exactly onto floe's
//! Burn modules ([`crate::flow`]), and frozen with the usual parity check.
//!
//! The mapping is exact (for the libraries' default constants, which a state
//! dict does not record), not approximate: zuko's parameterization of the
//! spline and affine maps is its own layer flag in the file
//! (`floe_runtime::format::FLAG_ZUKO`), evaluated by the runtime; nflows'
//! spline is floe's, up to two constants folded into the last dense layer (the
//! `1/√H` scale of its bin logits and the derivative shift). Feature orders
//! and coupling masks become permutation layers around the transform.
//! `tests/tests/all/interop.rs` checks the runtime against the libraries' own
//! `log_prob` on committed fixtures (`cargo xtask interop` makes them).

mod nflows;
mod state;
mod zuko;

use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use floe_runtime::format::made::MaskRule;
use floe_runtime::format::Precision;
use floe_runtime::Rng;

pub use state::StateDict;

use crate::data::{Rows, Standardization};
use crate::error::{FloeError, Result};
use crate::flow::{Flow, Layer, Mlp, MlpSpec, Permute};
use crate::freeze::{self, LoadedModel, Parity, PARITY_TOLERANCE};

/// The library a state dict comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Library {
    /// probabilists/zuko 1.x: `zuko.flows.NSF` and `zuko.flows.MAF`.
    Zuko,
    /// bayesiains/nflows 0.14: `Flow` of permutations and
    /// `PiecewiseRationalQuadraticCouplingTransform` with `ResidualNet`
    /// conditioners, linear tails, over a `StandardNormal`.
    Nflows,
}

impl Library {
    /// The name the library goes by.
    pub fn name(self) -> &'static str {
        match self {
            Library::Zuko => "zuko",
            Library::Nflows => "nflows",
        }
    }
}

/// What a state dict does not carry. Unset fields come from the file's
/// metadata (`tail_bound`, `bound`, `activation`, `univariate`), then the
/// library's defaults.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// nflows: the spline's `tail_bound` (required: nflows' default is 1).
    /// zuko: the spline's `bound` (zuko's default 5).
    pub bound: Option<f32>,
    /// The conditioner's activation: `relu` (both libraries' default) or `tanh`.
    pub activation: Option<String>,
    /// Which flow the state dict is (metadata `flow`): zuko `nsf` or `maf`,
    /// nflows `rq-coupling`. Required: zuko's NSF, BPF and UNAF, or nflows'
    /// rational-quadratic, linear and quadratic couplings, have the same tensor
    /// names and can have the same shapes.
    pub flow: Option<String>,
}

/// The flows `floe import` maps, by the name `--flow` and the metadata use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowKind {
    /// zuko `NSF`: MADE rational-quadratic splines.
    ZukoNsf,
    /// zuko `MAF`: MADE affine maps.
    ZukoMaf,
    /// nflows rational-quadratic spline couplings (linear tails).
    NflowsRq,
}

/// The flow kind asked for (option, then metadata), checked against the library.
fn flow_kind(lib: Library, sd: &StateDict, opts: &ImportOptions) -> Result<FlowKind> {
    let name = opts.flow.as_deref().or(sd.metadata.get("flow").map(String::as_str)).map(str::to_ascii_lowercase);
    match (lib, name.as_deref()) {
        (Library::Zuko, Some("nsf")) => Ok(FlowKind::ZukoNsf),
        (Library::Zuko, Some("maf")) => Ok(FlowKind::ZukoMaf),
        (Library::Nflows, Some("rq-coupling" | "nsf")) => Ok(FlowKind::NflowsRq),
        (_, None) => Err(sd.err(format!(
            "which {} flow is it? Pass --flow ({}) or save the state dict with metadata `flow`: \
             the tensor names alone do not tell {}",
            lib.name(),
            if lib == Library::Zuko { "nsf or maf" } else { "rq-coupling" },
            if lib == Library::Zuko {
                "NSF from BPF or UNAF"
            } else {
                "rational-quadratic couplings from linear or quadratic ones"
            }
        ))),
        (_, Some(f)) => Err(sd.err(format!(
            "flow {f:?}: floe imports zuko's nsf and maf and nflows' rq-coupling (this is {})",
            lib.name()
        ))),
    }
}

/// Every tensor name of `sd` must match `allowed` (its dot-separated parts):
/// a tensor floe would not read means a structure it does not map (a residual
/// hyper network, an extra transform, a learned base), refused rather than
/// dropped.
pub(crate) fn check_names(sd: &StateDict, what: &str, allowed: impl Fn(&[&str]) -> bool) -> Result<()> {
    match sd.tensors.keys().find(|k| !allowed(&k.split('.').collect::<Vec<_>>())) {
        None => Ok(()),
        Some(k) => Err(sd.err(format!("tensor {k:?} is not part of {what} as floe maps it"))),
    }
}

/// A name part that is an index below `n`.
pub(crate) fn index_below(part: &str, n: usize) -> bool {
    part.parse::<usize>().is_ok_and(|i| i < n) && !part.starts_with('+')
}

/// A flow brought in, before freezing.
#[derive(Debug)]
pub struct Imported {
    /// The flow as floe's Burn modules.
    pub flow: Flow,
    /// One line per source transform: what it became.
    pub summary: Vec<String>,
}

/// Read `path` and map it onto floe's modules.
pub fn import(lib: Library, path: &Path, opts: &ImportOptions, device: &Device) -> Result<Imported> {
    import_state(lib, &StateDict::read(path)?, opts, device)
}

/// Map a state dict already read onto floe's modules.
pub fn import_state(lib: Library, sd: &StateDict, opts: &ImportOptions, device: &Device) -> Result<Imported> {
    if let Some(l) = sd.metadata.get("library") {
        if l != lib.name() {
            return Err(sd.err(format!("the file's metadata names library {l:?}, not {}", lib.name())));
        }
    }
    let tanh = match opts.activation.as_deref().or(sd.metadata.get("activation").map(String::as_str)) {
        None | Some("relu") => false,
        Some("tanh") => true,
        Some(a) => return Err(sd.err(format!("activation {a:?}: floe's conditioners have relu or tanh"))),
    };
    let kind = flow_kind(lib, sd, opts)?;
    let mut imported = match lib {
        Library::Zuko => zuko::import(sd, opts, kind, tanh, device)?,
        Library::Nflows => nflows::import(sd, opts, tanh, device)?,
    };
    imported.flow.layers = merge_permutations(std::mem::take(&mut imported.flow.layers), imported.flow.dim);
    Ok(imported)
}

/// Rows the parity check runs on (contexts, for a conditional flow, drawn from
/// N(0, I): the libraries' flows take standardized contexts): `n` rows where the model puts its mass —
/// base draws with every coordinate within ±3 standard deviations (redrawn
/// beyond; `base` = a diagonal normal base's `(loc, scale)`), mapped to data
/// space by the runtime's inverse — and `n` standard normal rows scaled by 2,
/// all seeded. (Untruncated samples reach the far tails, where a MAF's scales of
/// up to e^6.9 leave no f32 evaluation, Burn's, the runtime's or the library's,
/// within the parity rule of the exact value.)
pub fn check_rows(loaded: &LoadedModel, n: usize, base: Option<(&[f32], &[f32])>) -> Result<Rows> {
    let m = loaded.model();
    let (d, c) = (m.dim(), m.context_dim());
    let mut rng = Rng::new(0x1A9_0F7);
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let (mut x, mut cs) = (Vec::with_capacity(2 * n * d), Vec::with_capacity(2 * n * c));
    let (mut z, mut row, mut ctx) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; c]);
    for _ in 0..n {
        ctx.iter_mut().for_each(|v| *v = rng.normal());
        for (j, v) in z.iter_mut().enumerate() {
            *v = rng.normal();
            while v.abs() > 3.0 {
                *v = rng.normal();
            }
            if let Some((loc, scale)) = base {
                *v = loc[j] + scale[j] * *v;
            }
        }
        m.inverse(&z, &ctx, &mut row, &mut scratch)?;
        x.extend_from_slice(&row);
        cs.extend_from_slice(&ctx);
    }
    for _ in 0..n {
        x.extend((0..d).map(|_| 2.0 * rng.normal()));
        cs.extend((0..c).map(|_| rng.normal()));
    }
    Ok(Rows { dim: d, context_dim: c, x, c: cs })
}

/// Freeze an imported flow (identity standardization: the flow's own units) and
/// check the runtime against Burn on [`check_rows`]: the usual parity rule.
pub fn freeze_imported(flow: &Flow) -> Result<(LoadedModel, Parity)> {
    let xs = Standardization::identity(flow.dim);
    let cs = Standardization::identity(flow.context_dim);
    let first = freeze::fold(flow, &xs, &cs)?.load()?;
    let vec = |p: &Option<Param<Tensor<1>>>| p.as_ref().map(|p| crate::flow::math::to_vec(p.val()));
    let (loc, log_scale) = (vec(&flow.base.loc), vec(&flow.base.log_scale));
    let scale = log_scale.map(|l| l.iter().map(|v| v.exp()).collect::<Vec<f32>>());
    let base = match (&loc, &scale) {
        (Some(l), Some(s)) if l.len() == flow.dim && s.len() == flow.dim => Some((l.as_slice(), s.as_slice())),
        _ => None,
    };
    let rows = check_rows(&first, 512, base)?;
    freeze::freeze(flow, &xs, &cs, &rows, PARITY_TOLERANCE)
}

/// `n` rows drawn from the model by the runtime's sampler (seed `seed`; a
/// conditional flow's contexts from N(0, I)).
fn model_samples(loaded: &LoadedModel, n: usize, seed: u64) -> Result<Rows> {
    let m = loaded.model();
    let (d, c) = (m.dim(), m.context_dim());
    let mut rng = Rng::new(seed);
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let (mut row, mut ctx) = (vec![0.0f32; d], vec![0.0f32; c]);
    let (mut x, mut cs) = (Vec::with_capacity(n * d), Vec::with_capacity(n * c));
    for _ in 0..n {
        ctx.iter_mut().for_each(|v| *v = rng.normal());
        m.sample(&mut rng, &ctx, &mut row, &mut scratch)?;
        x.extend_from_slice(&row);
        cs.extend_from_slice(&ctx);
    }
    Ok(Rows { dim: d, context_dim: c, x, c: cs })
}

/// An imported flow quantized without its training data: the int8 activation
/// ranges are calibrated on 2,048 samples of the f32 model itself, each layer's
/// choice (quantized or kept f32, `max_layer_cost` nats/dim) made on 512 more,
/// and the runtime checked bit for bit against the reference arithmetic on
/// another 512 — the model's own distribution standing in for the data it was
/// trained on (give `floe eval` real rows to measure it there).
pub fn quantize_imported(flow: &Flow, precision: Precision, max_layer_cost: f64) -> Result<crate::quant::Quantized> {
    let xs = Standardization::identity(flow.dim);
    let cs = Standardization::identity(flow.context_dim);
    let frozen = freeze::fold(flow, &xs, &cs)?;
    let f32_model = frozen.load()?;
    let calib = model_samples(&f32_model, 2048, 0xCA11B)?;
    let val = model_samples(&f32_model, 512, 0x7A1)?;
    let check = model_samples(&f32_model, 512, 0xC4EC)?;
    crate::quant::quantize(&frozen, crate::quant::QuantConfig { precision, max_layer_cost }, &calib, &val, &check)
}

/// A dense layer from PyTorch's `weight` (`out × in`, row-major) and `bias`.
pub(crate) fn linear(w: &[f32], b: &[f32], n_out: usize, n_in: usize, device: &Device) -> Linear {
    let mut t = vec![0.0f32; n_in * n_out];
    for o in 0..n_out {
        for i in 0..n_in {
            t[i * n_out + o] = w[o * n_in + i];
        }
    }
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(t, [n_in, n_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(b.to_vec(), [n_out]), device))),
    }
}

/// A conditioner of `spec` with the given dense layers (PyTorch layout:
/// `(weight out × in, bias)` each), masked like a MADE layer when `made` is set.
pub(crate) fn mlp(
    spec: &MlpSpec,
    n_in: usize,
    n_out: usize,
    made: Option<(usize, usize, MaskRule)>,
    dense: &[(Vec<f32>, Vec<f32>)],
    device: &Device,
) -> Result<Mlp> {
    let mut m = Mlp::new_by(spec, n_in, n_out, made, device);
    if m.linears.len() != dense.len() {
        return Err(FloeError::Internal("import: dense layer count"));
    }
    for (l, (w, b)) in m.linears.iter_mut().zip(dense) {
        let [i, o] = l.weight.dims();
        if w.len() != i * o || b.len() != o {
            return Err(FloeError::Internal("import: dense layer shape"));
        }
        *l = linear(w, b, o, i, device);
    }
    Ok(m)
}

/// `perm` as a layer (`z_i = x_{perm_i}`).
pub(crate) fn permute(perm: Vec<usize>) -> Layer {
    let reverse = perm.iter().rev().copied().eq(0..perm.len());
    Layer::Permute(Permute { perm, reverse })
}

/// The inverse permutation.
pub(crate) fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (t, &p) in perm.iter().enumerate() {
        inv[p] = t;
    }
    inv
}

/// Compose runs of permutation layers into one, and drop identities: the
/// conjugations around each imported transform mostly cancel.
fn merge_permutations(layers: Vec<Layer>, d: usize) -> Vec<Layer> {
    let mut out: Vec<Layer> = Vec::new();
    let mut pending: Option<Vec<usize>> = None;
    let flush = |out: &mut Vec<Layer>, p: Option<Vec<usize>>| {
        if let Some(p) = p.filter(|p| !p.iter().copied().eq(0..d)) {
            out.push(permute(p));
        }
    };
    for l in layers {
        match l {
            Layer::Permute(p) => {
                // After p1, y_i = x_{p1_i}; after p2, z_i = y_{p2_i} = x_{p1[p2_i]}.
                pending = Some(match pending.take() {
                    None => p.perm,
                    Some(p1) => p.perm.iter().map(|&i| p1[i]).collect(),
                });
            }
            other => {
                flush(&mut out, pending.take());
                out.push(other);
            }
        }
    }
    flush(&mut out, pending);
    out
}

/// Whether `p` is a permutation of `0..d`.
pub(crate) fn is_permutation(p: &[usize], d: usize) -> bool {
    let mut seen = vec![false; d];
    p.len() == d && p.iter().all(|&i| i < d && !std::mem::replace(&mut seen[i], true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_compose_and_cancel() {
        let d = 4;
        let p = vec![2, 0, 3, 1];
        let layers = vec![permute(p.clone()), permute(inverse(&p))];
        assert!(merge_permutations(layers, d).is_empty());
        let q = vec![1, 2, 3, 0];
        let merged = merge_permutations(vec![permute(p.clone()), permute(q.clone())], d);
        let [Layer::Permute(m)] = merged.as_slice() else { panic!("one layer") };
        let x = [10.0, 11.0, 12.0, 13.0];
        let y: Vec<f64> = p.iter().map(|&i| x[i]).collect();
        let z: Vec<f64> = q.iter().map(|&i| y[i]).collect();
        let direct: Vec<f64> = m.perm.iter().map(|&i| x[i]).collect();
        assert_eq!(z, direct);
        assert!(is_permutation(&m.perm, d) && !is_permutation(&[0, 0, 1, 2], d));
        assert!(matches!(
            &merge_permutations(vec![permute(vec![3, 2, 1, 0])], d)[..],
            [Layer::Permute(Permute { reverse: true, .. })]
        ));
    }
}
