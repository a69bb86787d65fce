//! A checkpoint quantized and measured: what `floe freeze --quantize` reports.

use super::{nll, quantize, QuantConfig, Quantized};
use crate::data::{self, DataSpec, Rows};
use crate::error::Result;
use crate::flow::Flow;
use crate::freeze::runtime::score_nats;
use crate::freeze::{freeze_checkpoint, FrozenCheckpoint};
use crate::metrics::auroc;
use crate::train::Checkpoint;

/// AUROC of held-out normal rows against the file's anomalies, f32 and quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AurocPair {
    /// The f32 model.
    pub f32: f64,
    /// The quantized model.
    pub quantized: f64,
    /// Held-out normal rows.
    pub normal: usize,
    /// Anomalies.
    pub anomalies: usize,
}

/// A checkpoint frozen in f32 (parity-checked) and quantized (bit-exact
/// checked), with both measured on the held-out rows.
#[derive(Debug)]
pub struct QuantizedCheckpoint {
    /// The f32 file and its parity check.
    pub f32: FrozenCheckpoint,
    /// The quantized file and how it was made.
    pub quantized: Quantized,
    /// Test NLL, nats/dim, f32 and quantized.
    pub test_nll: (f64, f64),
    /// Test rows.
    pub test_rows: usize,
    /// When the checkpoint trained on one label of a labelled file: AUROC against
    /// the other labels' rows.
    pub auroc: Option<AurocPair>,
}

/// The rows of the checkpoint's data file whose label differs from the one it
/// trained on (the anomalies of an anomaly-detection set), in data units.
fn anomaly_rows(spec: &DataSpec, context_dim: usize) -> Result<Option<Rows>> {
    let Some(normal) = spec.only_label else { return Ok(None) };
    let t = data::load(&DataSpec { only_label: None, ..spec.clone() })?;
    let idx = t.with_label(normal, false);
    Ok((!idx.is_empty()).then(|| t.rows(&idx, context_dim)))
}

/// Freeze `flow` (the checkpoint's) in f32 with parity tolerance `tol`, quantize
/// it with activation ranges from the first `calib` training rows, and measure.
pub fn quantize_checkpoint(
    ck: &Checkpoint,
    flow: &Flow,
    cfg: QuantConfig,
    calib: usize,
    tol: f64,
) -> Result<QuantizedCheckpoint> {
    let f32 = freeze_checkpoint(ck, flow, tol)?;
    let prep = &f32.prep;
    let calib_idx: Vec<usize> = prep.split.train.iter().copied().take(calib.max(1)).collect();
    let test = prep.raw(&prep.split.test);
    let q = quantize(&f32.frozen, cfg, &prep.raw(&calib_idx), &prep.raw(&prep.split.val), &test)?;
    let test_nll = (nll(&f32.loaded, &test)?, nll(&q.loaded, &test)?);
    let auroc = match anomaly_rows(&ck.data, prep.c)? {
        Some(an) => {
            let pair = |m: &floe_runtime::Model<'_>| -> Result<Option<f64>> {
                let (a, b) = (score_nats(m, &test)?, score_nats(m, &an)?);
                let labels: Vec<bool> = (0..a.len() + b.len()).map(|i| i >= a.len()).collect();
                Ok(auroc(&[a, b].concat(), &labels))
            };
            match (pair(f32.loaded.model())?, pair(q.loaded.model())?) {
                (Some(f), Some(qa)) => Some(AurocPair { f32: f, quantized: qa, normal: test.n(), anomalies: an.n() }),
                _ => None,
            }
        }
        None => None,
    };
    Ok(QuantizedCheckpoint { test_rows: test.n(), f32, quantized: q, test_nll, auroc })
}
