//! Detection metrics: AUROC, average precision, and precision / recall / false
//! alarms at a calibrated threshold. A leaf: the quantizer's report and the
//! anomaly commands both use it.

/// Area under the ROC curve of `scores` (higher = more anomalous) against
/// `labels` (true = anomaly), ties counted half (Mann–Whitney U).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut n_pos) = (0.0f64, 0usize);
    let mut k = 0;
    while k < idx.len() {
        let mut e = k;
        while e + 1 < idx.len() && scores[idx[e + 1]] == scores[idx[k]] {
            e += 1;
        }
        let avg = (k + e) as f64 / 2.0 + 1.0;
        for &i in &idx[k..=e] {
            if labels[i] {
                rank_sum += avg;
                n_pos += 1;
            }
        }
        k = e + 1;
    }
    let n_neg = scores.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    Some((rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64))
}

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
        auroc: auroc(&scores, &labels).unwrap_or(f64::NAN),
        auprc: auprc(&scores, &labels).unwrap_or(f64::NAN),
        precision: if tp + fp > 0 { tp as f64 / (tp + fp) as f64 } else { 0.0 },
        recall: tp as f64 / anomalies.len().max(1) as f64,
        fpr: fp as f64 / normal.len().max(1) as f64,
    }
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

    #[test]
    fn auroc_counts_ties_half() {
        assert_eq!(auroc(&[1.0, 2.0, 3.0, 4.0], &[false, false, true, true]), Some(1.0));
        assert_eq!(auroc(&[1.0, 1.0], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[4.0, 3.0, 2.0, 1.0], &[false, false, true, true]), Some(0.0));
        assert_eq!(auroc(&[1.0], &[true]), None);
    }
}
