//! `floe eval`: the NLL of a data file under a model file, through the runtime,
//! and optionally every row's log-density.

use std::path::PathBuf;
use std::time::Instant;

use floe_exporter::data;
use floe_exporter::data::RowSink;
use floe_exporter::error::DataError;
use floe_exporter::freeze::runtime::log_probs;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::Result;

use crate::args::DataArgs;

/// `floe eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file.
    #[arg(long)]
    model: PathBuf,
    /// Data selection.
    #[command(flatten)]
    data: DataArgs,
    /// Also write every row's log-density (nats, data units, the runtime's f32
    /// in full: shortest text that reads back to the same bits) to this file,
    /// one row per data row in file order: .csv (column `log_p`) or .npy.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    let model = loaded.model();
    let spec = a.data.spec(None)?;
    let t = data::load(&spec)?;
    let (d, c) = (model.dim(), model.context_dim());
    if t.d != d + c {
        return Err(DataError::Columns { path: spec.path.clone(), have: t.d, dim: d, context: c }.into());
    }
    let rows = t.all_rows(c);
    let start = Instant::now();
    let lp = log_probs(model, &rows)?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(out) = &a.out {
        // The runtime computes in f32; `log_probs` widens exactly, so this is the
        // runtime's value bit for bit.
        let values: Vec<f32> = lp.iter().map(|&v| v as f32).collect();
        let mut sink = RowSink::create(out, values.len(), 1, &["log_p".to_string()])?;
        sink.push(&values)?;
        sink.finish()?;
    }
    let mean = lp.iter().sum::<f64>() / lp.len() as f64;
    println!("rows            {}", lp.len());
    println!("mean log p      {mean:.4} nats");
    println!("NLL             {:.4} nats/dim", -mean / d as f64);
    println!("runtime         {:.1} us/row", secs * 1e6 / lp.len() as f64);
    if let Some(out) = &a.out {
        println!("wrote           {} log-densities to {}", lp.len(), out.display());
    }
    Ok(())
}
