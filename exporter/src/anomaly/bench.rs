//! A detector comparison over seeds: flow (f32, int8) against the GMM and the
//! isolation forest on one labelled set; the bundled ADBench sets.

use std::time::Instant;

use burn::prelude::*;
use floe_runtime::format::Precision;

use super::protocol::{baselines, evaluate, fit_flow, held_out_nll, split};
use super::FlowSettings;
use crate::data::DataSpec;
use crate::error::{ConfigError, Result};
use crate::metrics::Metrics;

/// The bundled ADBench sets, in the order of data/README.md.
pub const ADBENCH: [&str; 7] =
    ["38_thyroid", "6_cardio", "32_shuttle", "28_pendigits", "23_mammography", "30_satellite", "4_breastw"];

/// Every `.npz` file in `dir`: the bundled ADBench names first, in their
/// order, then the others by name. An unreadable folder, or one without a
/// single `.npz`, is an error naming it.
pub fn npz_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| crate::error::FloeError::io(dir, e))?;
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("npz")))
        .collect();
    if files.is_empty() {
        return Err(ConfigError::invalid("--dir", "a folder with .npz files", dir.display()).into());
    }
    let rank = |p: &std::path::PathBuf| {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        (ADBENCH.iter().position(|n| *n == stem).unwrap_or(ADBENCH.len()), stem)
    };
    files.sort_by_key(rank);
    Ok(files)
}

/// A false-alarm rate must be in (0, 1).
pub fn check_fpr(fpr: f64) -> Result<()> {
    if fpr > 0.0 && fpr < 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid("--fpr", "in (0, 1)", fpr).into())
    }
}

/// One set's results over seeds: flow f32, flow int8, GMM, isolation forest.
#[derive(Debug, Clone, Default)]
pub struct SetResult {
    /// Largest Burn-vs-runtime |log p| difference over seeds, and the rows beyond
    /// the freeze tolerance (evaluation writes no file, so it reports instead of
    /// refusing).
    pub parity: (f64, usize),
    /// The f32 flow, per seed.
    pub flow: Vec<Metrics>,
    /// The f32 flow's held-out normal NLL (nats/dim, data units), per seed.
    pub flow_nll: Vec<f64>,
    /// The int8 flow's held-out normal NLL, per seed (empty unless asked for).
    pub int8_nll: Vec<f64>,
    /// The int8 flow, per seed (empty unless asked for).
    pub int8: Vec<Metrics>,
    /// The GMM, per seed.
    pub gmm: Vec<Metrics>,
    /// The GMM's K chosen by BIC, per seed.
    pub gmm_k: Vec<usize>,
    /// The isolation forest, per seed.
    pub forest: Vec<Metrics>,
    /// With `--select`: how each seed's flow was chosen.
    pub selections: Vec<super::select::Selection>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Evaluate every detector on `spec` (rows labelled `normal_label` are normal)
/// for seeds `0..seeds`, thresholds at false-alarm rate `fpr`; with `int8` the
/// int8 flow too. Flows train on `device`.
pub fn evaluate_set(
    spec: &DataSpec,
    normal_label: i64,
    seeds: u64,
    fpr: f64,
    int8: bool,
    settings: &FlowSettings,
    device: &Device,
) -> Result<SetResult> {
    check_fpr(fpr)?;
    if seeds == 0 {
        return Err(ConfigError::invalid("--seeds", "at least 1", seeds).into());
    }
    let start = Instant::now();
    let mut r = SetResult::default();
    for seed in 0..seeds {
        let s = split(spec, normal_label, seed)?;
        // Evaluation writes no file: measure parity instead of enforcing it.
        let quantize = int8.then_some(Precision::Int8);
        let fitted = fit_flow(&s, settings, seed, fpr, quantize, f64::INFINITY, device)?;
        r.parity.0 = r.parity.0.max(fitted.parity.max_abs_diff);
        r.parity.1 += fitted.parity.beyond_tolerance;
        r.selections.extend(fitted.selection.clone());
        r.flow.push(evaluate(&fitted.f32_model, &s)?);
        r.flow_nll.push(held_out_nll(&fitted.f32_model, &s)?);
        if let Some((qm, _)) = &fitted.quantized {
            r.int8.push(evaluate(qm, &s)?);
            r.int8_nll.push(held_out_nll(qm, &s)?);
        }
        let (g, k, f) = baselines(&s, fpr, seed);
        r.gmm.push(g);
        r.gmm_k.push(k);
        r.forest.push(f);
    }
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}

/// AUROC over several sets, each set's mean over its seeds averaged with equal
/// weight: what the README's targets are stated in.
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    /// Sets averaged.
    pub sets: usize,
    /// The f32 flow.
    pub flow: f64,
    /// The int8 flow (`None` unless every set has one).
    pub int8: Option<f64>,
    /// The GMM.
    pub gmm: f64,
    /// The isolation forest.
    pub forest: f64,
    /// The better of the two baselines on each set.
    pub best_baseline: f64,
    /// The set where the deployed flow (int8 if any, else f32) minus its best
    /// baseline is smallest, and that difference (negative: below it).
    pub worst: (String, f64),
}

/// [`Overall`] of named set results; `None` for none.
pub fn overall(results: &[(String, SetResult)]) -> Option<Overall> {
    if results.is_empty() {
        return None;
    }
    let auroc = |m: &[Metrics]| crate::metrics::mean_std(&m.iter().map(|m| m.auroc).collect::<Vec<_>>()).0;
    let n = results.len() as f64;
    let mean = |f: &dyn Fn(&SetResult) -> f64| results.iter().map(|(_, r)| f(r)).sum::<f64>() / n;
    let has_int8 = results.iter().all(|(_, r)| !r.int8.is_empty());
    let deployed = |r: &SetResult| if has_int8 { auroc(&r.int8) } else { auroc(&r.flow) };
    let best = |r: &SetResult| auroc(&r.gmm).max(auroc(&r.forest));
    let worst =
        results.iter().map(|(name, r)| (name.clone(), deployed(r) - best(r))).min_by(|a, b| a.1.total_cmp(&b.1))?;
    Some(Overall {
        sets: results.len(),
        flow: mean(&|r| auroc(&r.flow)),
        int8: has_int8.then(|| mean(&|r| auroc(&r.int8))),
        gmm: mean(&|r| auroc(&r.gmm)),
        forest: mean(&|r| auroc(&r.forest)),
        best_baseline: mean(&best),
        worst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(auroc: f64) -> Metrics {
        Metrics { auroc, ..Metrics::default() }
    }

    #[test]
    fn overall_averages_each_sets_mean_and_finds_the_worst_gap_to_the_best_baseline() {
        let a = SetResult {
            flow: vec![m(0.90), m(0.94)],
            int8: vec![m(0.93), m(0.93)],
            gmm: vec![m(0.95), m(0.95)],
            forest: vec![m(0.80), m(0.84)],
            ..SetResult::default()
        };
        let b = SetResult {
            flow: vec![m(0.70)],
            int8: vec![m(0.72)],
            gmm: vec![m(0.60)],
            forest: vec![m(0.65)],
            ..SetResult::default()
        };
        let o = overall(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert_eq!(o.sets, 2);
        assert!(close(o.flow, (0.92 + 0.70) / 2.0) && close(o.int8.unwrap(), (0.93 + 0.72) / 2.0), "{o:?}");
        assert!(close(o.gmm, (0.95 + 0.60) / 2.0) && close(o.forest, (0.82 + 0.65) / 2.0), "{o:?}");
        assert!(close(o.best_baseline, (0.95 + 0.65) / 2.0), "{o:?}");
        // The int8 flow is the deployed one: its gap, not the f32 flow's.
        assert_eq!(o.worst.0, "a");
        assert!(close(o.worst.1, 0.93 - 0.95), "{o:?}");
        // Without an int8 flow on every set, the f32 flow is the deployed one.
        let b32 = SetResult { int8: vec![], ..b };
        let o = overall(&[("a".into(), a), ("b".into(), b32)]).unwrap();
        assert_eq!(o.int8, None);
        assert!(close(o.worst.1, 0.92 - 0.95), "{o:?}");
        assert_eq!(overall(&[]), None);
    }
}
