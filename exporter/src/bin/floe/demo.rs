//! `floe demo`: the README's main command.

use std::path::PathBuf;
use std::time::Instant;

use floe_exporter::demo;
use floe_exporter::freeze::PARITY_TOLERANCE;
use floe_exporter::Result;

/// `floe demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output directory (checkpoint, model file, plots).
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Maximum epochs.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Training device.
    #[command(flatten)]
    device: crate::args::DeviceArgs,
}

pub fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    let data = demo::demo_data()?;
    println!("floe demo: neural spline flow on ADBench thyroid (normal rows), {}", data.display());
    let trained = demo::train(&data, &a.out, a.epochs, a.seed, &a.device.open_all()?, !a.quiet)?;
    crate::train::print_trained(&trained);
    let r = demo::finish(&trained, &a.out)?;
    let (ck, p) = (&trained.checkpoint, &r.parity);
    println!();
    println!(
        "  data            {} rows x {} dims (train {}, val {}, test {})",
        r.rows.0, r.rows.1, r.split.0, r.split.1, r.split.2
    );
    println!(
        "  epochs          {} (best {}), {:.1} s",
        ck.history.val_nll.len(),
        ck.history.best_epoch + 1,
        ck.history.seconds
    );
    println!("  test NLL Burn   {:.5} nats/dim", r.burn_nll);
    println!("  test NLL floe   {:.5} nats/dim (no_std runtime, {:.1} us/row)", r.runtime_nll, r.us_per_row);
    println!(
        "  parity          max |log p diff| {:.2e} nats over {} rows (tolerance {:.0e} + 1e-6 |log p|; {} rows \
         passed through their f32 sensitivity allowance)",
        p.max_abs_diff, p.rows, PARITY_TOLERANCE, p.ill_conditioned
    );
    println!("  model file      {} ({} bytes)", r.model_file.0.display(), r.model_file.1);
    println!("  scratch         {} f32 ({} bytes)", r.scratch_len, r.scratch_len * 4);
    println!("  test rows       {} (raw little-endian f32, for firmware)", r.rows_file.display());
    println!("  plot            {}", r.png.display());
    println!("  wall time       {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
