//! The quantization scheme (docs/FORMAT.md, "Quantized conditioners"): weights
//! symmetric int8 per output channel with a bf16 scale rounded *up* (so
//! `|w| / s ≤ 127`); int8 activations asymmetric per tensor, ranges from
//! calibration inputs (min/max, widened to contain 0); int32 biases at scale
//! `s_in · s_w`; requantization by a Q31 multiplier and shift derived from the f32
//! `s_w · (s_in / s_out)`, one rounding.

use floe_runtime::format::{bf16_to_f32, Activation, Precision};

use crate::error::{FloeError, Result};
use crate::freeze::{FrozenLayer, FrozenTensor, Payload};

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
    if layer.precision != Precision::F32 || !layer.tensors.len().is_multiple_of(2) {
        return Err(FloeError::Internal("quantize: expected an f32 conditioner"));
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

pub(crate) fn w8_layer(layer: &FrozenLayer) -> Result<FrozenLayer> {
    let mut tensors = Vec::new();
    for d in denses(layer)? {
        let (q, s) = quantize_rows(&d, &[]);
        tensors.push(FrozenTensor { rows: d.rows, cols: d.cols, data: Payload::I8(q) });
        tensors.push(FrozenTensor::column(Payload::BF16(s)));
        tensors.push(FrozenTensor::vector(d.b.to_vec()));
    }
    Ok(FrozenLayer { precision: Precision::W8, tensors, ..layer.clone() })
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
pub(crate) fn int8_layer(layer: &FrozenLayer, calib: &[Vec<f32>]) -> std::result::Result<FrozenLayer, String> {
    int8_layer_clipped(layer, calib, 0.0)
}

/// [`int8_layer`] with each activation range set to the `clip` and `1 − clip`
/// quantiles of the calibration values instead of their minimum and maximum
/// (`clip` = 0): rare outliers then saturate (the kernels clamp to int8)
/// instead of coarsening the step for every other value.
pub(crate) fn int8_layer_clipped(
    layer: &FrozenLayer,
    calib: &[Vec<f32>],
    clip: f64,
) -> std::result::Result<FrozenLayer, String> {
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
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); if clip > 0.0 { ds.len() } else { 0 }];
    for input in calib {
        let mut h: Vec<f64> = input.iter().map(|&v| v as f64).collect();
        for (k, d) in ds.iter().enumerate() {
            let r = &mut ranges[k];
            for &v in &h {
                r.0 = r.0.min(v);
                r.1 = r.1.max(v);
            }
            if let Some(all) = values.get_mut(k) {
                all.extend_from_slice(&h);
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
    for (r, all) in ranges.iter_mut().zip(values.iter_mut()) {
        all.sort_by(f64::total_cmp);
        let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
        if !all.is_empty() {
            // Clip only a tail that reaches away from zero (a ReLU output's
            // lower end stays its minimum, 0).
            let lo = if r.0 >= 0.0 { r.0 } else { at(clip) };
            let hi = if r.1 <= 0.0 { r.1 } else { at(1.0 - clip) };
            *r = (lo, hi);
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
    Ok(FrozenLayer { precision: Precision::Int8, tensors, ..layer.clone() })
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
}
