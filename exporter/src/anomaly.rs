//! Anomaly detection with a flow: fit on normal rows, calibrate a threshold at a
//! chosen false-alarm rate on held-out normal rows, store it in the file, and
//! evaluate against the labelled anomalies — next to the baselines people deploy
//! (full-covariance GMM, isolation forest) fitted on the same rows.
//!
//! Protocol (ADBench semi-supervised, as in data/README.md): the normal rows are
//! shuffled by the seed into 45 % training, 15 % calibration (also early
//! stopping) and 40 % test; the test set is those normal rows plus every anomaly.
//! Standardization uses the training rows only.

use floe_runtime::{AnomalyThreshold, Model};

use crate::baselines::{Gmm, IsolationForest};
use crate::data::{self, DataSpec};
use crate::error::{FloeError, Result};
use crate::freeze::{self, runtime_log_prob};
use crate::model::FlowConfig;
use crate::pipeline::{self, raw_rows, Prepared};
use crate::quant::{self, QuantConfig, QuantMode, RowSet};
use crate::train::{self, TrainConfig};
use crate::writer::{AlignedBytes, FrozenModel};

/// Fraction of the normal rows used for calibration (and early stopping).
pub const CALIB_FRACTION: f64 = 0.15;
/// Fraction of the normal rows held out for the test set.
pub const TEST_FRACTION: f64 = 0.40;

/// Detection quality on a labelled test set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Area under the precision-recall curve (average precision).
    pub auprc: f64,
    /// Precision at the calibrated threshold.
    pub precision: f64,
    /// Recall at the calibrated threshold.
    pub recall: f64,
    /// False-alarm rate on the test normal rows at the threshold.
    pub fpr: f64,
}

/// Average precision of `scores` (higher = more anomalous) for `labels`.
pub fn auprc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n_pos == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut last_recall) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut k = 0;
    while k < idx.len() {
        // Rows with equal scores enter together.
        let mut e = k;
        while e + 1 < idx.len() && scores[idx[e + 1]] == scores[idx[k]] {
            e += 1;
        }
        for &i in &idx[k..=e] {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        let recall = tp as f64 / n_pos as f64;
        ap += (recall - last_recall) * tp as f64 / (tp + fp) as f64;
        last_recall = recall;
        k = e + 1;
    }
    Some(ap)
}

/// The `(1 - fpr)` empirical quantile of calibration scores: about a fraction
/// `fpr` of normal rows score above it.
pub fn threshold_at(scores: &[f64], fpr: f64) -> f64 {
    let mut s: Vec<f64> = scores.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::INFINITY;
    }
    let k = (((1.0 - fpr) * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[k]
}

/// Metrics of `scores` for normal rows then anomalies, at `threshold`.
pub fn metrics(normal: &[f64], anomalies: &[f64], threshold: f64) -> Metrics {
    let scores: Vec<f64> = normal.iter().chain(anomalies).copied().collect();
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= normal.len()).collect();
    let tp = anomalies.iter().filter(|&&s| s > threshold).count();
    let fp = normal.iter().filter(|&&s| s > threshold).count();
    Metrics {
        auroc: quant::auroc(&scores, &labels).unwrap_or(f64::NAN),
        auprc: auprc(&scores, &labels).unwrap_or(f64::NAN),
        precision: if tp + fp > 0 { tp as f64 / (tp + fp) as f64 } else { 0.0 },
        recall: tp as f64 / anomalies.len().max(1) as f64,
        fpr: fp as f64 / normal.len().max(1) as f64,
    }
}

/// Rows in data units.
#[derive(Debug, Clone, Default)]
pub struct RawRows {
    /// Row-major values.
    pub x: Vec<f32>,
    /// Columns.
    pub d: usize,
}

impl RawRows {
    fn n(&self) -> usize {
        self.x.len() / self.d.max(1)
    }
    fn set(&self) -> RowSet<'_> {
        RowSet { x: &self.x, c: &[] }
    }
}

/// The rows of one seed's split.
#[derive(Debug, Clone)]
pub struct AnomalySplit {
    /// Prepared normal rows (train / calibration / test) with the standardization.
    pub prep: Prepared,
    /// Raw training rows.
    pub train: RawRows,
    /// Raw calibration rows.
    pub calib: RawRows,
    /// Raw test normal rows.
    pub test_normal: RawRows,
    /// Raw anomalies (every row with another label).
    pub anomalies: RawRows,
}

/// Split a labelled file for `seed`: `normal_label` rows are normal, the rest anomalies.
pub fn split(spec: &DataSpec, normal_label: i64, seed: u64) -> Result<AnomalySplit> {
    let all = data::load(&DataSpec { only_label: None, ..spec.clone() })?;
    let labels = all.labels.clone().ok_or_else(|| {
        FloeError::Data(format!("{}: anomaly detection needs labels (a `y` array or --labels)", spec.path.display()))
    })?;
    let tc = TrainConfig { val_fraction: CALIB_FRACTION, test_fraction: TEST_FRACTION, seed, ..TrainConfig::default() };
    let prep = pipeline::prepare(&DataSpec { only_label: Some(normal_label), ..spec.clone() }, 0, &tc)?;
    let d = prep.d;
    let raw = |idx: &[usize]| RawRows { x: raw_rows(&prep.table, idx, 0).0, d };
    let anomaly_idx: Vec<usize> = (0..all.n).filter(|&i| labels[i] != normal_label).collect();
    if anomaly_idx.is_empty() {
        return Err(FloeError::Data(format!(
            "{}: no rows with a label other than {normal_label}",
            spec.path.display()
        )));
    }
    Ok(AnomalySplit {
        train: raw(&prep.split.train),
        calib: raw(&prep.split.val),
        test_normal: raw(&prep.split.test),
        anomalies: RawRows { x: raw_rows(&all, &anomaly_idx, 0).0, d },
        prep,
    })
}

/// A flow fitted for anomaly detection.
#[derive(Debug, Clone)]
pub struct FittedFlow {
    /// Burn vs runtime on the test normal rows.
    pub parity: freeze::Parity,
    /// The f32 model with its threshold.
    pub f32_model: FrozenModel,
    /// The quantized model with its own threshold, if asked for.
    pub quantized: Option<(FrozenModel, quant::Quantized)>,
    /// Epochs trained.
    pub epochs: usize,
}

fn scores(model: &FrozenModel, rows: &RawRows) -> Result<Vec<f64>> {
    let buf = AlignedBytes::new(&model.to_bytes()?);
    let m = Model::load(&buf).map_err(|err| FloeError::Runtime { path: "<anomaly model>".into(), err })?;
    let lp =
        runtime_log_prob(&m, &rows.x, &[]).map_err(|err| FloeError::Runtime { path: "<anomaly model>".into(), err })?;
    Ok(lp.iter().map(|&v| score_of(v)).collect())
}

/// The anomaly score of a `log p`: `-log p`, and `+∞` when `log p` is NaN (a row
/// whose density overflows f32), as `floe_runtime::Model::score` does on device.
pub fn score_of(log_p: f64) -> f64 {
    if log_p.is_nan() {
        f64::INFINITY
    } else {
        -log_p
    }
}

/// Store the `(1 - fpr)` quantile of the calibration scores as the threshold.
fn calibrate(mut model: FrozenModel, calib: &RawRows, fpr: f64) -> Result<(FrozenModel, f64)> {
    let t = threshold_at(&scores(&model, calib)?, fpr);
    model.anomaly = Some(AnomalyThreshold { threshold: t as f32, target_fpr: fpr as f32 });
    Ok((model, t))
}

/// Train the flow on the split's training rows (early stopping on calibration
/// rows), freeze it (parity-checked on the test normal rows against `tolerance`,
/// the freeze default for files that are written), calibrate the threshold, and
/// optionally quantize (recalibrating on the quantized model).
pub fn fit_flow(
    s: &AnomalySplit,
    flow: &FlowConfig,
    tc: &TrainConfig,
    fpr: f64,
    quantize: Option<QuantMode>,
    tolerance: f64,
    progress: bool,
) -> Result<FittedFlow> {
    let prep = &s.prep;
    let (model, history) = train::train(flow, tc, &prep.xs, &prep.train, &prep.val, progress)?;
    let (_, parity) = freeze::freeze(&model, &prep.xs, &prep.cs, &s.test_normal.x, &[], tolerance)?;
    let frozen = model.frozen(&prep.xs, &prep.cs)?;
    let (f32_model, _) = calibrate(frozen.clone(), &s.calib, fpr)?;
    let quantized = match quantize {
        Some(mode) => {
            let calib_n = s.train.n().min(1000);
            let q = quant::quantize(
                &frozen,
                QuantConfig { mode, max_layer_cost: 0.01 },
                RowSet { x: &s.train.x[..calib_n * s.train.d], c: &[] },
                s.calib.set(),
                s.test_normal.set(),
            )?;
            let (qm, _) = calibrate(q.model.clone(), &s.calib, fpr)?;
            Some((qm, q))
        }
        None => None,
    };
    Ok(FittedFlow { parity, f32_model, quantized, epochs: history.val_nll.len() })
}

/// Metrics of a frozen model with a threshold on the split's test rows.
pub fn evaluate(model: &FrozenModel, s: &AnomalySplit) -> Result<Metrics> {
    let t = model.anomaly.map_or(f64::INFINITY, |a| a.threshold as f64);
    Ok(metrics(&scores(model, &s.test_normal)?, &scores(model, &s.anomalies)?, t))
}

fn standardized(s: &AnomalySplit, rows: &RawRows) -> Vec<f64> {
    let xs = &s.prep.xs;
    let d = rows.d;
    rows.x.iter().enumerate().map(|(k, &v)| ((v - xs.mean[k % d]) / xs.std[k % d]) as f64).collect()
}

/// Metrics of the two baselines, fitted on the same training rows, thresholds
/// calibrated on the same calibration rows at the same false-alarm rate.
pub fn baselines(s: &AnomalySplit, fpr: f64, seed: u64) -> (Metrics, usize, Metrics) {
    let d = s.train.d;
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

/// Mean and standard deviation of a metric over seeds.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_of_perfect_and_reversed_rankings() {
        assert_eq!(auprc(&[0.1, 0.2, 0.9, 0.8], &[false, false, true, true]), Some(1.0));
        let ap = auprc(&[0.9, 0.8, 0.1, 0.2], &[false, false, true, true]).unwrap();
        // Positives ranked 3rd and 4th: (1/2)(1/3) + (1/2)(2/4).
        assert!((ap - (1.0 / 6.0 + 0.25)).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn threshold_leaves_about_fpr_of_calibration_rows_above() {
        let s: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let t = threshold_at(&s, 0.01);
        assert_eq!(s.iter().filter(|&&v| v > t).count(), 10);
        let m = metrics(&s, &[2000.0, 5.0], t);
        assert_eq!((m.recall, m.fpr), (0.5, 0.01));
        assert!((m.precision - 1.0 / 11.0).abs() < 1e-12);
    }
}
