//! `floe plot`: a checkpoint's training curve and marginals, data vs samples.

use std::path::PathBuf;

use floe_exporter::freeze::runtime::samples;
use floe_exporter::freeze::{freeze_checkpoint, LoadedModel, PARITY_TOLERANCE};
use floe_exporter::plot::report;
use floe_exporter::train::{cpu, Checkpoint};
use floe_exporter::Result;

/// `floe plot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Model file to sample from (default: freeze the checkpoint in memory).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let (ck, flow) = Checkpoint::load(&a.checkpoint, &cpu())?;
    let loaded = match &a.model {
        Some(p) => LoadedModel::read(p)?,
        None => freeze_checkpoint(&ck, &flow, PARITY_TOLERANCE)?.loaded,
    };
    let model = loaded.model();
    let prep = ck.prepare()?;
    let test = prep.raw(&prep.split.test);
    let ctx = vec![0.0f32; model.context_dim()];
    let drawn = samples(model, prep.split.test.len().max(500), 1, &ctx)?;
    report(&a.out, &ck.history, &test.x, &drawn.x, prep.d, &prep.table.columns)?;
    println!("wrote {}", a.out.display());
    Ok(())
}
