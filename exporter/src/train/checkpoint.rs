//! Checkpoints: a trained flow's weights and everything needed to rebuild it.

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{History, TrainConfig};
use crate::data::{DataSpec, Standardization};
use crate::error::{FloeError, Result};
use crate::flow::{Flow, FlowConfig};

/// Everything needed to rebuild a trained model: written next to its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Architecture.
    pub flow: FlowConfig,
    /// Optimization.
    pub train: TrainConfig,
    /// Data source.
    pub data: DataSpec,
    /// Input standardization.
    pub x_std: Standardization,
    /// Context standardization.
    pub c_std: Standardization,
    /// Training curves.
    pub history: History,
}

/// Write `meta` as `dir/meta.json` (creating `dir`); returns the weights' path,
/// `dir/model.bpk`.
pub(crate) fn write_meta(meta: &impl Serialize, dir: &Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| FloeError::io(dir, e))?;
    let meta_path = dir.join("meta.json");
    let text =
        serde_json::to_string_pretty(meta).map_err(|source| FloeError::Metadata { path: meta_path.clone(), source })?;
    std::fs::write(&meta_path, text).map_err(|e| FloeError::io(&meta_path, e))?;
    Ok(dir.join("model.bpk"))
}

/// Read `dir/meta.json`; returns it with the weights' path, which must exist.
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<(T, std::path::PathBuf)> {
    let p = dir.join("meta.json");
    let s = std::fs::read_to_string(&p).map_err(|e| FloeError::io(&p, e))?;
    let meta: T = serde_json::from_str(&s).map_err(|source| FloeError::Metadata { path: p.clone(), source })?;
    let w = dir.join("model.bpk");
    if !w.exists() {
        return Err(FloeError::not_found(&w));
    }
    Ok((meta, w))
}

impl Checkpoint {
    /// Write `meta.json` and `model.bpk` into `dir`.
    pub fn save(&self, model: &Flow, dir: &Path) -> Result<()> {
        let w = write_meta(self, dir)?;
        model.clone().save_file(&w).map_err(|source| FloeError::Checkpoint { path: w, source })
    }

    /// Read a checkpoint written by [`Checkpoint::save`], its flow on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<(Checkpoint, Flow)> {
        let (ck, w): (Checkpoint, _) = read_meta(dir)?;
        // The initial draw is overwritten by the weights; it still goes through
        // `seeded` so that it cannot move another thread's seeded draws.
        let model = super::device::seeded(device, 0, || Flow::new(&ck.flow, device))?;
        let model = model.try_load_file(&w).map_err(|source| FloeError::Checkpoint { path: w, source })?;
        Ok((ck, model))
    }

    /// The data, split and standardized as at training time.
    pub fn prepare(&self) -> Result<crate::data::Prepared> {
        let t = &self.train;
        crate::data::prepare(&self.data, self.flow.context_dim, t.val_fraction, t.test_fraction, t.seed)
    }
}
