//! The ADBench semi-supervised protocol: split a labelled set, fit a flow on the
//! normal training rows, calibrate its threshold on held-out normal rows, store it
//! in the file, and evaluate against the labelled anomalies — next to the
//! baselines, fitted on the same rows.
//!
//! Per seed the normal rows are shuffled into 45 % training, 15 % calibration
//! (also early stopping) and 40 % test; the test set is those normal rows plus
//! every anomaly. Standardization uses the training rows only.

use burn::prelude::*;
use floe_runtime::format::{AnomalyThreshold, Precision};

use super::baselines::{Gmm, IsolationForest};
use super::select::{select, Selection};
use super::FlowSettings;
use crate::data::{self, prepare, DataSpec, Prepared, Rows};
use crate::error::{DataError, Result};
use crate::freeze::runtime::score_nats;
use crate::freeze::{self, FrozenModel, Parity};
use crate::metrics::{metrics, threshold_at, Metrics};
use crate::quant::{self, QuantConfig, Quantized};
use crate::train;

/// Fraction of the normal rows used for calibration (and early stopping).
pub const CALIB_FRACTION: f64 = 0.15;
/// Fraction of the normal rows held out for the test set.
pub const TEST_FRACTION: f64 = 0.40;

/// The rows of one seed's split.
#[derive(Debug, Clone)]
pub struct AnomalySplit {
    /// Prepared normal rows (train / calibration / test) with the standardization.
    pub prep: Prepared,
    /// Training rows, data units.
    pub train: Rows,
    /// Calibration rows, data units.
    pub calib: Rows,
    /// Test normal rows, data units.
    pub test_normal: Rows,
    /// Anomalies (every row with another label), data units.
    pub anomalies: Rows,
}

/// Split a labelled file for `seed`: `normal_label` rows are normal, the rest anomalies.
pub fn split(spec: &DataSpec, normal_label: i64, seed: u64) -> Result<AnomalySplit> {
    let all = data::load(&DataSpec { only_label: None, ..spec.clone() })?;
    if all.labels.is_none() {
        return Err(DataError::NoLabels { path: spec.path.clone() }.into());
    }
    let normal = DataSpec { only_label: Some(normal_label), ..spec.clone() };
    let prep = prepare(&normal, 0, CALIB_FRACTION, TEST_FRACTION, seed)?;
    let anomaly_idx = all.with_label(normal_label, false);
    if anomaly_idx.is_empty() {
        return Err(DataError::NoAnomalies { path: spec.path.clone(), normal_label }.into());
    }
    Ok(AnomalySplit {
        train: prep.raw(&prep.split.train),
        calib: prep.raw(&prep.split.val),
        test_normal: prep.raw(&prep.split.test),
        anomalies: all.rows(&anomaly_idx, 0),
        prep,
    })
}

/// A flow fitted for anomaly detection.
#[derive(Debug)]
pub struct FittedFlow {
    /// Burn vs runtime on the test normal rows.
    pub parity: Parity,
    /// The f32 model with its threshold.
    pub f32_model: FrozenModel,
    /// The quantized model with its own threshold, if asked for.
    pub quantized: Option<(FrozenModel, Quantized)>,
    /// Epochs trained.
    pub epochs: usize,
    /// How the flow was chosen, with `--select`.
    pub selection: Option<Selection>,
}

impl FittedFlow {
    /// The model to deploy: the quantized one if there is one, else the f32 one.
    pub fn deployed(&self) -> &FrozenModel {
        self.quantized.as_ref().map_or(&self.f32_model, |(m, _)| m)
    }
}

/// Store the `(1 - fpr)` quantile of the calibration rows' scores as the
/// model's threshold. Returns the threshold.
pub fn calibrate(model: &mut FrozenModel, calib: &Rows, fpr: f64) -> Result<f64> {
    let t = threshold_at(&score_nats(model.load()?.model(), calib)?, fpr);
    model.anomaly = Some(AnomalyThreshold { threshold: t as f32, target_fpr: fpr as f32 });
    Ok(t)
}

/// Train the flow on the split's training rows (early stopping on calibration
/// rows) on `device` — or with `settings.select` choose it among
/// [`super::select::family`] by the calibration rows' NLL — freeze it (parity-checked on the test normal rows against
/// `tolerance`, the freeze default for files that are written), calibrate the
/// threshold, and optionally quantize (recalibrating on the quantized model).
pub fn fit_flow(
    s: &AnomalySplit,
    settings: &FlowSettings,
    seed: u64,
    fpr: f64,
    quantize: Option<Precision>,
    tolerance: f64,
    device: &Device,
) -> Result<FittedFlow> {
    let prep = &s.prep;
    let (model, frozen, history, selection) = match settings.select {
        Some(budget) => {
            let c = select(prep, &s.calib, settings, seed, budget, device)?;
            (c.model, c.frozen, c.history, Some(c.selection))
        }
        None => {
            let (fc, tc) = settings.configs(prep.d, seed, prep.train.n());
            let (model, history) = train::train(&fc, &tc, &prep.xs, &prep.train, &prep.val, device, settings.progress)?;
            let frozen = model.frozen(&prep.xs, &prep.cs)?;
            (model, frozen, history, None)
        }
    };
    let parity = freeze::check_parity(&model, &prep.xs, &prep.cs, &frozen.load()?, &s.test_normal, tolerance)?;
    let mut f32_model = frozen.clone();
    calibrate(&mut f32_model, &s.calib, fpr)?;
    let quantized = match quantize {
        Some(precision) => {
            let q = quant::quantize(
                &frozen,
                QuantConfig { precision, max_layer_cost: 0.01 },
                &s.train.head(1000),
                &s.calib,
                &s.test_normal,
            )?;
            let mut qm = q.model.clone();
            calibrate(&mut qm, &s.calib, fpr)?;
            Some((qm, q))
        }
        None => None,
    };
    Ok(FittedFlow { parity, f32_model, quantized, epochs: history.val_nll.len(), selection })
}

/// Metrics of a frozen model with a threshold on the split's test rows.
pub fn evaluate(model: &FrozenModel, s: &AnomalySplit) -> Result<Metrics> {
    let t = model.anomaly.map_or(f64::INFINITY, |a| a.threshold as f64);
    let loaded = model.load()?;
    let m = loaded.model();
    Ok(metrics(&score_nats(m, &s.test_normal)?, &score_nats(m, &s.anomalies)?, t))
}

/// Held-out normal NLL of `model` on the split's test normal rows: the mean
/// `−log p` per dimension, nats, data units (the runtime's score). Needs no
/// anomaly: what label-free model choice can look at.
pub fn held_out_nll(model: &FrozenModel, s: &AnomalySplit) -> Result<f64> {
    let loaded = model.load()?;
    let nats = score_nats(loaded.model(), &s.test_normal)?;
    Ok(nats.iter().sum::<f64>() / nats.len().max(1) as f64 / s.test_normal.dim.max(1) as f64)
}

/// The split's rows standardized as the flow sees them, in f64 (the baselines'
/// input).
fn standardized(s: &AnomalySplit, rows: &Rows) -> Vec<f64> {
    let xs = &s.prep.xs;
    let d = rows.dim;
    rows.x.iter().enumerate().map(|(k, &v)| ((v - xs.mean[k % d]) / xs.std[k % d]) as f64).collect()
}

/// Metrics of the two baselines, fitted on the same training rows, thresholds
/// calibrated on the same calibration rows at the same false-alarm rate:
/// `(GMM, its K, isolation forest)`.
pub fn baselines(s: &AnomalySplit, fpr: f64, seed: u64) -> (Metrics, usize, Metrics) {
    let d = s.train.dim;
    let (tr, ca, tn, an) = (
        standardized(s, &s.train),
        standardized(s, &s.calib),
        standardized(s, &s.test_normal),
        standardized(s, &s.anomalies),
    );
    let gmm = Gmm::fit_bic(&tr, d, &[1, 2, 4, 8], seed);
    let g = metrics(&gmm.scores(&tn), &gmm.scores(&an), threshold_at(&gmm.scores(&ca), fpr));
    let forest = IsolationForest::fit(&tr, d, 100, 256, seed);
    let f = metrics(&forest.scores(&tn), &forest.scores(&an), threshold_at(&forest.scores(&ca), fpr));
    (g, gmm.k(), f)
}
