//! `floe repack`: a model file with its int8 conditioners stored in the
//! row-pair layout (for Cortex-M4/M7-class targets, whose DSP kernel reads it
//! fastest; their firmware needs the runtime's `row-pairs` feature, which `dsp`
//! implies) or back in row-major order (what every runtime build reads). The
//! same model and the same bits either way. It also stores the int8 hidden
//! units' requantization words where the file does not have them yet (files
//! the exporter writes do), unless told to keep the scales.

use std::path::PathBuf;

use clap::ValueEnum;
use floe_exporter::freeze::{LoadedModel, RELAYOUT_CHECK_ROWS};
use floe_exporter::Result;

/// How int8 weights are stored.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Layout {
    /// Row pairs, interleaved input by input (docs/FORMAT.md).
    Pairs,
    /// Row-major.
    Rows,
}

/// What to do with int8 hidden units' requantization multipliers.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Words {
    /// Store them as requantization words (docs/FORMAT.md, layer flag bit 5).
    Store,
    /// Leave the file's form as it is (a file with bf16 scales keeps them, for
    /// runtimes older than the words).
    Keep,
}

/// `floe repack`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file to read.
    model: PathBuf,
    /// Where to write the rewritten file (may be the input).
    #[arg(long)]
    out: PathBuf,
    /// The int8 weight layout to write.
    #[arg(long, value_enum, default_value = "pairs")]
    int8_layout: Layout,
    /// Store requantization words, or keep the multipliers' form.
    #[arg(long, value_enum, default_value = "store")]
    requant_words: Words,
}

pub fn run(a: Args) -> Result<()> {
    let pairs = matches!(a.int8_layout, Layout::Pairs);
    let (new, n) = LoadedModel::read(&a.model)?.relayout(pairs)?;
    let (new, words) = match a.requant_words {
        Words::Store => new.store_requant_words()?,
        Words::Keep => (new, 0),
    };
    new.write(&a.out)?;
    let layout = if pairs { "the row-pair layout" } else { "row-major order" };
    let check = if n + words == 0 {
        "nothing to rewrite (no int8 layer that the layout applies to, or already so)".to_string()
    } else {
        format!("log p of {RELAYOUT_CHECK_ROWS} sampled rows identical bit for bit")
    };
    println!(
        "{}: {n} int8 layer(s) rewritten into {layout}, {words} given requantization words; {check}; wrote {} ({} bytes)",
        a.model.display(),
        a.out.display(),
        new.bytes().len()
    );
    Ok(())
}
