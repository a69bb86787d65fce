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
