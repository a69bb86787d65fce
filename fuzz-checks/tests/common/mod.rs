//! What the property and distribution tests share: random linear models (LU,
//! permutation, reversal, ActNorm, a normal or diagonal-normal base), their
//! encoding through `floe_runtime::format::encode`, and a float64 reference of
//! docs/FORMAT.md for them.
#![allow(dead_code)] // each test file uses part of it

use floe_runtime::exporter_hooks::scratch_len;
use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
use floe_runtime::format::{BaseKind, LayerKind, LayerRecord};
use proptest::prelude::*;

/// A layer of a random linear model, with its values.
#[derive(Debug, Clone)]
pub enum Lin {
    /// Packed `lu` (D × D, zero diagonal), `log_diag`, `bias`.
    Lu(Vec<f32>, Vec<f32>, Vec<f32>),
    Permute(Vec<u16>),
    Reverse,
    /// `log_scale`, `shift`.
    ActNorm(Vec<f32>, Vec<f32>),
}

pub fn vals(n: usize, lo: f32, hi: f32) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(lo..hi, n)
}

pub fn layer(d: usize) -> impl Strategy<Value = Lin> {
    prop_oneof![
        (vals(d * d, -0.8, 0.8), vals(d, -0.7, 0.7), vals(d, -1.0, 1.0)).prop_map(move |(mut lu, ld, b)| {
            for k in 0..d {
                lu[k * d + k] = 0.0;
            }
            Lin::Lu(lu, ld, b)
        }),
        Just((0..d as u16).collect::<Vec<u16>>()).prop_shuffle().prop_map(Lin::Permute),
        Just(Lin::Reverse),
        (vals(d, -1.0, 1.0), vals(d, -1.0, 1.0)).prop_map(|(s, t)| Lin::ActNorm(s, t)),
    ]
}

/// A random linear model: D, standardization, a diagonal-normal base (or the
/// standard normal), layers, and an input.
#[derive(Debug, Clone)]
pub struct LinModel {
    pub d: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub base: Option<(Vec<f32>, Vec<f32>)>,
    pub layers: Vec<Lin>,
    pub x: Vec<f32>,
}

pub fn lin_model() -> impl Strategy<Value = LinModel> {
    (1usize..=8).prop_flat_map(|d| {
        (
            vals(d, -5.0, 5.0),
            vals(d, 0.2, 5.0),
            proptest::option::of((vals(d, -1.0, 1.0), vals(d, -1.0, 1.0))),
            proptest::collection::vec(layer(d), 0..=5),
            vals(d, -3.0, 3.0),
        )
            .prop_map(move |(mean, std, base, layers, u)| {
                let x = u.iter().zip(&mean).zip(&std).map(|((u, m), s)| m + u * s).collect();
                LinModel { d, mean, std, base, layers, x }
            })
    })
}

pub fn vector(v: &[f32]) -> TensorRef<'_> {
    TensorRef { rows: v.len() as u32, cols: 1, data: TensorData::F32(v) }
}

/// A file of these records and tensors (no context, no trailer layouts),
/// encoded as the exporter encodes.
pub fn encode(d: usize, base: BaseKind, records: &[LayerRecord], tensors: &[TensorRef<'_>]) -> Vec<u8> {
    let contents = Contents {
        dim: d as u16,
        context_dim: 0,
        base,
        scratch_len: scratch_len(d, 0, None, records) as u32,
        anomaly: None,
        stream: None,
        alarm: None,
        trajectory: None,
        layers: records,
        tensors,
    };
    let mut out = vec![0u8; contents.encoded_len().expect("plan")];
    contents.encode(&mut out).expect("encode");
    out
}

/// The file of a linear model, encoded as the exporter encodes.
pub fn encode_lin(m: &LinModel) -> Vec<u8> {
    let d = m.d;
    let mut tensors = vec![vector(&m.mean), vector(&m.std), vector(&[]), vector(&[])];
    let base = match &m.base {
        Some((loc, ls)) => {
            tensors.push(vector(loc));
            tensors.push(vector(ls));
            BaseKind::DiagNormal
        }
        None => BaseKind::StdNormal,
    };
    let mut records = Vec::new();
    for l in &m.layers {
        let first = tensors.len() as u32;
        let (kind, n) = match l {
            Lin::Lu(lu, ld, b) => {
                tensors.push(TensorRef { rows: d as u32, cols: d as u32, data: TensorData::F32(lu) });
                tensors.push(vector(ld));
                tensors.push(vector(b));
                (LayerKind::LuLinear, 3)
            }
            Lin::Permute(p) => {
                tensors.push(TensorRef { rows: d as u32, cols: 1, data: TensorData::U16(p) });
                (LayerKind::Permute, 1)
            }
            Lin::Reverse => (LayerKind::Reverse, 0),
            Lin::ActNorm(s, t) => {
                tensors.push(vector(s));
                tensors.push(vector(t));
                (LayerKind::ActNorm, 2)
            }
        };
        records.push(LayerRecord::plain(kind, first, n));
    }
    encode(d, base, &records, &tensors)
}

pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// docs/FORMAT.md in float64: the latent and log p(x).
pub fn reference_lin(m: &LinModel) -> (Vec<f64>, f64) {
    let d = m.d;
    let mut z: Vec<f64> =
        m.x.iter().zip(&m.mean).zip(&m.std).map(|((x, mu), s)| (*x as f64 - *mu as f64) / *s as f64).collect();
    let mut logdet: f64 = -m.std.iter().map(|s| (*s as f64).ln()).sum::<f64>();
    for l in &m.layers {
        z = match l {
            Lin::Lu(lu, ld, b) => {
                // y = (U + diag(e^ld)) z, then L y (unit lower) + bias.
                let y: Vec<f64> = (0..d)
                    .map(|i| {
                        (ld[i] as f64).exp() * z[i] + ((i + 1)..d).map(|j| lu[i * d + j] as f64 * z[j]).sum::<f64>()
                    })
                    .collect();
                logdet += ld.iter().map(|v| *v as f64).sum::<f64>();
                (0..d).map(|i| y[i] + (0..i).map(|j| lu[i * d + j] as f64 * y[j]).sum::<f64>() + b[i] as f64).collect()
            }
            Lin::Permute(p) => p.iter().map(|&k| z[k as usize]).collect(),
            Lin::Reverse => (0..d).map(|i| z[d - 1 - i]).collect(),
            Lin::ActNorm(s, t) => {
                logdet += s.iter().map(|v| *v as f64).sum::<f64>();
                z.iter().zip(s).zip(t).map(|((z, s), t)| z * (*s as f64).exp() + *t as f64).collect()
            }
        };
    }
    let base: f64 = match &m.base {
        None => z.iter().map(|z| -0.5 * z * z - HALF_LN_2PI).sum(),
        Some((loc, ls)) => z
            .iter()
            .zip(loc)
            .zip(ls)
            .map(|((z, l), s)| {
                let e = (z - *l as f64) * (-(*s as f64)).exp();
                -0.5 * e * e - *s as f64 - HALF_LN_2PI
            })
            .sum(),
    };
    (z, base + logdet)
}

/// The 1-norm condition number, in float64, of the model's affine map from the
/// standardized row u = (x − mean) / std to z (the reference's Jacobian, column
/// by column; Gauss–Jordan with partial pivoting for the inverse): how much the
/// map's inverse amplifies a relative error in z, in standardized units.
pub fn condition_lin(m: &LinModel) -> f64 {
    let d = m.d;
    let (z0, _) = reference_lin(m);
    // Column j: (z(x + std_j e_j) − z(x)) per unit of u_j (exact up to f64
    // rounding: the map is affine).
    let mut a = vec![0.0f64; d * d];
    for j in 0..d {
        let mut mj = m.clone();
        mj.x[j] += mj.std[j];
        let (zj, _) = reference_lin(&mj);
        let step = (mj.x[j] as f64 - m.x[j] as f64) / m.std[j] as f64;
        for i in 0..d {
            a[i * d + j] = (zj[i] - z0[i]) / step;
        }
    }
    let norm1 = |a: &[f64]| (0..d).map(|j| (0..d).map(|i| a[i * d + j].abs()).sum::<f64>()).fold(0.0, f64::max);
    let mut inv = vec![0.0f64; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    let mut w = a.clone();
    for c in 0..d {
        let p = (c..d).max_by(|&r, &s| w[r * d + c].abs().total_cmp(&w[s * d + c].abs())).unwrap_or(c);
        if w[p * d + c] == 0.0 {
            return f64::INFINITY;
        }
        for k in 0..d {
            w.swap(c * d + k, p * d + k);
            inv.swap(c * d + k, p * d + k);
        }
        let piv = w[c * d + c];
        for k in 0..d {
            w[c * d + k] /= piv;
            inv[c * d + k] /= piv;
        }
        for r in 0..d {
            if r != c {
                let f = w[r * d + c];
                for k in 0..d {
                    w[r * d + k] -= f * w[c * d + k];
                    inv[r * d + k] -= f * inv[c * d + k];
                }
            }
        }
    }
    norm1(&a) * norm1(&inv)
}
