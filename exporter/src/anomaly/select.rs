//! Label-free model choice: train a small documented family of flows on a
//! set's normal training rows and keep the one whose held-out normal rows (the
//! calibration rows) are most likely — never looking at an anomaly.
//!
//! The family runs from a linear flow (ActNorm → LU: a full-covariance
//! Gaussian) and the same with a Gaussian-mixture base (a GMM sharing one linear
//! map) to spline-coupling flows of two sizes with normal, Student-t and
//! mixture bases. Candidates train cheapest first; once the time budget is
//! spent no new candidate starts (at least one always trains).

use std::time::Instant;

use burn::prelude::*;
use floe_runtime::format::BaseKind;

use super::FlowSettings;
use crate::data::{Prepared, Rows};
use crate::error::{Result, TrainingError};
use crate::flow::{Flow, FlowConfig, TransformKind};
use crate::freeze::runtime::score_nats;
use crate::freeze::FrozenModel;
use crate::train::{self, History, TrainConfig};

/// Components of the family's mixture bases.
pub const MIXTURE_COMPONENTS: usize = 4;

/// One member of the family.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Short name (reports).
    pub name: &'static str,
    /// The flow.
    pub flow: FlowConfig,
}

/// The family for `dim`-dimensional rows, cheapest first. The spline flows
/// use the settings' bins; "4 × 64" is the settings' steps × hidden.
pub fn family(settings: &FlowSettings, dim: usize, seed: u64) -> Vec<Candidate> {
    let spline = |steps, hidden, base| FlowConfig {
        steps,
        hidden,
        bins: settings.bins,
        base,
        components: MIXTURE_COMPONENTS,
        seed,
        ..FlowConfig::spline(dim)
    };
    let linear = |base| FlowConfig {
        transform: TransformKind::Linear,
        steps: 1,
        base,
        components: MIXTURE_COMPONENTS,
        seed,
        ..FlowConfig::spline(dim)
    };
    let (steps, hidden) = (settings.steps, settings.hidden);
    let mut out = vec![
        Candidate { name: "gaussian (linear)", flow: linear(BaseKind::StdNormal) },
        Candidate { name: "gmm-4 (linear + mixture)", flow: linear(BaseKind::Mixture) },
    ];
    if dim >= 2 {
        out.extend([
            Candidate { name: "spline 2x32", flow: spline(2, 32, BaseKind::StdNormal) },
            Candidate { name: "spline", flow: spline(steps, hidden, BaseKind::StdNormal) },
            Candidate { name: "spline + student-t", flow: spline(steps, hidden, BaseKind::StudentT) },
            Candidate { name: "spline + mixture-4", flow: spline(steps, hidden, BaseKind::Mixture) },
        ]);
    }
    out
}

/// What one candidate scored.
#[derive(Debug, Clone)]
pub struct Tried {
    /// Its name.
    pub name: &'static str,
    /// Held-out normal NLL (nats/dim, data units; the calibration rows through
    /// the runtime), or `None` when the budget ran out before it started.
    pub nll: Option<f64>,
    /// Epochs trained.
    pub epochs: usize,
    /// Seconds spent on it.
    pub seconds: f64,
}

/// The choice and the record of how it was made.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Every candidate, in training order.
    pub tried: Vec<Tried>,
    /// Index of the chosen one in `tried`.
    pub chosen: usize,
    /// Seconds for the whole selection.
    pub seconds: f64,
}

impl Selection {
    /// The chosen candidate's name.
    pub fn chosen_name(&self) -> &'static str {
        self.tried.get(self.chosen).map_or("?", |t| t.name)
    }
}

/// The chosen flow, trained, with its frozen f32 file and history.
#[derive(Debug)]
pub struct Chosen {
    /// The Burn flow.
    pub model: Flow,
    /// It frozen (no threshold yet).
    pub frozen: FrozenModel,
    /// Its training history.
    pub history: History,
    /// How it was chosen.
    pub selection: Selection,
}

/// Train the family on `prep` (training rows; early stopping on the
/// calibration rows, which also score the candidates) within `budget` seconds,
/// on `device`; keep the candidate with the lowest held-out normal NLL.
pub fn select(
    prep: &Prepared,
    calib: &Rows,
    settings: &FlowSettings,
    seed: u64,
    budget: f64,
    device: &Device,
) -> Result<Chosen> {
    let start = Instant::now();
    let tc: TrainConfig = settings.train_config(seed, prep.train.n());
    let mut tried = Vec::new();
    let mut best: Option<(f64, usize, Flow, FrozenModel, History)> = None;
    for c in family(settings, prep.d, seed) {
        // Past the budget no candidate starts — unless none has a finite NLL yet.
        if best.is_some() && start.elapsed().as_secs_f64() >= budget {
            tried.push(Tried { name: c.name, nll: None, epochs: 0, seconds: 0.0 });
            continue;
        }
        let t0 = Instant::now();
        let (model, history) = train::train(&c.flow, &tc, &prep.xs, &prep.train, &prep.val, device, settings.progress)?;
        let frozen = model.frozen(&prep.xs, &prep.cs)?;
        let nats = score_nats(frozen.load()?.model(), calib)?;
        let nll = nats.iter().sum::<f64>() / nats.len().max(1) as f64 / calib.dim.max(1) as f64;
        let epochs = history.val_nll.len();
        tried.push(Tried { name: c.name, nll: Some(nll), epochs, seconds: t0.elapsed().as_secs_f64() });
        // NaN never wins; ties keep the cheaper (earlier) candidate.
        if nll.is_finite() && best.as_ref().is_none_or(|b| nll < b.0) {
            best = Some((nll, tried.len() - 1, model, frozen, history));
        }
    }
    let Some((_, chosen, model, frozen, history)) = best else {
        let n = tried.iter().filter(|t| t.nll.is_some()).count();
        return Err(TrainingError::NoFiniteCandidate { tried: n }.into());
    };
    Ok(Chosen {
        model,
        frozen,
        history,
        selection: Selection { tried, chosen, seconds: start.elapsed().as_secs_f64() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::batch_size;

    #[test]
    fn the_family_runs_from_a_gaussian_to_spline_flows_and_every_member_is_valid() {
        let settings = FlowSettings::default();
        let f = family(&settings, 6, 3);
        let names: Vec<&str> = f.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "gaussian (linear)",
                "gmm-4 (linear + mixture)",
                "spline 2x32",
                "spline",
                "spline + student-t",
                "spline + mixture-4"
            ]
        );
        for c in &f {
            c.flow.validate().unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!((c.flow.dim, c.flow.seed), (6, 3), "{}", c.name);
        }
        assert_eq!(f[0].flow.transform, TransformKind::Linear);
        assert_eq!((f[1].flow.base, f[1].flow.components), (BaseKind::Mixture, MIXTURE_COMPONENTS));
        assert_eq!((f[3].flow.steps, f[3].flow.hidden), (settings.steps, settings.hidden));
        // One dimension: no coupling flow exists, the linear ones remain.
        assert_eq!(family(&settings, 1, 0).len(), 2);
    }

    #[test]
    fn batches_are_a_tenth_of_the_rows_within_bounds() {
        assert_eq!(batch_size(100), 16);
        assert_eq!(batch_size(307), 31);
        assert_eq!(batch_size(1655), 166);
        assert_eq!(batch_size(20_513), 256);
    }
}
