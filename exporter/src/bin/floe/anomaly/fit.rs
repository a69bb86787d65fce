//! `floe anomaly fit`: a detector with a calibrated threshold, written to a file.

use std::path::PathBuf;

use floe_exporter::anomaly::bench::check_fpr;
use floe_exporter::anomaly::{evaluate, fit_flow, split, Metrics};
use floe_exporter::freeze::PARITY_TOLERANCE;
use floe_exporter::train::cpu;
use floe_exporter::Result;
use floe_runtime::format::Precision;

use crate::args::{precision_parser, FlowArgs, LabelledData};

/// `floe anomaly fit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The data.
    #[command(flatten)]
    data: LabelledData,
    /// False-alarm rate the threshold is calibrated for.
    #[arg(long, default_value_t = 0.01)]
    fpr: f64,
    /// Write an int8 or w8 model (threshold calibrated on it).
    #[arg(long, value_parser = precision_parser())]
    quantize: Option<Precision>,
    /// Seed (split, initialization, batches).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model file to write.
    #[arg(long)]
    out: PathBuf,
    /// Flow settings.
    #[command(flatten)]
    flow: FlowArgs,
}

fn print_metrics(name: &str, m: &Metrics) {
    println!(
        "  {name:<14} AUROC {:.4}  AUPRC {:.4}  at threshold: precision {:.3} recall {:.3} (test false-alarm rate {:.4})",
        m.auroc, m.auprc, m.precision, m.recall, m.fpr
    );
}

pub fn run(a: Args) -> Result<()> {
    check_fpr(a.fpr)?;
    let s = split(&a.data.spec(), a.data.normal_label, a.seed)?;
    let fitted = fit_flow(&s, &a.flow.settings(), a.seed, a.fpr, a.quantize, PARITY_TOLERANCE, &cpu())?;
    let model = fitted.deployed();
    let loaded = model.load()?;
    loaded.write(&a.out)?;
    let t = model.anomaly.map_or(f32::NAN, |t| t.threshold);
    println!(
        "wrote {} ({} bytes{}): threshold {t:.4} nats at false-alarm rate {} on {} calibration rows",
        a.out.display(),
        loaded.bytes().len(),
        a.quantize.map_or(String::new(), |q| format!(", {}", q.name())),
        a.fpr,
        s.calib.n()
    );
    println!("test set: {} held-out normal rows + {} anomalies", s.test_normal.n(), s.anomalies.n());
    print_metrics("flow f32", &evaluate(&fitted.f32_model, &s)?);
    if let Some((qm, _)) = &fitted.quantized {
        print_metrics("flow quantized", &evaluate(qm, &s)?);
    }
    Ok(())
}
