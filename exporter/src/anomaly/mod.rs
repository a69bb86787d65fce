//! Anomaly detection with a flow: the ADBench protocol ([`protocol`]), the
//! baselines a flow is compared with, evaluation over seeds and sets
//! ([`bench`]), and sensor streams ([`stream`]). The metrics are
//! [`crate::metrics`].

pub mod baselines;
pub mod bench;
pub mod protocol;
pub mod select;
pub mod series;
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
    /// Choose the flow per data set among [`select::family`] by held-out normal
    /// NLL, with this time budget in seconds; `None` trains the one flow above.
    pub select: Option<f64>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings { steps: 4, hidden: 64, bins: 8, epochs: 200, patience: 10, progress: false, select: None }
    }
}

/// The anomaly commands' batch size for `n_train` rows: a tenth of them, within
/// 16 ..= 256.
pub fn batch_size(n_train: usize) -> usize {
    n_train.div_ceil(10).clamp(16, 256)
}

impl FlowSettings {
    /// The spline flow for `dim` and its training on `n_train` rows, seeded.
    pub fn configs(&self, dim: usize, seed: u64, n_train: usize) -> (FlowConfig, TrainConfig) {
        let flow =
            FlowConfig { hidden: self.hidden, steps: self.steps, bins: self.bins, seed, ..FlowConfig::spline(dim) };
        (flow, self.train_config(seed, n_train))
    }

    /// The training settings for `n_train` rows, seeded: the protocol's
    /// calibration rows stop early, and batches are at most a tenth of the rows
    /// (16 ..= 256), so that even a small set takes ten steps an epoch.
    pub fn train_config(&self, seed: u64, n_train: usize) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: batch_size(n_train),
            patience: self.patience,
            seed,
            val_fraction: protocol::CALIB_FRACTION,
            test_fraction: protocol::TEST_FRACTION,
            ..TrainConfig::default()
        }
    }
}
