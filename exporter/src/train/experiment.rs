//! An experiment: data, architecture and optimization settings (a settings file's
//! `[data]`, `[flow]` and `[train]` tables), run into a checkpoint.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Deserialize;

use super::{log_prob_rows, nll_per_dim, train_on, Checkpoint, History, TrainConfig};
use crate::data::{prepare, DataSpec};
use crate::error::{ConfigError, FloeError, Result};
use crate::flow::{Flow, FlowConfig};

/// A settings file's tables, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// `[data]`.
    pub data: Option<DataSpec>,
    /// `[flow]`.
    pub flow: Option<FlowConfig>,
    /// `[train]`.
    pub train: Option<TrainConfig>,
}

impl SettingsFile {
    /// Read a TOML settings file.
    pub fn read(path: &Path) -> Result<SettingsFile> {
        let s = std::fs::read_to_string(path).map_err(|e| FloeError::io(path, e))?;
        toml::from_str(&s).map_err(|source| FloeError::Settings { path: path.to_path_buf(), source })
    }
}

/// What to train: the data, the architecture (its `dim` and `context_dim` are
/// set from the data when it runs) and the optimization.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The data.
    pub data: DataSpec,
    /// The last `context_dim` columns are the context.
    pub context_dim: usize,
    /// The architecture.
    pub flow: FlowConfig,
    /// The optimization.
    pub train: TrainConfig,
}

/// What [`Experiment::run`] produced.
#[derive(Debug)]
pub struct Trained {
    /// The model of the best validation epoch.
    pub flow: Flow,
    /// The checkpoint written (settings, standardization, history).
    pub checkpoint: Checkpoint,
    /// Where it was written.
    pub dir: PathBuf,
    /// NLL of the held-out test rows, nats per dimension (data units).
    pub test_nll: f64,
}

impl Experiment {
    /// Train on `device` and write the checkpoint into `dir`.
    pub fn run(&self, device: &Device, dir: &Path, progress: bool) -> Result<Trained> {
        self.run_on(std::slice::from_ref(device), dir, progress)
    }

    /// Train data-parallel on `devices` (see [`super::train_on`]) and write the
    /// checkpoint into `dir`.
    pub fn run_on(&self, devices: &[Device], dir: &Path, progress: bool) -> Result<Trained> {
        // The checkpoint records the data's path as JSON text: a path that is
        // not UTF-8 is refused before training, not after it.
        if self.data.path.to_str().is_none() {
            return Err(ConfigError::invalid(
                "--data",
                "a UTF-8 path (the checkpoint records it as text; rename the file)",
                self.data.path.display(),
            )
            .into());
        }
        let mut tc = self.train.clone();
        tc.min_lr = tc.min_lr.min(tc.lr);
        let prep = prepare(&self.data, self.context_dim, tc.val_fraction, tc.test_fraction, tc.seed)?;
        let mut fc = self.flow.clone();
        fc.dim = prep.d;
        fc.context_dim = prep.c;
        fc.seed = tc.seed;
        let (flow, history): (Flow, History) = train_on(&fc, &tc, &prep.xs, &prep.train, &prep.val, devices, progress)?;
        let test_nll = nll_per_dim(&log_prob_rows(&flow, &prep.test), &prep.xs);
        let checkpoint =
            Checkpoint { flow: fc, train: tc, data: self.data.clone(), x_std: prep.xs, c_std: prep.cs, history };
        checkpoint.save(&flow, dir)?;
        Ok(Trained { flow, checkpoint, dir: dir.to_path_buf(), test_nll })
    }
}
