//! `floe freeze`: a checkpoint into a checked model file, f32 or quantized.

use std::path::PathBuf;

use floe_exporter::freeze::{freeze_checkpoint, PARITY_TOLERANCE};
use floe_exporter::quant::{quantize_checkpoint, QuantConfig};
use floe_exporter::train::{cpu, Checkpoint};
use floe_exporter::Result;
use floe_runtime::format::Precision;

use crate::args::precision_parser;

/// `floe freeze`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory written by `floe train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Model file to write.
    #[arg(long)]
    out: PathBuf,
    /// Largest allowed |log p_burn - log p_runtime| per held-out row, nats.
    #[arg(long, default_value_t = PARITY_TOLERANCE)]
    tolerance: f64,
    /// Quantize the conditioners: `int8` (int8 weights and activations, int32
    /// accumulation) or `w8` (int8 weights, f32 activations).
    #[arg(long, value_parser = precision_parser())]
    quantize: Option<Precision>,
    /// Training rows that calibrate the int8 activation ranges.
    #[arg(long, default_value_t = 1000)]
    calib: usize,
    /// A layer stays f32 when quantizing it alone raises the validation NLL by
    /// more than this many nats/dim.
    #[arg(long, default_value_t = 0.01)]
    max_layer_cost: f64,
}

pub fn run(a: Args) -> Result<()> {
    let (ck, flow) = Checkpoint::load(&a.checkpoint, &cpu())?;
    let Some(precision) = a.quantize else {
        let f = freeze_checkpoint(&ck, &flow, a.tolerance)?;
        f.loaded.write(&a.out)?;
        let p = &f.parity;
        println!(
            "wrote {} ({} bytes); runtime reproduces Burn on {} held-out rows: max |diff| {:.2e} nats (tolerance \
             {:.0e} + 1e-6 |log p|; {} rows within their f32 sensitivity allowance)",
            a.out.display(),
            f.loaded.bytes().len(),
            p.rows,
            p.max_abs_diff,
            a.tolerance,
            p.ill_conditioned
        );
        return Ok(());
    };
    let cfg = QuantConfig { precision, max_layer_cost: a.max_layer_cost };
    let r = quantize_checkpoint(&ck, &flow, cfg, a.calib, a.tolerance)?;
    let q = &r.quantized;
    q.loaded.write(&a.out)?;
    let name = precision.name();
    let (fb, qb) = (r.f32.loaded.bytes().len(), q.loaded.bytes().len());
    println!(
        "wrote {} ({qb} bytes, {name}); the f32 model reproduces Burn on {} held-out rows (max |diff| {:.2e} nats)",
        a.out.display(),
        r.f32.parity.rows,
        r.f32.parity.max_abs_diff
    );
    println!();
    println!("  file bytes      f32 {fb} -> {name} {qb} ({:.1} % of f32)", 100.0 * qb as f64 / fb as f64);
    println!(
        "  test NLL        f32 {:.5} -> quantized {:.5} nats/dim (+{:.5}) over {} rows",
        r.test_nll.0,
        r.test_nll.1,
        r.test_nll.1 - r.test_nll.0,
        r.test_rows
    );
    println!("  val NLL         f32 {:.5} -> quantized {:.5} nats/dim", q.val_nll.0, q.val_nll.1);
    if let Some(au) = &r.auroc {
        println!(
            "  AUROC           f32 {:.4} -> quantized {:.4} ({} held-out normal rows vs {} anomalies)",
            au.f32, au.quantized, au.normal, au.anomalies
        );
    }
    println!(
        "  bit-exact       log p of {} held-out rows: runtime (quantized file) = simulated quantization \
         (f32 model + reference {name} arithmetic); {} conditioner outputs compared",
        q.verified.rows, q.verified.values
    );
    println!(
        "  layers (a layer stays f32 when quantizing it alone costs > {} nats/dim on validation):",
        a.max_layer_cost
    );
    for ch in &q.choices {
        println!(
            "    {:>3} {:<16} {:<5} cost {:+.5} nats/dim, conditioner {} -> {} bytes{}{}",
            ch.layer,
            ch.kind,
            ch.precision.name(),
            ch.cost,
            ch.bytes.0,
            if ch.precision.is_quantized() { ch.bytes.1 } else { ch.bytes.0 },
            if ch.note.is_empty() { "" } else { "  -- " },
            ch.note
        );
    }
    Ok(())
}
