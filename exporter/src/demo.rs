//! The demo: a neural spline flow on the bundled ADBench thyroid set, trained,
//! frozen, checked against the runtime, timed on the runtime, plotted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;

use crate::data::DataSpec;
use crate::error::{FloeError, Result};
use crate::flow::{FlowConfig, TransformKind};
use crate::freeze::runtime::{log_probs, samples};
use crate::freeze::{freeze_checkpoint, Parity, PARITY_TOLERANCE};
use crate::plot;
use crate::train::{log_prob_rows, nll_per_dim, Experiment, TrainConfig, Trained};

/// The bundled data, relative to the repository root.
pub const DEMO_DATA: &str = "data/adbench/38_thyroid.npz";

/// The bundled demo data set, found relative to the working directory or the
/// crate (so `cargo run` works from anywhere in the repository).
pub fn demo_data() -> Result<PathBuf> {
    let rel = Path::new(DEMO_DATA);
    let candidates = [PathBuf::from(rel), Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)];
    candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| FloeError::not_found(rel))
}

/// The demo's experiment: 4 × [ActNorm → LU linear → RQ-spline coupling],
/// conditioners 2 × 64 ReLU, K = 8 bins, B = 4, on the normal rows of `data`.
pub fn experiment(data: &Path, epochs: usize, seed: u64) -> Experiment {
    let flow = FlowConfig {
        transform: TransformKind::SplineCoupling,
        steps: 4,
        hidden: 64,
        blocks: 2,
        bins: 8,
        tail_bound: 4.0,
        ..FlowConfig::default()
    };
    let train = TrainConfig { epochs, batch_size: 256, patience: 15, seed, ..TrainConfig::default() };
    Experiment { data: DataSpec { only_label: Some(0), ..DataSpec::file(data) }, context_dim: 0, flow, train }
}

/// What the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    /// Rows and columns of the data (normal rows).
    pub rows: (usize, usize),
    /// Rows in train / validation / test.
    pub split: (usize, usize, usize),
    /// Test NLL of the Burn model, nats/dim.
    pub burn_nll: f64,
    /// Test NLL through the no_std runtime, nats/dim.
    pub runtime_nll: f64,
    /// Runtime time per `log_prob`, microseconds.
    pub us_per_row: f64,
    /// The parity check.
    pub parity: Parity,
    /// The model file and its length.
    pub model_file: (PathBuf, usize),
    /// Scratch words the model needs.
    pub scratch_len: usize,
    /// The held-out rows as raw little-endian f32 (firmware input).
    pub rows_file: PathBuf,
    /// The plot.
    pub png: PathBuf,
}

/// Freeze the trained demo model into `out`, check it, time it and plot it.
pub fn finish(trained: &Trained, out: &Path) -> Result<DemoReport> {
    let ck = &trained.checkpoint;
    let fc = freeze_checkpoint(ck, &trained.flow, PARITY_TOLERANCE)?;
    let file = out.join("thyroid.floe");
    fc.loaded.write(&file)?;
    let prep = &fc.prep;
    let rt = fc.loaded.model();
    let burn_nll = nll_per_dim(&log_prob_rows(&trained.flow, &prep.test), &prep.xs);
    let test = prep.raw(&prep.split.test);
    let t0 = Instant::now();
    let lp = log_probs(rt, &test)?;
    let us_per_row = t0.elapsed().as_secs_f64() * 1e6 / lp.len() as f64;
    let runtime_nll = -lp.iter().sum::<f64>() / lp.len() as f64 / prep.d as f64;
    // The held-out rows as raw little-endian f32 (row-major, `d` per row): the
    // input format of the firmware programs (`firmware/assets/`).
    let rows_file = out.join("thyroid-test.f32");
    let rows_bytes: Vec<u8> = test.x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&rows_file, rows_bytes).map_err(|e| FloeError::io(&rows_file, e))?;
    let png = out.join("demo.png");
    let drawn = samples(rt, test.n(), 1, &[])?;
    plot::report(&png, &ck.history, &test.x, &drawn.x, prep.d, &prep.table.columns)?;
    Ok(DemoReport {
        rows: (prep.table.n, prep.d),
        split: (prep.split.train.len(), prep.split.val.len(), prep.split.test.len()),
        burn_nll,
        runtime_nll,
        us_per_row,
        parity: fc.parity.clone(),
        model_file: (file, fc.loaded.bytes().len()),
        scratch_len: rt.scratch_len(),
        rows_file,
        png,
    })
}

/// Train the demo model on `devices` (one, or several data-parallel) into
/// `out/checkpoint`.
pub fn train(data: &Path, out: &Path, epochs: usize, seed: u64, devices: &[Device], progress: bool) -> Result<Trained> {
    experiment(data, epochs, seed).run_on(devices, &out.join("checkpoint"), progress)
}
