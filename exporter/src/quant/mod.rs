//! Post-training quantization of a frozen model: int8 (weights and activations)
//! or w8 (weights only) — the runtime's [`Precision`]s — with per-layer mixed
//! precision decided on validation NLL, and an independent reference of the
//! quantized arithmetic that must reproduce the runtime's conditioner outputs bit
//! for bit before a file is written.
//!
//! - [`scheme`](self#scheme): how an f32 conditioner becomes w8 or int8;
//! - calibration through the runtime's conditioner trace;
//! - the reference arithmetic (the oracle) and the bit-exact verification.
//!
//! Only conditioners are quantized: the spline/affine maps, LU layers and the
//! base density stay f32 (they are a small share of bytes and MACs, and the
//! log-determinant needs f32).
//!
//! # Scheme
//!
//! See `scheme.rs` and docs/FORMAT.md, "Quantized conditioners".

pub(crate) mod calibrate;
mod checkpoint;
mod reference;
pub(crate) mod scheme;
pub(crate) mod verify;

use floe_runtime::format::Precision;

pub use checkpoint::{quantize_checkpoint, AurocPair, QuantizedCheckpoint};
pub use reference::reference;
pub use scheme::bf16_up;
pub use verify::Verified;

use crate::data::Rows;
use crate::error::{ConfigError, Result};
use crate::freeze::runtime::log_probs;
use crate::freeze::{FrozenLayer, FrozenModel, LoadedModel};

/// Settings of [`quantize`].
#[derive(Debug, Clone, Copy)]
pub struct QuantConfig {
    /// Target precision: [`Precision::Int8`] (layers that cannot be int8 fall
    /// back to w8) or [`Precision::W8`].
    pub precision: Precision,
    /// A layer stays f32 if quantizing it alone raises validation NLL by more than
    /// this (nats/dim).
    pub max_layer_cost: f64,
}

/// The decision for one conditioned layer.
#[derive(Debug, Clone)]
pub struct LayerChoice {
    /// Layer index in the file.
    pub layer: usize,
    /// Layer kind name.
    pub kind: &'static str,
    /// The precision it was written in ([`Precision::F32`]: kept f32).
    pub precision: Precision,
    /// Validation NLL increase with only this layer quantized, nats/dim.
    pub cost: f64,
    /// Conditioner bytes in f32 and quantized.
    pub bytes: (usize, usize),
    /// Why (fallbacks and refusals).
    pub note: String,
}

/// A quantized model and how it was made.
#[derive(Debug)]
pub struct Quantized {
    /// The model as written.
    pub model: FrozenModel,
    /// Its file, loaded back by the runtime.
    pub loaded: LoadedModel,
    /// One entry per conditioned layer.
    pub choices: Vec<LayerChoice>,
    /// Validation NLL (nats/dim, data units) of the f32 and the quantized model.
    pub val_nll: (f64, f64),
    /// What the bit-exact check compared.
    pub verified: Verified,
}

/// Mean `-log p` per dimension (data units) of `rows` under a loaded model.
pub fn nll(model: &LoadedModel, rows: &Rows) -> Result<f64> {
    let lp = log_probs(model.model(), rows)?;
    Ok(-lp.iter().sum::<f64>() / lp.len().max(1) as f64 / model.model().dim() as f64)
}

fn conditioner_bytes(layer: &FrozenLayer) -> usize {
    layer.tensors.iter().map(|t| t.n_bytes()).sum()
}

/// Quantize `model`: calibrate on `calib`, decide per layer on `val`, check the
/// runtime against the reference on `check` (all rows in data units).
pub fn quantize(model: &FrozenModel, cfg: QuantConfig, calib: &Rows, val: &Rows, check: &Rows) -> Result<Quantized> {
    if !cfg.precision.is_quantized() {
        return Err(ConfigError::invalid("--quantize", "int8 or w8", cfg.precision.name()).into());
    }
    let f32_loaded = model.load()?;
    let inputs = calibrate::conditioner_inputs(f32_loaded.model(), calib, &[])?;
    let base_nll = nll(&f32_loaded, val)?;

    let mut choices = Vec::new();
    let mut final_layers = model.layers.clone();
    for (i, layer) in model.layers.iter().enumerate() {
        if !layer.has_conditioner() {
            continue;
        }
        let mut note = String::new();
        let candidate = match cfg.precision {
            Precision::Int8 => {
                let calib_in = inputs.get(&(i as u16)).map(Vec::as_slice).unwrap_or(&[]);
                match scheme::int8_layer(layer, calib_in) {
                    Ok(l) => l,
                    Err(why) => {
                        note = why;
                        scheme::w8_layer(layer)?
                    }
                }
            }
            _ => scheme::w8_layer(layer)?,
        };
        let precision = candidate.precision;
        let mut trial = model.clone();
        trial.layers[i] = candidate.clone();
        let trial = trial.load()?;
        let cost = nll(&trial, val)? - base_nll;
        // As stored: an int8 layer's hidden scales become requantization words.
        let bytes = (conditioner_bytes(layer), trial.model().layer_info(i)?.n_bytes);
        let keep = cost <= cfg.max_layer_cost;
        if keep {
            final_layers[i] = candidate;
        } else {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!(
                "kept f32: {} costs {cost:.4} nats/dim > budget {:.4}",
                precision.name(),
                cfg.max_layer_cost
            ));
        }
        let precision = if keep { precision } else { Precision::F32 };
        choices.push(LayerChoice { layer: i, kind: layer.kind.name(), precision, cost, bytes, note });
    }
    let out = FrozenModel { layers: final_layers, ..model.clone() };
    let loaded = out.load()?;
    let q_nll = nll(&loaded, val)?;
    let verified = verify::verify(&out, loaded.model(), f32_loaded.model(), check, &[])?;
    Ok(Quantized { model: out, loaded, choices, val_nll: (base_nll, q_nll), verified })
}
