//! `floe`: train normalizing flows, freeze them into checked model files, evaluate
//! them exactly with the no_std runtime. One file per command; each parses its
//! arguments, calls the library and prints — the decisions are the library's.

mod anomaly;
mod args;
mod bench_train;
mod demo;
mod eval;
mod export;
mod freeze;
mod import;
mod inspect;
mod plot;
mod repack;
mod sample;
mod train;
mod trajectory;

use clap::{Parser, Subcommand};
use floe_exporter::Result;

/// floe: train normalizing flows, freeze them into checked model files, evaluate
/// them exactly with the no_std runtime.
#[derive(Parser, Debug)]
#[command(name = "floe", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a spline flow on bundled real data, freeze it, check parity, report.
    Demo(demo::Args),
    /// Train a flow on a data file; writes a checkpoint directory.
    Train(train::Args),
    /// Write a model file from a checkpoint and verify it with the runtime.
    Freeze(freeze::Args),
    /// NLL of a data file under a model file, through the runtime.
    Eval(eval::Args),
    /// Export a model file to another format (ONNX).
    #[command(subcommand)]
    Export(export::Cmd),
    /// Bring in a flow trained in PyTorch (zuko NSF / MAF, nflows spline
    /// coupling) from its state dict; writes a checked model file.
    Import(import::Args),
    /// Describe a model file: header, layers, parameters, bytes, scratch.
    Inspect(inspect::Args),
    /// Store a file's int8 weights in the row-pair layout for DSP cores (Cortex-M4/M7), or back row-major.
    Repack(repack::Args),
    /// Draw samples from a model file with the runtime's seeded sampler.
    Sample(sample::Args),
    /// Plot a checkpoint: training curve and 2-D marginals of data vs samples.
    Plot(plot::Args),
    /// Anomaly detection: fit with a calibrated threshold, evaluate against
    /// baselines, benchmark the bundled sets, score a stream.
    #[command(subcommand)]
    Anomaly(anomaly::Cmd),
    /// Trajectory densities on ETH/UCY: train, evaluate, benchmark, plot.
    #[command(subcommand)]
    Trajectory(trajectory::Cmd),
    /// Training throughput per device, fused spline vs Burn ops (a benchmark).
    BenchTrain(bench_train::Args),
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Train(a) => train::run(a),
        Cmd::Freeze(a) => freeze::run(a),
        Cmd::Eval(a) => eval::run(a),
        Cmd::Export(c) => export::run(c),
        Cmd::Import(a) => import::run(a),
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Repack(a) => repack::run(a),
        Cmd::Sample(a) => sample::run(a),
        Cmd::Plot(a) => plot::run(a),
        Cmd::Anomaly(c) => anomaly::run(c),
        Cmd::Trajectory(c) => trajectory::run(c),
        Cmd::BenchTrain(a) => bench_train::run(a),
    }
}

/// `floe … | head` closes stdout early; `println!` then panics. Like other Unix
/// tools, stop quietly instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The error and its sources, each on its own line unless the line above
/// already says it.
fn report(e: &dyn std::error::Error) -> String {
    let mut out = format!("error: {e}");
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !last.contains(&msg) {
            out.push_str(&format!("\n  caused by: {msg}"));
        }
        last = msg;
        source = s.source();
    }
    out
}

fn main() {
    quiet_on_broken_pipe();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("{}", report(&e));
        std::process::exit(1);
    }
}
