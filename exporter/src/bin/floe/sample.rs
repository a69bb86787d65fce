//! `floe sample`: draw samples from a model file with the runtime's sampler.

use std::path::PathBuf;

use floe_exporter::data::{write_csv, write_npy};
use floe_exporter::error::ConfigError;
use floe_exporter::freeze::runtime::samples;
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
    let format = match a.out.extension().and_then(|e| e.to_str()) {
        Some(f @ ("npy" | "csv")) => f,
        _ => return Err(ConfigError::invalid("--out", "a path ending in .npy or .csv", a.out.display()).into()),
    };
    let d = model.dim();
    let out = samples(model, a.n, a.seed, &ctx)?;
    if format == "npy" {
        write_npy(&a.out, &out.x, a.n, d)?;
    } else {
        write_csv(&a.out, &out.x, d, &(0..d).map(|j| format!("x{j}")).collect::<Vec<_>>())?;
    }
    println!("wrote {} samples of dimension {d} to {}", a.n, a.out.display());
    Ok(())
}
