//! `floe anomaly fit`: a detector with a calibrated threshold, written to a file.

use floe_exporter::anomaly::bench::check_fpr;
use floe_exporter::anomaly::{evaluate, fit_flow, split, Metrics};
use floe_exporter::freeze::PARITY_TOLERANCE;
use floe_exporter::Result;

use crate::args::{FlowArgs, LabelledData, ModelOut};

/// `floe anomaly fit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The data.
    #[command(flatten)]
    data: LabelledData,
    /// False-alarm rate the threshold is calibrated for.
    #[arg(long, default_value_t = 0.01)]
    fpr: f64,
    /// The model file.
    #[command(flatten)]
    model: ModelOut,
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
    let (seed, quantize, out) = (a.model.seed, a.model.quantize, &a.model.out);
    let s = split(&a.data.spec(), a.data.normal_label, seed)?;
    let fitted = fit_flow(&s, &a.flow.settings(), seed, a.fpr, quantize, PARITY_TOLERANCE, &a.flow.device.open()?)?;
    if let Some(sel) = &fitted.selection {
        super::print_selection(sel);
    }
    let model = fitted.deployed();
    let loaded = model.load()?;
    loaded.write(out)?;
    let t = model.anomaly.map_or(f32::NAN, |t| t.threshold);
    println!(
        "wrote {} ({} bytes{}): threshold {t:.4} nats at false-alarm rate {} on {} calibration rows",
        out.display(),
        loaded.bytes().len(),
        quantize.map_or(String::new(), |q| format!(", {}", q.name())),
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
