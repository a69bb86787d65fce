//! Per-column affine standardization of data (and context).

use serde::{Deserialize, Serialize};

use super::Rows;

/// Per-column affine standardization: the map from data units to the flow's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Column means of the training rows.
    pub mean: Vec<f32>,
    /// Column standard deviations of the training rows. A column whose deviation
    /// is at most 1e-6 of the largest (constant on the training rows) gets 1, so
    /// a value never seen in training stays finitely far away.
    pub std: Vec<f32>,
}

impl Standardization {
    /// Statistics of the rows of a row-major `n x d` matrix.
    pub fn fit(x: &[f32], d: usize) -> Self {
        let n = x.len().checked_div(d).unwrap_or(0);
        let mut mean = vec![0.0f32; d];
        let mut std = vec![1.0f32; d];
        for j in 0..d {
            let m = (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n.max(1) as f64;
            let v = (0..n).map(|i| (x[i * d + j] as f64 - m).powi(2)).sum::<f64>() / n.max(1) as f64;
            mean[j] = m as f32;
            std[j] = v.sqrt() as f32;
        }
        let top = std.iter().cloned().fold(0.0f32, f32::max);
        let floor = top * 1e-6;
        for s in std.iter_mut() {
            if !(*s > floor) {
                *s = 1.0;
            }
        }
        Standardization { mean, std }
    }

    /// Identity (for an empty context).
    pub fn identity(d: usize) -> Self {
        Standardization { mean: vec![0.0; d], std: vec![1.0; d] }
    }

    /// Standardize a row-major matrix.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        if d == 0 {
            return vec![];
        }
        x.iter().enumerate().map(|(k, &v)| (v - self.mean[k % d]) / self.std[k % d]).collect()
    }

    /// `sum(ln std)`: subtract from a standardized log-density to get data units.
    pub fn log_det(&self) -> f64 {
        self.std.iter().map(|&s| (s as f64).ln()).sum()
    }
}

/// Rows standardized by `xs` (data) and `cs` (context).
pub fn standardize(rows: &Rows, xs: &Standardization, cs: &Standardization) -> Rows {
    Rows {
        dim: rows.dim,
        context_dim: rows.context_dim,
        x: xs.apply(&rows.x),
        c: if rows.context_dim > 0 { cs.apply(&rows.c) } else { vec![] },
    }
}
