//! `floe inspect`: a model file's header and layers.

use std::path::PathBuf;

use floe_exporter::freeze::LoadedModel;
use floe_exporter::Result;
use floe_runtime::exporter_hooks::tensor_record;
use floe_runtime::Model;

/// `floe inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file.
    model: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let loaded = LoadedModel::read(&a.model)?;
    print_model(loaded.model())
}

fn print_model(model: &Model<'_>) -> Result<()> {
    let h = model.header();
    println!("floe model, format version {}", h.version);
    println!("  file            {} bytes (CRC-32 ok)", h.file_len);
    println!("  dim             {}\n  context dim     {}", h.dim, h.context_dim);
    println!("  base            {:?}", h.base);
    println!("  layers          {}\n  tensors         {}", h.n_layers, h.n_tensors);
    println!("  scratch         {} f32 = {} bytes", h.scratch_len, h.scratch_len * 4);
    if let Some(a) = h.anomaly {
        println!("  threshold       {} nats (false-alarm rate {} on held-out normal rows)", a.threshold, a.target_fpr);
    }
    if let Some(s) = h.stream {
        let input = if s.differences { "first differences" } else { "values" };
        println!("  stream          window {} x {} channel(s), {input}", s.window, s.channels);
    }
    if let Some(r) = h.alarm {
        println!(
            "  alarm rule      on at {} of the last {} windows above the threshold, off at <= {}",
            r.raise, r.window, r.clear
        );
    }
    if let Some(t) = h.trajectory {
        println!(
            "  trajectory      {} observed positions -> {} steps, {}{}, step embedding {}",
            t.observed,
            t.horizon,
            if t.per_step { "one flow per step" } else { "one shared flow" },
            if t.heading_frame { ", heading frame" } else { "" },
            t.embedding
        );
    }
    let (mean, std) = model.standardization();
    println!("  standardization mean {mean:?}\n                  std  {std:?}");
    println!(
        "  {:>3} {:<16} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>6} {:>5}",
        "#", "kind", "split", "hidden", "depth", "bins", "params", "bytes", "work", "dtype"
    );
    let (mut tp, mut tb) = (0, 0);
    for i in 0..model.n_layers() {
        let li = model.layer_info(i)?;
        let r = li.record;
        let conditioned = r.kind.has_conditioner();
        let depth =
            if conditioned { format!("{}{}", r.blocks, if r.residual() { "r" } else { "" }) } else { "-".into() };
        // A conditioned layer's precision; else its tensors' element type (a
        // permutation's indices are u16; a reversal has no tensors).
        let dtype = if conditioned {
            r.precision().map_or("?", |p| p.name())
        } else if r.n_tensors == 0 {
            "-"
        } else {
            tensor_record(model, r.first_tensor)?.dtype.name()
        };
        println!(
            "  {:>3} {:<16} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>6} {:>5}",
            i,
            r.kind.name(),
            r.split,
            r.hidden,
            depth,
            r.bins,
            li.n_params,
            li.n_bytes,
            li.work,
            dtype
        );
        tp += li.n_params;
        tb += li.n_bytes;
    }
    println!("  total layer parameters {tp} ({tb} bytes of tensor data)");
    Ok(())
}
