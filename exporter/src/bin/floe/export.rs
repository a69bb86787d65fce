//! `floe export onnx`: a model file's log-density as an ONNX graph.

use std::path::PathBuf;

use floe_exporter::error::FloeError;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::Result;

/// `floe export …`.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Write the model's log-density as an ONNX graph (opset 17) for ONNX
    /// Runtime: inputs `x` [N, D] (and `context` [N, C]), output `log_prob` [N];
    /// with `--sampler`, its sampler given base-space points.
    /// `cargo xtask onnx` checks ONNX Runtime against the runtime on every
    /// bundled model.
    Onnx(OnnxArgs),
}

/// `floe export onnx`.
#[derive(clap::Args, Debug)]
pub struct OnnxArgs {
    /// Model file.
    model: PathBuf,
    /// Output file (default: the model's path with extension `.onnx`, or
    /// `.sampler.onnx` with `--sampler`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the sampler instead: input `z` [N, D], points of the base
    /// distribution's space (standard normal draws for a normal base), output
    /// `x` [N, D] = the flow's inverse, in data units.
    #[arg(long)]
    sampler: bool,
}

pub fn run(c: Cmd) -> Result<()> {
    match c {
        Cmd::Onnx(a) => onnx(a),
    }
}

fn onnx(a: OnnxArgs) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    let bytes = if a.sampler {
        floe_exporter::onnx::export_sampler_bytes(loaded.model(), loaded.bytes())?
    } else {
        floe_exporter::onnx::export_bytes(loaded.model(), loaded.bytes())?
    };
    let out = a.out.unwrap_or_else(|| a.model.with_extension(if a.sampler { "sampler.onnx" } else { "onnx" }));
    if out == a.model {
        return Err(FloeError::Onnx(format!("{}: the output would overwrite the model file", out.display())));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FloeError::io(dir, e))?;
    }
    std::fs::write(&out, &bytes).map_err(|e| FloeError::io(&out, e))?;
    let m = loaded.model();
    let ctx = if m.context_dim() > 0 { format!(", context [N, {}]", m.context_dim()) } else { String::new() };
    let bar = if m.context_dim() > 0 { " | context" } else { "" };
    let what = if a.sampler {
        format!("the sampler x = f⁻¹(z{bar}) of {}, z [N, {}]{ctx}", a.model.display(), m.dim())
    } else {
        format!("log p(x{bar}) of {}, x [N, {}]{ctx}", a.model.display(), m.dim())
    };
    println!("wrote {} ({} bytes, ONNX opset {}): {what}", out.display(), bytes.len(), floe_exporter::onnx::OPSET);
    Ok(())
}
