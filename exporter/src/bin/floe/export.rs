//! `floe export onnx`: a model file's log-density as an ONNX graph.

use std::path::PathBuf;

use floe_exporter::error::FloeError;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::Result;

/// `floe export …`.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Write the model's log-density as an ONNX graph (opset 17) for ONNX
    /// Runtime: inputs `x` [N, D] (and `context` [N, C]), output `log_prob` [N].
    /// `cargo xtask onnx` checks ONNX Runtime against the runtime on every
    /// bundled model.
    Onnx(OnnxArgs),
}

/// `floe export onnx`.
#[derive(clap::Args, Debug)]
pub struct OnnxArgs {
    /// Model file.
    model: PathBuf,
    /// Output file (default: the model's path with extension `.onnx`).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(c: Cmd) -> Result<()> {
    match c {
        Cmd::Onnx(a) => onnx(a),
    }
}

fn onnx(a: OnnxArgs) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    let bytes = floe_exporter::onnx::export_bytes(loaded.model(), loaded.bytes())?;
    let out = a.out.unwrap_or_else(|| a.model.with_extension("onnx"));
    if out == a.model {
        return Err(FloeError::Onnx(format!("{}: the output would overwrite the model file", out.display())));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FloeError::io(dir, e))?;
    }
    std::fs::write(&out, &bytes).map_err(|e| FloeError::io(&out, e))?;
    let m = loaded.model();
    println!(
        "wrote {} ({} bytes, ONNX opset {}): log p(x{}) of {}, x [N, {}]{}",
        out.display(),
        bytes.len(),
        floe_exporter::onnx::OPSET,
        if m.context_dim() > 0 { " | context" } else { "" },
        a.model.display(),
        m.dim(),
        if m.context_dim() > 0 { format!(", context [N, {}]", m.context_dim()) } else { String::new() }
    );
    Ok(())
}
