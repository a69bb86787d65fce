//! `floe anomaly eval`: every detector on one labelled set, over seeds.

use floe_exporter::anomaly::bench::evaluate_set;
use floe_exporter::Result;

use super::{nll, summary};
use crate::args::{FlowArgs, LabelledData};

/// `floe anomaly eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The data.
    #[command(flatten)]
    data: LabelledData,
    /// Seeds to average over (0, 1, …).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// False-alarm rate of the thresholds.
    #[arg(long, default_value_t = 0.01)]
    fpr: f64,
    /// Also evaluate the int8 model.
    #[arg(long)]
    int8: bool,
    /// Flow settings.
    #[command(flatten)]
    flow: FlowArgs,
}

pub fn run(a: Args) -> Result<()> {
    let r = evaluate_set(
        &a.data.spec(),
        a.data.normal_label,
        a.seeds,
        a.fpr,
        a.int8,
        &a.flow.settings(),
        &a.flow.device.open()?,
    )?;
    println!(
        "{} over {} seeds (false-alarm rate {}), {:.0} s; Burn vs runtime max |log p diff| {:.1e} ({} test rows beyond \
         the freeze tolerance)",
        a.data.data.display(),
        a.seeds,
        a.fpr,
        r.seconds,
        r.parity.0,
        r.parity.1
    );
    for (seed, sel) in r.selections.iter().enumerate() {
        print!("seed {seed}: ");
        super::print_selection(sel);
    }
    println!("| detector | AUROC | AUPRC | precision/recall at threshold | held-out normal NLL (nats/dim) |");
    println!("|---|---|---|---|---|");
    println!("| flow f32 | {} | {} |", summary(&r.flow), nll(&r.flow_nll));
    if a.int8 {
        println!("| flow int8 | {} | {} |", summary(&r.int8), nll(&r.int8_nll));
    }
    println!("| GMM (full cov., K by BIC: {:?}) | {} | – |", r.gmm_k, summary(&r.gmm));
    println!("| isolation forest | {} | – |", summary(&r.forest));
    Ok(())
}
