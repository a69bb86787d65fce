//! `floe upgrade`: a model file written before the int8 row-pair layout, with
//! its int8 conditioners rewritten into it (the same model and bits; faster on
//! the Cortex-M4F).

use std::path::PathBuf;

use floe_exporter::freeze::{LoadedModel, UPGRADE_CHECK_ROWS};
use floe_exporter::Result;

/// `floe upgrade`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file to read.
    model: PathBuf,
    /// Where to write the upgraded file (may be the input).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let (new, n) = LoadedModel::read(&a.model)?.upgraded()?;
    new.write(&a.out)?;
    println!(
        "{}: {n} int8 layer(s) rewritten into the row-pair layout; log p of {UPGRADE_CHECK_ROWS} sampled rows \
         identical bit for bit; wrote {} ({} bytes)",
        a.model.display(),
        a.out.display(),
        new.bytes().len()
    );
    Ok(())
}
