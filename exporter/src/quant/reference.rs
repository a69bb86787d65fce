//! Reference arithmetic of quantized conditioners, written from docs/FORMAT.md
//! independently of the runtime's kernels: the oracle of the bit-exact check.

use floe_runtime::format::{bf16_to_f32, Precision};

use crate::error::{FloeError, Result};
use crate::freeze::{FrozenLayer, FrozenTensor, Payload};

fn payload<'a, T>(t: &'a FrozenTensor, pick: fn(&'a Payload) -> Option<&'a [T]>) -> Result<&'a [T]> {
    pick(&t.data).ok_or(FloeError::Internal("quantized layer: unexpected tensor dtype"))
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
    Err(FloeError::Internal("int8 conditioner without layers"))
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
    match layer.precision {
        Precision::Int8 => ref_int8(layer, input),
        Precision::W8 => ref_w8(layer, input),
        Precision::F32 => Err(FloeError::Internal("reference: not a quantized layer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
