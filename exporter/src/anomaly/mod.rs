//! Anomaly detection with a flow: the ADBench protocol ([`protocol`]), the
//! baselines a flow is compared with, evaluation over seeds and sets
//! ([`bench`]), and sensor streams ([`stream`]). The metrics are
//! [`crate::metrics`].

pub mod baselines;
pub mod bench;
pub mod protocol;
pub mod stream;

pub use crate::metrics::{auprc, auroc, mean_std, metrics, threshold_at, Metrics};
pub use protocol::{baselines, calibrate, evaluate, fit_flow, split, AnomalySplit, FittedFlow};

use crate::flow::FlowConfig;
use crate::train::TrainConfig;

/// The flow and training settings of the anomaly commands.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSettings {
    /// Coupling steps.
    pub steps: usize,
    /// Conditioner width.
    pub hidden: usize,
    /// Spline bins.
    pub bins: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Early-stopping patience (epochs).
    pub patience: usize,
    /// Progress bars.
    pub progress: bool,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings { steps: 4, hidden: 64, bins: 8, epochs: 60, patience: 10, progress: false }
    }
}

impl FlowSettings {
    /// The spline flow for `dim` and its training, seeded.
    pub fn configs(&self, dim: usize, seed: u64) -> (FlowConfig, TrainConfig) {
        let flow =
            FlowConfig { hidden: self.hidden, steps: self.steps, bins: self.bins, seed, ..FlowConfig::spline(dim) };
        let tc = TrainConfig {
            epochs: self.epochs,
            patience: self.patience,
            seed,
            val_fraction: protocol::CALIB_FRACTION,
            test_fraction: protocol::TEST_FRACTION,
            ..TrainConfig::default()
        };
        (flow, tc)
    }
}
