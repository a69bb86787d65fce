//! `floe sample`: draw samples from a model file with the runtime's sampler.

use std::path::PathBuf;

use floe_exporter::data::RowSink;
use floe_exporter::error::ConfigError;
use floe_exporter::freeze::runtime::Sampler;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::Result;

/// `floe sample`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file.
    #[arg(long)]
    model: PathBuf,
    /// Number of samples.
    #[arg(short, long, default_value_t = 1000)]
    n: usize,
    /// Seed of the runtime's PRNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Context values (comma-separated) for a conditional model.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    context: Option<Vec<f32>>,
    /// Output: .npy or .csv.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    let model = loaded.model();
    let ctx = a.context.clone().unwrap_or_default();
    if ctx.len() != model.context_dim() {
        let expected = if model.context_dim() == 0 {
            "absent (the model is unconditional)"
        } else {
            "one value per context dimension"
        };
        return Err(ConfigError::invalid(
            "--context",
            expected,
            format!("{} values for a model of context dimension {}", ctx.len(), model.context_dim()),
        )
        .into());
    }
    let d = model.dim();
    // Streamed to the file in chunks: any `-n` runs in bounded memory, and one
    // that would not fit on the disk is refused before anything is drawn.
    const CHUNK_ROWS: usize = 1 << 14;
    let columns: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    let mut sink = RowSink::create(&a.out, a.n, d, &columns)?;
    let mut sampler = Sampler::new(model, a.seed, &ctx);
    let mut buf = vec![0.0f32; CHUNK_ROWS.min(a.n) * d];
    let mut left = a.n;
    while left > 0 {
        let k = left.min(CHUNK_ROWS);
        sampler.fill(&mut buf[..k * d])?;
        sink.push(&buf[..k * d])?;
        left -= k;
    }
    sink.finish()?;
    println!("wrote {} samples of dimension {d} to {}", a.n, a.out.display());
    Ok(())
}
