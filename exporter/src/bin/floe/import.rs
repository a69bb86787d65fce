//! `floe import zuko|nflows STATE`: a flow trained in PyTorch, as a checked
//! model file.

use std::path::PathBuf;

use floe_exporter::error::FloeError;
use floe_exporter::import::{self, ImportOptions, Library};
use floe_exporter::Result;

/// `floe import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the flow was trained: zuko (NSF, MAF) or nflows (spline coupling).
    library: Library,
    /// The flow's `state_dict()`: `.safetensors` (`safetensors.torch.save_file`),
    /// or a `torch.save` pickle (`.pt`, `.pth`).
    state: PathBuf,
    /// Output model file (default: the state dict's path with extension `.floe`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which flow it is: zuko `nsf` or `maf`, nflows `rq-coupling` (or the
    /// file's metadata `flow`): the tensor names alone do not tell zuko's NSF
    /// from its BPF, or nflows' spline couplings from its linear ones.
    #[arg(long, value_parser = ["nsf", "maf", "rq-coupling"])]
    flow: Option<String>,
    /// Spline bound: nflows' `tail_bound` (required unless the file's metadata
    /// has `tail_bound`), zuko's `bound` (default 5).
    #[arg(long)]
    bound: Option<f32>,
    /// Quantize the conditioners (`int8` or `w8`), calibrated on samples of the
    /// imported flow itself (no training data needed); `floe eval` measures the
    /// result on real rows.
    #[arg(long, value_parser = crate::args::precision_parser())]
    quantize: Option<floe_runtime::format::Precision>,
    /// With --quantize: a layer stays f32 when quantizing it alone raises the
    /// NLL of the model's own samples by more than this many nats/dim.
    #[arg(long, default_value_t = 0.01)]
    max_layer_cost: f64,
    /// Conditioner activation, if not the libraries' default ReLU (or the
    /// file's metadata `activation`).
    #[arg(long, value_parser = ["relu", "tanh"])]
    activation: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    let device = floe_exporter::train::device::cpu();
    let opts = ImportOptions { bound: a.bound, activation: a.activation, flow: a.flow };
    let imported = import::import(a.library, &a.state, &opts, &device)?;
    for line in &imported.summary {
        println!("  {line}");
    }
    let (f32_loaded, parity) = import::freeze_imported(&imported.flow)?;
    let out = a.out.unwrap_or_else(|| a.state.with_extension("floe"));
    if out == a.state {
        return Err(FloeError::Import { path: out, msg: "the output would overwrite the state dict".into() });
    }
    let quantized = match a.quantize {
        Some(p) => Some(import::quantize_imported(&imported.flow, p, a.max_layer_cost)?),
        None => None,
    };
    let loaded = quantized.as_ref().map_or(&f32_loaded, |q| &q.loaded);
    loaded.write(&out)?;
    println!(
        "wrote {} ({} bytes): {} flow, D = {}, {} layers; parity Burn ↔ runtime on {} rows: max |Δ log p| = {:.2e} nats",
        out.display(),
        loaded.bytes().len(),
        a.library.name(),
        loaded.model().dim(),
        loaded.model().n_layers(),
        parity.rows,
        parity.max_abs_diff
    );
    if let (Some(q), Some(p)) = (&quantized, a.quantize) {
        let quantized_layers = q.choices.iter().filter(|c| c.precision != floe_runtime::format::Precision::F32).count();
        println!(
            "  {}: {quantized_layers} of {} conditioners quantized, {} -> {} bytes; NLL of the model's own samples \
             {:.5} -> {:.5} nats/dim; runtime = reference arithmetic bit for bit on {} rows",
            p.name(),
            q.choices.len(),
            f32_loaded.bytes().len(),
            q.loaded.bytes().len(),
            q.val_nll.0,
            q.val_nll.1,
            q.verified.rows
        );
    }
    Ok(())
}
