//! `floe anomaly stream`: a window model of a normal series, a test series scored
//! sample by sample through the runtime's `Stream`.

use std::path::PathBuf;

use floe_exporter::anomaly::stream::{evaluate_stream, fit_stream, read_series, StreamSpec, HIT_TOLERANCE};
use floe_exporter::error::FloeError;
use floe_exporter::Result;

use crate::args::{FlowArgs, ModelOut};

/// `floe anomaly stream`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Normal series (CSV with a header).
    #[arg(long)]
    train: PathBuf,
    /// Series to score (CSV with a header).
    #[arg(long)]
    test: PathBuf,
    /// Column(s) holding the signal, comma-separated: one channel each.
    #[arg(long, default_value = "value", value_delimiter = ',')]
    column: Vec<String>,
    /// Column holding 0/1 anomaly labels in the test series, if any.
    #[arg(long, default_value = "is_anomaly")]
    label_column: String,
    /// Samples per window.
    #[arg(long, default_value_t = 32)]
    window: u16,
    /// Model the window's first differences instead of its values.
    #[arg(long)]
    diff: bool,
    /// False-alarm rate of the threshold (on held-out windows of the normal series).
    #[arg(long, default_value_t = 0.001)]
    fpr: f64,
    /// The model file.
    #[command(flatten)]
    model: ModelOut,
    /// Also write the test series as raw little-endian f32 (firmware input).
    #[arg(long)]
    series_out: Option<PathBuf>,
    /// Flow settings.
    #[command(flatten)]
    flow: FlowArgs,
}

pub fn run(a: Args) -> Result<()> {
    let spec = StreamSpec {
        window: a.window,
        differences: a.diff,
        fpr: a.fpr,
        quantize: a.model.quantize,
        seed: a.model.seed,
        settings: a.flow.settings(),
    };
    // The settings first, then the files.
    spec.layout(a.column.len())?;
    let normal = read_series(&a.train, &a.column, &a.label_column)?;
    let test = read_series(&a.test, &a.column, &a.label_column)?;
    let fitted = fit_stream(&normal, &a.train, &spec, &a.flow.device.open()?)?;
    fitted.loaded.write(&a.model.out)?;
    if let Some(p) = &a.series_out {
        let raw: Vec<u8> = test.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(p, raw).map_err(|e| FloeError::io(p, e))?;
    }
    let ev = evaluate_stream(fitted.loaded.model(), &test, &a.test)?;
    println!(
        "stream model: window {} ({}), {} training windows, {} calibration windows, {} epochs; parity max |diff| {:.1e}",
        a.window,
        if a.diff { "first differences" } else { "values" },
        fitted.n_train,
        fitted.n_calib,
        fitted.epochs,
        fitted.parity.max_abs_diff
    );
    println!(
        "wrote {} ({} bytes{}; f32 {} bytes): threshold {:.3} nats at false-alarm rate {} on held-out normal windows",
        a.model.out.display(),
        fitted.loaded.bytes().len(),
        a.model.quantize.map_or(String::new(), |q| format!(", {}", q.name())),
        fitted.f32_bytes,
        fitted.threshold,
        a.fpr
    );
    println!("test series: {} samples, {} windows scored through floe_runtime::Stream", test.len(), ev.windows.len());
    println!("  top score       {:.3} nats at sample {} (the window ending there)", ev.top.nats, ev.top.t);
    for r in &ev.runs {
        println!(
            "  labelled anomaly samples {}–{}: top score {} ({} samples from the region; ±{HIT_TOLERANCE} counts as a hit)",
            r.first,
            r.last,
            if r.hit { "HIT" } else { "MISS" },
            r.distance
        );
    }
    if !ev.runs.is_empty() {
        println!(
            "  alarms          {} windows above the threshold ({} within ±{HIT_TOLERANCE} of a labelled region, {} elsewhere)",
            ev.alarms,
            ev.alarms_near_runs,
            ev.alarms - ev.alarms_near_runs
        );
    }
    Ok(())
}
