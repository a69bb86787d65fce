//! The parity check: the file the runtime loads must reproduce the Burn model's
//! `log p` on held-out rows before anything is reported as frozen.

use floe_runtime::Model;

use super::runtime::log_probs;
use super::{fold, LoadedModel};
use crate::data::{standardize, Rows, Standardization};
use crate::error::{ParityError, Result};
use crate::flow::Flow;
use crate::train::log_prob_rows;

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
    /// Rows whose difference exceeded the plain tolerance and passed only through
    /// the conditioning allowance (see [`freeze`]).
    pub ill_conditioned: usize,
    /// Rows beyond even the allowance for the default tolerance (0 whenever
    /// `freeze` succeeds with it; counted when called with a looser one).
    pub beyond_tolerance: usize,
}

/// How far the runtime's `log p` of row `x` moves when one input coordinate moves
/// by one f32 rounding step (largest over coordinates and both directions): the
/// size of the rounding noise any f32 evaluation of this row carries. The step is
/// the larger of the coordinate's own ulp and the ulp of a unit-scale value in
/// standardized units (`ε·std`): a coordinate near zero carries no tiny ulp
/// through a spline whose knots sit at ±B.
pub fn ulp_sensitivity(model: &Model<'_>, x: &[f32], c: &[f32]) -> std::result::Result<f64, floe_runtime::Error> {
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut y = vec![0.0f32; x.len()];
    floe_runtime::exporter_hooks::ulp_sensitivity(model, x, c, &mut y, &mut scratch)
}

/// Multiple of [`ulp_sensitivity`] a row's difference may reach: one per place an
/// f32 rounding enters the evaluation like an input rounding does — the input and
/// every layer boundary (`n_layers + 1`).
pub fn conditioning_factor(model: &Model<'_>) -> f64 {
    (model.n_layers() + 1) as f64
}

/// Freeze `flow` with its standardizations, load the file back with the runtime,
/// and [`check_parity`] on the check rows (`rows`, raw data units). Returns the
/// loaded file and the measurement.
pub fn freeze(
    flow: &Flow,
    xs: &Standardization,
    cs: &Standardization,
    rows: &Rows,
    tol: f64,
) -> Result<(LoadedModel, Parity)> {
    let loaded = fold(flow, xs, cs)?.load()?;
    let parity = check_parity(flow, xs, cs, &loaded, rows, tol)?;
    Ok((loaded, parity))
}

/// Compare the runtime's `log_prob` of the file `loaded` (frozen from `flow` with
/// `xs`, `cs`) with Burn's on the check rows (`rows`, raw data units). A row passes
/// when `|diff| ≤ tol + PARITY_RELATIVE·|log p| + k·(sensitivity + ε·(|log det| + |log p_base|))`
/// with `k` = layers + 1 and ε the f32 epsilon, where the last term (computed only
/// for rows that fail the first two) is how much the runtime's own answer moves
/// under one-ulp input changes plus the rounding of its two summands: rows whose
/// spline bins have collapsed amplify f32 rounding, and two f32 evaluations in
/// different orders then legitimately differ by more than `tol`. A wrong weight or
/// transform moves every row by far more.
pub fn check_parity(
    flow: &Flow,
    xs: &Standardization,
    cs: &Standardization,
    loaded: &LoadedModel,
    rows: &Rows,
    tol: f64,
) -> Result<Parity> {
    let model = loaded.model();
    let rt = log_probs(model, rows)?;
    let burn: Vec<f64> =
        log_prob_rows(flow, &standardize(rows, xs, cs)).into_iter().map(|v| v - xs.log_det()).collect();
    let mut worst = 0.0f64;
    let (mut ill, mut beyond) = (0, 0);
    for (i, (a, b)) in burn.iter().zip(&rt).enumerate() {
        // Equal infinities agree; a NaN on either side cannot be compared.
        let e = if a == b { 0.0 } else { (a - b).abs() };
        if e.is_nan() {
            if tol.is_infinite() {
                beyond += 1;
                continue;
            }
            return Err(ParityError::NotComparable { row: i, burn: *a, runtime: *b }.into());
        }
        worst = worst.max(e);
        let plain = PARITY_RELATIVE * a.abs();
        let within_default = e <= PARITY_TOLERANCE + plain;
        if within_default && e <= tol + plain {
            continue;
        }
        let (row, ctx) = (rows.x_row(i), rows.c_row(i));
        let s = ulp_sensitivity(model, row, ctx)?;
        // The rounding of the sum itself: log p = log|det| + log p_base, two terms
        // that can be far larger than their sum.
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let mut z = vec![0.0f32; rows.dim];
        let ld = model.forward(row, ctx, &mut z, &mut scratch)? as f64;
        let scale = ld.abs() + (b - ld).abs();
        let allowance = conditioning_factor(model) * (s + f32::EPSILON as f64 * scale);
        if !within_default {
            if e <= PARITY_TOLERANCE + plain + allowance {
                ill += 1;
            } else {
                beyond += 1;
            }
        }
        let allowed = tol + plain + allowance;
        if !(e <= allowed) {
            return Err(ParityError::Exceeded { row: i, burn: *a, runtime: *b, diff: e, allowed, allowance }.into());
        }
    }
    let n = rt.len().max(1) as f64;
    Ok(Parity {
        rows: rt.len(),
        max_abs_diff: worst,
        mean_burn: burn.iter().sum::<f64>() / n,
        mean_runtime: rt.iter().sum::<f64>() / n,
        ill_conditioned: ill,
        beyond_tolerance: beyond,
    })
}
