//! Post-training quantization of a frozen model: int8 (weights and activations)
//! or w8 (weights only), per-layer mixed precision decided on validation NLL, and
//! an independent reference of the quantized arithmetic that must reproduce the
//! runtime's conditioner outputs bit for bit before a file is written.
//!
//! The scheme (docs/FORMAT.md, "Quantized conditioners"): weights symmetric int8
//! per output channel with a bf16 scale rounded *up* (so `|w| / s ≤ 127`);
//! int8 activations asymmetric per tensor, ranges from calibration rows (min/max,
//! widened to contain 0); int32 biases at scale `s_in · s_w`; requantization by a
//! Q31 multiplier and shift derived from the f32 `s_w · (s_in / s_out)`, one
//! rounding. Only conditioners are quantized: the spline/affine maps, LU layers
//! and the base density stay f32 (they are a small share of bytes and MACs, and
//! the log-determinant needs f32).

use std::collections::BTreeMap;

use floe_runtime::format::{bf16_to_f32, Activation, FLAG_INT8, FLAG_W8};
use floe_runtime::Model;

use crate::error::{FloeError, Result};
use crate::writer::{AlignedBytes, FrozenLayer, FrozenModel, FrozenTensor, Payload};

/// What `floe freeze --quantize` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantMode {
    /// int8 weights and activations, int32 accumulation (plain ReLU conditioners;
    /// others fall back to w8).
    Int8,
    /// int8 weights, f32 activations.
    W8,
}

impl QuantMode {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            QuantMode::Int8 => "int8",
            QuantMode::W8 => "w8",
        }
    }
}

/// Rows in data units: `x` (n x D) and context `c` (n x C).
#[derive(Debug, Clone, Copy)]
pub struct RowSet<'a> {
    /// Data, row-major.
    pub x: &'a [f32],
    /// Context, row-major (empty without context).
    pub c: &'a [f32],
}

/// Settings of [`quantize`].
#[derive(Debug, Clone, Copy)]
pub struct QuantConfig {
    /// Target mode.
    pub mode: QuantMode,
    /// A layer stays f32 if quantizing it alone raises validation NLL by more than
    /// this (nats/dim).
    pub max_layer_cost: f64,
}

/// The decision for one conditioned layer.
#[derive(Debug, Clone)]
pub struct LayerChoice {
    /// Layer index in the file.
    pub layer: usize,
    /// Layer kind name.
    pub kind: &'static str,
    /// The mode it was written in (`None`: kept f32).
    pub mode: Option<QuantMode>,
    /// Validation NLL increase with only this layer quantized, nats/dim.
    pub cost: f64,
    /// Conditioner bytes in f32 and quantized.
    pub bytes: (usize, usize),
    /// Why (fallbacks and refusals).
    pub note: String,
}

/// A quantized model and how it was made.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The model as written.
    pub model: FrozenModel,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// One entry per conditioned layer.
    pub choices: Vec<LayerChoice>,
    /// Validation NLL (nats/dim, data units) of the f32 and the quantized model.
    pub val_nll: (f64, f64),
    /// Conditioner outputs compared bit for bit with the reference.
    pub checked_values: usize,
    /// Rows whose quantized `log p` (runtime) equals the simulated one bit for bit.
    pub checked_rows: usize,
}

/// Round a non-negative scale up to a bf16 (so quantized weights stay in range).
pub fn bf16_up(v: f32) -> u16 {
    if !(v > 0.0) {
        return 0;
    }
    let bits = v.to_bits();
    let hi = (bits >> 16) as u16;
    if bits & 0xFFFF != 0 {
        hi + 1
    } else {
        hi
    }
}

/// A dense layer of a frozen f32 conditioner.
struct Dense<'a> {
    w: &'a [f32],
    b: &'a [f32],
    rows: usize,
    cols: usize,
}

fn denses(layer: &FrozenLayer) -> Result<Vec<Dense<'_>>> {
    if layer.quant != 0 || !layer.tensors.len().is_multiple_of(2) {
        return Err(FloeError::Model("quantize: expected an f32 conditioner".into()));
    }
    Ok(layer
        .tensors
        .chunks_exact(2)
        .map(|p| Dense { w: p[0].f32s(), b: p[1].f32s(), rows: p[0].rows, cols: p[0].cols })
        .collect())
}

/// Per-row symmetric int8 weights: scale `s_i = bf16_up(max(max_j |w_ij| / 127, floor_i))`.
fn quantize_rows(d: &Dense<'_>, floor: &[f64]) -> (Vec<i8>, Vec<u16>) {
    let mut q = Vec::with_capacity(d.w.len());
    let mut s = Vec::with_capacity(d.rows);
    for (i, row) in d.w.chunks_exact(d.cols).enumerate() {
        let amax = row.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        let scale = bf16_up(((amax / 127.0).max(floor.get(i).copied().unwrap_or(0.0))) as f32);
        let sf = bf16_to_f32(scale) as f64;
        for &v in row {
            let r = if sf > 0.0 { (v as f64 / sf).round().clamp(-127.0, 127.0) } else { 0.0 };
            q.push(r as i8);
        }
        s.push(scale);
    }
    (q, s)
}

fn w8_layer(layer: &FrozenLayer) -> Result<FrozenLayer> {
    let mut tensors = Vec::new();
    for d in denses(layer)? {
        let (q, s) = quantize_rows(&d, &[]);
        tensors.push(FrozenTensor { rows: d.rows, cols: d.cols, data: Payload::I8(q) });
        tensors.push(FrozenTensor::column(Payload::BF16(s)));
        tensors.push(FrozenTensor::vector(d.b.to_vec()));
    }
    Ok(FrozenLayer { quant: FLAG_W8, tensors, ..layer.clone() })
}

/// 2^30: the largest |int32 bias| the runtime accepts.
const TWO30: f64 = (1u64 << 30) as f64;

/// Asymmetric int8 parameters `(scale, zero point)` of a range (widened to hold 0).
fn act_params(lo: f64, hi: f64) -> (f64, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi - lo > 0.0 { (hi - lo) / 255.0 } else { 1.0 / 255.0 };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

/// int8 conditioner from calibration inputs, or why it cannot be int8.
fn int8_layer(layer: &FrozenLayer, calib: &[Vec<f32>]) -> std::result::Result<FrozenLayer, String> {
    if layer.residual {
        return Err("residual conditioner: int8 residual adds are not implemented, w8 instead".into());
    }
    if layer.activation != Activation::Relu {
        return Err("tanh conditioner: no int8 tanh, w8 instead".into());
    }
    if calib.is_empty() {
        return Err("no calibration rows, w8 instead".into());
    }
    let ds = denses(layer).map_err(|e| e.to_string())?;
    // Ranges: the input, then every hidden dense's output after ReLU (f64 forward).
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); ds.len()];
    for input in calib {
        let mut h: Vec<f64> = input.iter().map(|&v| v as f64).collect();
        for (k, d) in ds.iter().enumerate() {
            let r = &mut ranges[k];
            for &v in &h {
                r.0 = r.0.min(v);
                r.1 = r.1.max(v);
            }
            if k + 1 == ds.len() {
                break;
            }
            h = (0..d.rows)
                .map(|i| {
                    let s: f64 = (0..d.cols).map(|j| d.w[i * d.cols + j] as f64 * h[j]).sum::<f64>() + d.b[i] as f64;
                    s.max(0.0)
                })
                .collect();
        }
    }
    let params: Vec<(f64, i32)> = ranges.iter().map(|&(lo, hi)| act_params(lo, hi)).collect();
    let inv_s0 = (1.0 / params[0].0) as f32;
    // The input scale the runtime effectively uses is 1 / inv_s0.
    let s_in: Vec<f64> = std::iter::once(1.0 / inv_s0 as f64).chain(params.iter().skip(1).map(|p| p.0)).collect();
    let mut table = vec![inv_s0, params[0].1 as f32];
    let mut tensors = Vec::new();
    let last = ds.len() - 1;
    for (k, d) in ds.iter().enumerate() {
        // Scales large enough that the int32 bias fits in ±2^30.
        let floor: Vec<f64> = d.b.iter().map(|&b| (b as f64).abs() / (s_in[k] * TWO30)).collect();
        let (q, s) = quantize_rows(d, &floor);
        let bias: Vec<i32> =
            d.b.iter()
                .zip(&s)
                .map(|(&b, &sc)| {
                    let denom = s_in[k] * bf16_to_f32(sc) as f64;
                    if denom > 0.0 {
                        (b as f64 / denom).round().clamp(-TWO30, TWO30) as i32
                    } else {
                        0
                    }
                })
                .collect();
        if k < last {
            table.push((s_in[k] / s_in[k + 1]) as f32);
            table.push(params[k + 1].1 as f32);
        } else {
            table.push(s_in[k] as f32);
            table.push(0.0);
        }
        tensors.push(FrozenTensor { rows: d.rows, cols: d.cols, data: Payload::I8(q) });
        tensors.push(FrozenTensor::column(Payload::BF16(s)));
        tensors.push(FrozenTensor::column(Payload::I32(bias)));
    }
    // Extreme calibration ranges can push a scale or ratio out of f32 range:
    // such a layer is not int8-representable; fall back to w8.
    if !table.iter().all(|v| v.is_finite()) || !table.chunks(2).all(|r| r[0] > 0.0) {
        return Err("activation scales out of f32 range, w8 instead".into());
    }
    let scales_ok = tensors.iter().all(|t| match &t.data {
        Payload::BF16(v) => v.iter().all(|&b| bf16_to_f32(b).is_finite()),
        _ => true,
    });
    if !scales_ok {
        return Err("weight scales out of range, w8 instead".into());
    }
    let rows = table.len() / 2;
    tensors.insert(0, FrozenTensor::matrix(rows, 2, table));
    Ok(FrozenLayer { quant: FLAG_INT8, tensors, ..layer.clone() })
}

// ---------------------------------------------------------------------------
// Reference arithmetic (written from docs/FORMAT.md, independently of the
// runtime's kernels) for the bit-exact check.

fn payload<'a, T>(t: &'a FrozenTensor, pick: fn(&'a Payload) -> Option<&'a [T]>) -> Result<&'a [T]> {
    pick(&t.data).ok_or_else(|| FloeError::Model("quantized layer: unexpected tensor dtype".into()))
}

fn as_i8(p: &Payload) -> Option<&[i8]> {
    if let Payload::I8(v) = p {
        Some(v)
    } else {
        None
    }
}
fn as_i32(p: &Payload) -> Option<&[i32]> {
    if let Payload::I32(v) = p {
        Some(v)
    } else {
        None
    }
}
fn as_bf16(p: &Payload) -> Option<&[u16]> {
    if let Payload::BF16(v) = p {
        Some(v)
    } else {
        None
    }
}
fn as_f32(p: &Payload) -> Option<&[f32]> {
    if let Payload::F32(v) = p {
        Some(v)
    } else {
        None
    }
}

/// `round(acc · real)` the fixed-point way: `real`'s 24-bit significand as a Q31
/// multiplier, one rounding half up, saturated.
fn ref_requantize(acc: i32, real: f32) -> i32 {
    let bits = real.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i64;
    if bits >> 31 != 0 || exp == 0 || exp == 0xFF {
        return 0;
    }
    let significand = ((bits & 0x7F_FFFF) | 0x80_0000) as i128; // real = significand · 2^(exp − 150)
    let prod = acc as i128 * significand;
    let shift = 150 - exp; // right shift
    let r = if shift > 0 { (prod + (1i128 << (shift - 1))) >> shift } else { prod << (-shift).min(64) };
    r.clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

fn ref_int8(layer: &FrozenLayer, input: &[f32]) -> Result<Vec<f32>> {
    let table = payload(&layer.tensors[0], as_f32)?;
    let n_dense = (layer.tensors.len() - 1) / 3;
    let zp0 = table[1] as i32;
    let mut x: Vec<i64> = input
        .iter()
        .map(|&v| {
            let q = ((v * table[0]).round().clamp(-512.0, 512.0) as i32 + zp0).clamp(-128, 127);
            (q - zp0) as i64
        })
        .collect();
    for k in 0..n_dense {
        let t = &layer.tensors[1 + 3 * k..4 + 3 * k];
        let (w, s, b) = (payload(&t[0], as_i8)?, payload(&t[1], as_bf16)?, payload(&t[2], as_i32)?);
        let cols = t[0].cols;
        let acc: Vec<i32> = (0..t[0].rows)
            .map(|i| (b[i] as i64 + (0..cols).map(|j| w[i * cols + j] as i64 * x[j]).sum::<i64>()) as i32)
            .collect();
        let (ratio, zp) = (table[2 + 2 * k], table[3 + 2 * k] as i32);
        if k + 1 < n_dense {
            x = acc
                .iter()
                .zip(s)
                .map(|(&a, &sc)| {
                    let q = (ref_requantize(a, bf16_to_f32(sc) * ratio) as i64 + zp as i64).clamp(zp as i64, 127);
                    q - zp as i64
                })
                .collect();
        } else {
            return Ok(acc.iter().zip(s).map(|(&a, &sc)| (a as f32 * bf16_to_f32(sc)) * ratio).collect());
        }
    }
    Err(FloeError::Model("int8 conditioner without layers".into()))
}

fn ref_w8(layer: &FrozenLayer, input: &[f32]) -> Result<Vec<f32>> {
    let dense = |k: usize, x: &[f32]| -> Result<Vec<f32>> {
        let t = &layer.tensors[3 * k..3 * k + 3];
        let (w, s, b) = (payload(&t[0], as_i8)?, payload(&t[1], as_bf16)?, payload(&t[2], as_f32)?);
        let cols = t[0].cols;
        Ok((0..t[0].rows)
            .map(|i| {
                let mut acc = 0.0f32;
                for j in 0..cols {
                    acc += w[i * cols + j] as f32 * x[j];
                }
                acc * bf16_to_f32(s[i]) + b[i]
            })
            .collect())
    };
    let act = |mut v: Vec<f32>| {
        floe_runtime::kernels::activate(layer.activation, &mut v);
        v
    };
    let n_dense = layer.tensors.len() / 3;
    if layer.residual {
        let mut h = dense(0, input)?;
        for blk in 0..(n_dense - 2) / 2 {
            let t = act(dense(1 + 2 * blk, &act(h.clone()))?);
            let u = dense(2 + 2 * blk, &t)?;
            for (hi, ui) in h.iter_mut().zip(u) {
                *hi += ui;
            }
        }
        dense(n_dense - 1, &h)
    } else {
        let mut h = act(dense(0, input)?);
        for k in 1..n_dense - 1 {
            h = act(dense(k, &h)?);
        }
        dense(n_dense - 1, &h)
    }
}

/// The reference output of a quantized conditioner.
pub fn reference(layer: &FrozenLayer, input: &[f32]) -> Result<Vec<f32>> {
    match layer.quant {
        FLAG_INT8 => ref_int8(layer, input),
        FLAG_W8 => ref_w8(layer, input),
        _ => Err(FloeError::Model("reference: not a quantized layer".into())),
    }
}

// ---------------------------------------------------------------------------

fn load<'a>(bytes: &'a AlignedBytes) -> Result<Model<'a>> {
    Model::load(bytes).map_err(|err| FloeError::Runtime { path: "<quantized model>".into(), err })
}

fn rt_err(err: floe_runtime::Error) -> FloeError {
    FloeError::Runtime { path: "<quantized model>".into(), err }
}

/// Mean `-log p` per dimension (data units) of `rows` under a model.
pub fn nll(model: &FrozenModel, rows: RowSet<'_>) -> Result<f64> {
    let bytes = AlignedBytes::new(&model.to_bytes()?);
    let m = load(&bytes)?;
    let lp = crate::freeze::runtime_log_prob(&m, rows.x, rows.c).map_err(rt_err)?;
    Ok(-lp.iter().sum::<f64>() / lp.len().max(1) as f64 / m.dim() as f64)
}

/// Run the runtime with a tracer over `rows`; `visit(layer, input, output)` may
/// rewrite the output. Returns every row's `log p`.
fn trace(model: &Model<'_>, rows: RowSet<'_>, visit: &mut floe_runtime::Trace<'_>) -> Result<Vec<f32>> {
    let (d, cd) = (model.dim(), model.context_dim());
    let mut scratch = vec![0.0f32; model.scratch_len()];
    (0..rows.x.len() / d)
        .map(|i| {
            let ctx = if cd == 0 { &[][..] } else { &rows.c[i * cd..(i + 1) * cd] };
            model.log_prob_traced(&rows.x[i * d..(i + 1) * d], ctx, &mut scratch, visit).map_err(rt_err)
        })
        .collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn conditioner_bytes(layer: &FrozenLayer) -> usize {
    layer.tensors.iter().map(|t| t.bytes().len()).sum()
}

/// Quantize `model`: calibrate on `calib`, decide per layer on `val`, check the
/// runtime against the reference on `check`.
pub fn quantize(
    model: &FrozenModel,
    cfg: QuantConfig,
    calib: RowSet<'_>,
    val: RowSet<'_>,
    check: RowSet<'_>,
) -> Result<Quantized> {
    let f32_bytes = AlignedBytes::new(&model.to_bytes()?);
    let f32_model = load(&f32_bytes)?;
    // Conditioner inputs on the calibration rows (f32 model), per layer.
    let mut inputs: BTreeMap<u16, Vec<Vec<f32>>> = BTreeMap::new();
    trace(&f32_model, calib, &mut |l, input, _| inputs.entry(l).or_default().push(input.to_vec()))?;
    let base_nll = nll(model, val)?;

    let mut choices = Vec::new();
    let mut final_layers = model.layers.clone();
    for (i, layer) in model.layers.iter().enumerate() {
        if layer.hidden == 0 {
            continue;
        }
        let mut note = String::new();
        let candidate = match cfg.mode {
            QuantMode::W8 => w8_layer(layer)?,
            QuantMode::Int8 => {
                let calib_in = inputs.get(&(i as u16)).map(Vec::as_slice).unwrap_or(&[]);
                match int8_layer(layer, calib_in) {
                    Ok(l) => l,
                    Err(why) => {
                        note = why;
                        w8_layer(layer)?
                    }
                }
            }
        };
        let mode = if candidate.quant == FLAG_INT8 { QuantMode::Int8 } else { QuantMode::W8 };
        let mut trial = model.clone();
        trial.layers[i] = candidate.clone();
        let cost = nll(&trial, val)? - base_nll;
        let bytes = (conditioner_bytes(layer), conditioner_bytes(&candidate));
        let keep = cost <= cfg.max_layer_cost;
        if keep {
            final_layers[i] = candidate;
        } else {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!(
                "kept f32: {} costs {cost:.4} nats/dim > budget {:.4}",
                mode.name(),
                cfg.max_layer_cost
            ));
        }
        choices.push(LayerChoice { layer: i, kind: layer.kind.name(), mode: keep.then_some(mode), cost, bytes, note });
    }
    let out = FrozenModel { layers: final_layers, ..model.clone() };
    let bytes = out.to_bytes()?;
    let q_nll = nll(&out, val)?;

    // 1. The runtime's conditioner outputs must equal the reference's, bit for bit.
    let buf = AlignedBytes::new(&bytes);
    let q_model = load(&buf)?;
    let mut checked = 0usize;
    let mut mismatch: Option<String> = None;
    let q_lp = trace(&q_model, check, &mut |l, input, output| {
        let layer = &out.layers[l as usize];
        if layer.quant == 0 || mismatch.is_some() {
            return;
        }
        match reference(layer, input) {
            Ok(r) if same_bits(&r, output) => checked += r.len(),
            Ok(r) => {
                let k = r.iter().zip(output.iter()).position(|(a, b)| a.to_bits() != b.to_bits()).unwrap_or(0);
                mismatch =
                    Some(format!("layer {l}: runtime output {k} = {:?}, reference {:?}", output.get(k), r.get(k)));
            }
            Err(e) => mismatch = Some(e.to_string()),
        }
    })?;
    // 2. Simulated quantization: the f32 model, its quantized layers' conditioner
    //    outputs replaced by the reference arithmetic on their inputs, must give
    //    the quantized runtime's log p bit for bit, row by row.
    let sim_lp = trace(&f32_model, check, &mut |l, input, output| {
        let layer = &out.layers[l as usize];
        if layer.quant == 0 || mismatch.is_some() {
            return;
        }
        match reference(layer, input) {
            Ok(r) if r.len() == output.len() => output.copy_from_slice(&r),
            Ok(_) => mismatch = Some(format!("layer {l}: reference output has the wrong length")),
            Err(e) => mismatch = Some(e.to_string()),
        }
    })?;
    if mismatch.is_none() {
        if let Some(i) = q_lp.iter().zip(&sim_lp).position(|(a, b)| a.to_bits() != b.to_bits()) {
            mismatch = Some(format!("row {i}: runtime log p {} != simulated {}", q_lp[i], sim_lp[i]));
        }
    }
    if let Some(m) = mismatch {
        return Err(FloeError::Parity(format!("quantized model differs from the simulated quantization: {m}")));
    }
    Ok(Quantized {
        model: out,
        bytes,
        choices,
        val_nll: (base_nll, q_nll),
        checked_values: checked,
        checked_rows: q_lp.len(),
    })
}

/// Area under the ROC curve of `scores` (higher = more anomalous) against
/// `labels` (true = anomaly), ties counted half (Mann–Whitney U).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut n_pos) = (0.0f64, 0usize);
    let mut k = 0;
    while k < idx.len() {
        let mut e = k;
        while e + 1 < idx.len() && scores[idx[e + 1]] == scores[idx[k]] {
            e += 1;
        }
        let avg = (k + e) as f64 / 2.0 + 1.0;
        for &i in &idx[k..=e] {
            if labels[i] {
                rank_sum += avg;
                n_pos += 1;
            }
        }
        k = e + 1;
    }
    let n_neg = scores.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    Some((rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_up_never_rounds_down() {
        for &v in &[1.0f32, 0.1, 3.3e-5, 7.77, 1e-30] {
            let b = bf16_to_f32(bf16_up(v));
            assert!(b >= v && b <= v * 1.008, "{v} -> {b}");
        }
        assert_eq!(bf16_up(0.0), 0);
    }

    #[test]
    fn reference_requantize_matches_the_runtime() {
        use floe_runtime::kernels::quant::{multiplier, requantize};
        for &real in &[0.5f32, 1e-3, 0.0371, 2.5, 1e-7] {
            let (m, s) = multiplier(real);
            for acc in [-1_000_000, -777, -3, 0, 1, 2, 12_345, 1 << 29] {
                assert_eq!(ref_requantize(acc, real), requantize(acc, m, s), "{real} {acc}");
            }
        }
    }

    #[test]
    fn auroc_counts_ties_half() {
        assert_eq!(auroc(&[1.0, 2.0, 3.0, 4.0], &[false, false, true, true]), Some(1.0));
        assert_eq!(auroc(&[1.0, 1.0], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[4.0, 3.0, 2.0, 1.0], &[false, false, true, true]), Some(0.0));
        assert_eq!(auroc(&[1.0], &[true]), None);
    }
}
