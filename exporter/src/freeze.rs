//! Freezing: write the file, load it back with `floe-runtime`, and check that it
//! reproduces the Burn model's log-densities before reporting success.

use floe_runtime::Model;

use crate::error::{FloeError, Result};
use crate::model::{Flow, Standardization};
use crate::train::{cpu, log_prob_rows, Rows};
use crate::writer::AlignedBytes;

/// Default parity tolerance, nats per row (absolute part).
pub const PARITY_TOLERANCE: f64 = 1e-4;
/// Relative part of the parity tolerance: a row passes when
/// `|diff| <= tol + PARITY_RELATIVE * |log p|`. Two f32 evaluations that sum their
/// terms in different orders differ by a few ulps of the result, which exceeds
/// 1e-4 nats only for rows with |log p| > ~100 (far outliers).
pub const PARITY_RELATIVE: f64 = 1e-6;

/// What the parity check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    /// Rows compared.
    pub rows: usize,
    /// Largest |log p_burn - log p_runtime| over the rows, nats.
    pub max_abs_diff: f64,
    /// Mean log p from Burn (data units).
    pub mean_burn: f64,
    /// Mean log p from the runtime (data units).
    pub mean_runtime: f64,
}

/// Runtime `log p` (data units) of raw rows.
pub fn runtime_log_prob(model: &Model<'_>, x: &[f32], c: &[f32]) -> std::result::Result<Vec<f64>, floe_runtime::Error> {
    let (d, cd) = (model.dim(), model.context_dim());
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let n = x.len() / d;
    (0..n)
        .map(|i| {
            let ctx = if cd == 0 { &[][..] } else { &c[i * cd..(i + 1) * cd] };
            model.log_prob(&x[i * d..(i + 1) * d], ctx, &mut scratch).map(|v| v as f64)
        })
        .collect()
}

/// Serialize `flow`, reload the bytes with the runtime, and compare `log_prob` on
/// the check rows (raw data units in `x`, `c`). Fails if any row differs by more
/// than `tol` nats. Returns the file bytes and the measurement.
pub fn freeze(
    flow: &Flow,
    xs: &Standardization,
    cs: &Standardization,
    x: &[f32],
    c: &[f32],
    tol: f64,
) -> Result<(Vec<u8>, Parity)> {
    let frozen = flow.frozen(xs, cs)?;
    let bytes = frozen.to_bytes()?;
    let buf = AlignedBytes::new(&bytes);
    let model = Model::load(&buf).map_err(|err| FloeError::Runtime { path: "<frozen model>".into(), err })?;
    let rt = runtime_log_prob(&model, x, c).map_err(|err| FloeError::Runtime { path: "<frozen model>".into(), err })?;
    let rows = Rows { x: xs.apply(x), c: if c.is_empty() { vec![] } else { cs.apply(c) }, n: rt.len() };
    let burn: Vec<f64> = log_prob_rows(flow, &rows, &cpu()).into_iter().map(|v| v - xs.log_det()).collect();
    let mut worst = 0.0f64;
    for (i, (a, b)) in burn.iter().zip(&rt).enumerate() {
        let e = (a - b).abs();
        let allowed = tol + PARITY_RELATIVE * a.abs();
        if !(e <= allowed) {
            return Err(FloeError::Parity(format!(
                "row {i}: Burn log p = {a:.6}, runtime log p = {b:.6} (|diff| {e:.2e} > {allowed:.2e})"
            )));
        }
        worst = worst.max(e);
    }
    let n = rt.len().max(1) as f64;
    Ok((
        bytes,
        Parity {
            rows: rt.len(),
            max_abs_diff: worst,
            mean_burn: burn.iter().sum::<f64>() / n,
            mean_runtime: rt.iter().sum::<f64>() / n,
        },
    ))
}
