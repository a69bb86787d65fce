//! Batches and evaluation of a flow on rows.

use burn::prelude::*;

use crate::data::{Rows, Standardization};
use crate::flow::math::to_vec;
use crate::flow::Flow;

/// The rows `idx` of row-major `rows` (`d` values each) as a `[n, d]` tensor.
pub(crate) fn batch(rows: &[f32], idx: &[usize], d: usize, device: &Device) -> Tensor<2> {
    let mut v = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        v.extend_from_slice(&rows[i * d..(i + 1) * d]);
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), d]), device)
}

/// `log p` of every row (standardized units) under a model, in chunks, on the
/// model's device.
pub fn log_prob_rows(model: &Flow, rows: &Rows) -> Vec<f64> {
    let device = super::device::of(model);
    let device = &device;
    let (d, c) = (model.dim, model.context_dim);
    let mut out = Vec::with_capacity(rows.n());
    let all: Vec<usize> = (0..rows.n()).collect();
    for chunk in all.chunks(4096) {
        let x = batch(&rows.x, chunk, d, device);
        let ctx = (c > 0).then(|| batch(&rows.c, chunk, c, device));
        out.extend(to_vec(model.log_prob(x, ctx)).into_iter().map(|v| v as f64));
    }
    out
}

/// Mean NLL in nats per dimension, data units.
pub fn nll_per_dim(lp_std: &[f64], xs: &Standardization) -> f64 {
    let d = xs.mean.len() as f64;
    let mean = lp_std.iter().sum::<f64>() / lp_std.len().max(1) as f64;
    (-(mean - xs.log_det())) / d
}
