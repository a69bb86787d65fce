//! `floe anomaly stream`: a window model of a normal series, a test series scored
//! sample by sample through the runtime's `Stream`.

use std::path::PathBuf;

use std::io::Write;

use floe_exporter::anomaly::stream::{evaluate_stream, fit_stream, read_series, AlarmCount, StreamSpec, HIT_TOLERANCE};
use floe_exporter::anomaly::{FlowSettings, STREAM_STEPS};
use floe_exporter::error::FloeError;
use floe_exporter::Result;
use floe_runtime::format::AlarmRule;

/// Default maximum epochs of a stream model (the bundled firmware model's).
const STREAM_EPOCHS: usize = 60;

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
    /// Use only these samples of the normal series, `a..b` (0-based, end excluded).
    #[arg(long, value_parser = parse_range)]
    train_range: Option<std::ops::Range<usize>>,
    /// Score only these samples of the test series, `a..b`.
    #[arg(long, value_parser = parse_range)]
    test_range: Option<std::ops::Range<usize>>,
    /// Column(s) holding the signal, comma-separated: one channel each; `all`:
    /// every numeric column but the label column (a timestamp column is left
    /// out).
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
    /// Alarm rule `m,k,j`: on when k of the last m windows are above the
    /// threshold, off when at most j are (1 ≤ k ≤ m ≤ 32, j < k). Default: chosen
    /// on the held-out normal windows — m = min(window, 32); k = 1 + the most of
    /// any m consecutive windows above a reference level looser than the
    /// threshold (the score 10 of them exceed); j = ⌊(k − 1)/2⌋.
    #[arg(long, value_parser = parse_rule)]
    alarm: Option<AlarmRule>,
    /// Write every test window's score as CSV (`t,nats,above,alarm,raised`).
    #[arg(long)]
    scores_out: Option<PathBuf>,
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
        settings: FlowSettings {
            epochs: a.flow.epochs.unwrap_or(STREAM_EPOCHS),
            steps: a.flow.steps.unwrap_or(STREAM_STEPS),
            ..a.flow.settings()
        },
        alarm: a.alarm,
    };
    // The settings first, then the files.
    let column = if a.column == ["all"] {
        let c = floe_exporter::anomaly::stream::numeric_columns(&a.train, &a.label_column)?;
        println!("--column all: {} channels ({})", c.len(), c.join(", "));
        c
    } else {
        a.column.clone()
    };
    spec.layout(column.len())?;
    if a.flow.select {
        return Err(floe_exporter::error::ConfigError::invalid(
            "--select",
            "absent for a stream (it chooses among flows for anomaly fit, eval and bench)",
            "--select",
        )
        .into());
    }
    let mut normal = read_series(&a.train, &column, &a.label_column)?;
    let mut test = read_series(&a.test, &column, &a.label_column)?;
    // A range must lie inside its series; sample numbers printed and written
    // below count from the start of the test file, not of the range.
    let within = |flag: &'static str, r: &Option<std::ops::Range<usize>>, n: usize| -> Result<()> {
        match r {
            Some(r) if r.end > n => Err(floe_exporter::error::ConfigError::invalid(
                flag,
                "inside the series (end <= its number of samples)",
                format!("{}..{} for {n} samples", r.start, r.end),
            )
            .into()),
            _ => Ok(()),
        }
    };
    within("--train-range", &a.train_range, normal.len())?;
    within("--test-range", &a.test_range, test.len())?;
    if let Some(r) = a.train_range.clone() {
        normal = normal.slice(r);
    }
    let off = a.test_range.as_ref().map_or(0, |r| r.start);
    if let Some(r) = a.test_range.clone() {
        test = test.slice(r);
    }
    let fitted = fit_stream(&normal, &a.train, &spec, &a.flow.device.open()?)?;
    fitted.loaded.write(&a.model.out)?;
    if let Some(p) = &a.series_out {
        let raw: Vec<u8> = test.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(p, raw).map_err(|e| FloeError::io(p, e))?;
    }
    let ev = evaluate_stream(fitted.loaded.model(), &test, &a.test)?;
    if let Some(p) = &a.scores_out {
        let mut csv = String::from("t,nats,above,alarm,raised\n");
        for w in &ev.windows {
            csv += &format!(
                "{},{},{},{},{}\n",
                w.t + off,
                w.nats,
                u8::from(w.above),
                u8::from(w.alarm),
                u8::from(w.raised)
            );
        }
        let mut f = std::fs::File::create(p).map_err(|e| FloeError::io(p, e))?;
        f.write_all(csv.as_bytes()).map_err(|e| FloeError::io(p, e))?;
    }
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
    let r = fitted.alarm;
    println!(
        "alarm rule: on when {} of the last {} windows are above the threshold, off when at most {} are{}",
        r.raise,
        r.window,
        r.clear,
        if a.alarm.is_some() { " (--alarm)" } else { " (chosen on the held-out normal windows)" }
    );
    println!("test series: {} samples, {} windows scored through floe_runtime::Stream", test.len(), ev.windows.len());
    println!("  top score       {:.3} nats at sample {} (the window ending there)", ev.top.nats, ev.top.t + off);
    for r in &ev.runs {
        println!(
            "  labelled anomaly samples {}–{}: top score {} ({} samples from the region; ±{HIT_TOLERANCE} counts as a hit)",
            r.first + off,
            r.last + off,
            if r.hit { "HIT" } else { "MISS" },
            r.distance
        );
    }
    if ev.runs.is_empty() {
        println!(
            "  alarms          no labelled region: {} windows above the threshold in {} runs; the rule raised {} alarms, \
             on in {} windows",
            ev.per_window.on, ev.per_window.raised, ev.rule.raised, ev.rule.on
        );
    } else {
        let show = |what: &str, c: &AlarmCount| {
            println!(
                "  {what:<16}{} alarms raised ({} within ±{HIT_TOLERANCE} of a labelled region, {} elsewhere); \
                 on in {} windows ({} near, {} elsewhere)",
                c.raised,
                c.raised_near,
                c.raised - c.raised_near,
                c.on,
                c.on_near,
                c.on - c.on_near
            )
        };
        show("per window", &ev.per_window);
        show(&format!("rule {},{},{}", r.window, r.raise, r.clear), &ev.rule);
    }
    Ok(())
}

/// `m,k,j` → an alarm rule the format allows.
fn parse_rule(s: &str) -> std::result::Result<AlarmRule, String> {
    let v: Vec<u8> = s
        .split(',')
        .map(|p| p.trim().parse::<u8>().map_err(|_| format!("`{p}` is not a count 0..=255")))
        .collect::<std::result::Result<_, _>>()?;
    let [window, raise, clear] = v[..] else {
        return Err(format!("expected three counts m,k,j, got {}", v.len()));
    };
    let rule = AlarmRule { window, raise, clear };
    if !rule.is_valid() {
        return Err(format!("needs 1 <= k <= m <= 32 and j < k, got m={window}, k={raise}, j={clear}"));
    }
    Ok(rule)
}

/// `a..b` with a < b → the sample range.
fn parse_range(s: &str) -> std::result::Result<std::ops::Range<usize>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("`{s}` is not a range a..b"))?;
    let a: usize = a.trim().parse().map_err(|_| format!("`{a}` is not a sample index"))?;
    let b: usize = b.trim().parse().map_err(|_| format!("`{b}` is not a sample index"))?;
    if a >= b {
        return Err(format!("the range {a}..{b} is empty"));
    }
    Ok(a..b)
}
