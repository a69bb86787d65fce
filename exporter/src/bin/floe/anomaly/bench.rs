//! `floe anomaly bench`: every detector on every labelled `.npz` of a folder
//! (the bundled ADBench sets by default).

use std::path::PathBuf;
use std::time::Instant;

use floe_exporter::anomaly::bench::{evaluate_set, npz_files, overall};
use floe_exporter::anomaly::mean_std;
use floe_exporter::data::{self, DataSpec};
use floe_exporter::Result;

use super::{nll, summary};
use crate::args::FlowArgs;

/// `floe anomaly bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of labelled .npz files (`X`, `y`; label 0 normal): every one is
    /// evaluated, the bundled ADBench names first.
    #[arg(long, default_value = "data/adbench")]
    dir: PathBuf,
    /// Seeds to average over.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// False-alarm rate of the thresholds.
    #[arg(long, default_value_t = 0.01)]
    fpr: f64,
    /// Flow settings.
    #[command(flatten)]
    flow: FlowArgs,
}

pub fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    println!(
        "ADBench, semi-supervised protocol (45 % of normal rows train, 15 % calibrate, 40 % + all anomalies test), \
         {} seeds, thresholds at false-alarm rate {}",
        a.seeds, a.fpr
    );
    println!("AUROC, AUPRC: mean±std over seeds; P/R: precision/recall at the calibrated threshold (mean)\n");
    println!(
        "| set | rows x dims | flow f32 AUROC | AUPRC | P/R | flow int8 AUROC | AUPRC | P/R | int8 − f32 AUROC | \
         GMM AUROC | AUPRC | P/R | iForest AUROC | AUPRC | P/R | parity | held-out normal NLL f32 / int8 |{}",
        if a.flow.select { " flow chosen per seed (select s) |" } else { "" }
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|{}",
        if a.flow.select { "---|" } else { "" }
    );
    let settings = a.flow.settings();
    let device = a.flow.device.open()?;
    let mut results = Vec::new();
    for path in npz_files(&a.dir)? {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let spec = DataSpec::file(path);
        let t = data::load(&spec)?;
        let r = evaluate_set(&spec, 0, a.seeds, a.fpr, true, &settings, &device)?;
        let delta: Vec<f64> = r.int8.iter().zip(&r.flow).map(|(q, f)| q.auroc - f.auroc).collect();
        let (dm, _) = mean_std(&delta);
        let worst = delta.iter().map(|d| d.abs()).fold(0.0f64, f64::max);
        let chosen: Vec<String> =
            r.selections.iter().map(|s| format!("{} ({:.0})", s.chosen_name(), s.seconds)).collect();
        let chosen = if a.flow.select { format!(" {} |", chosen.join(", ")) } else { String::new() };
        println!(
            "| {name} | {} x {} | {} | {} | {dm:+.4} (max |Δ| {worst:.4}) | {} | {} | {:.0e} ({}) | {} / {} |{chosen}",
            t.n,
            t.d,
            summary(&r.flow),
            summary(&r.int8),
            summary(&r.gmm),
            summary(&r.forest),
            r.parity.0,
            r.parity.1,
            nll(&r.flow_nll),
            nll(&r.int8_nll),
        );
        results.push((name, r));
    }
    if let Some(o) = overall(&results) {
        println!(
            "\nmean AUROC over {} set{}: flow f32 {:.4}, int8 {:.4}; GMM {:.4}, iForest {:.4}, best baseline per set {:.4}; \
             int8 minus the best baseline, worst set: {} ({:+.4})",
            o.sets,
            if o.sets == 1 { "" } else { "s" },
            o.flow,
            o.int8.unwrap_or(f64::NAN),
            o.gmm,
            o.forest,
            o.best_baseline,
            o.worst.0,
            o.worst.1
        );
    }
    println!("\ntotal {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
