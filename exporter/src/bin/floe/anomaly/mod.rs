//! `floe anomaly …`: fit, evaluate and benchmark flow anomaly detectors, and the
//! streaming case.

mod bench;
mod eval;
mod fit;
mod stream;

use clap::Subcommand;
use floe_exporter::anomaly::select::Selection;
use floe_exporter::anomaly::{mean_std, Metrics};
use floe_exporter::Result;

/// `floe anomaly` subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Train on normal rows, calibrate a threshold at a false-alarm rate, write the model.
    Fit(fit::Args),
    /// Flow vs full-covariance GMM vs isolation forest on one labelled file, over seeds.
    Eval(eval::Args),
    /// `eval` on every bundled ADBench set: the README table.
    Bench(bench::Args),
    /// A sensor stream: learn windows of a normal series, score a test series.
    Stream(stream::Args),
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Fit(a) => fit::run(a),
        Cmd::Eval(a) => eval::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Stream(a) => stream::run(a),
    }
}

/// One line per candidate of a `--select`: its held-out normal NLL, epochs and
/// time, the chosen one marked.
fn print_selection(sel: &Selection) {
    println!(
        "model selection ({:.0} s): held-out normal NLL (calibration rows, nats/dim), no anomaly used",
        sel.seconds
    );
    for (i, t) in sel.tried.iter().enumerate() {
        let mark = if i == sel.chosen { "  <- chosen" } else { "" };
        match (t.nll, &t.failed) {
            (Some(v), _) => println!("  {:<36} {v:>9.4}  ({} epochs, {:.0} s){mark}", t.name, t.epochs, t.seconds),
            (None, Some(e)) => println!("  {:<36} {:>9}  (failed after {:.0} s: {e})", t.name, "-", t.seconds),
            (None, None) => println!("  {:<36} {:>9}  (not started: time budget spent)", t.name, "-"),
        }
    }
}

/// Mean±std of per-seed held-out normal NLLs (nats/dim).
fn nll(v: &[f64]) -> String {
    let (m, s) = mean_std(v);
    format!("{m:.3}±{s:.3}")
}

/// `AUROC | AUPRC | P/R` over seeds: mean±std, mean precision / recall.
fn summary(v: &[Metrics]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let mean = |g: fn(&Metrics) -> f64| mean_std(&v.iter().map(g).collect::<Vec<_>>());
    let f = |g: fn(&Metrics) -> f64| {
        let (m, s) = mean(g);
        format!("{m:.3}±{s:.3}")
    };
    format!("{} | {} | {:.2}/{:.2}", f(|m| m.auroc), f(|m| m.auprc), mean(|m| m.precision).0, mean(|m| m.recall).0)
}
