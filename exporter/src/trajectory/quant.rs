//! int8 / w8 trajectory models: the conditioners of the step flows and the
//! history encoder quantized layer by layer (calibrated on the inputs each sees
//! through the runtime, kept only where the end-to-end joint NLL allows), then
//! checked bit for bit against the reference arithmetic.

use floe_runtime::exporter_hooks;
use floe_runtime::format::Precision;
use floe_runtime::Model;

use super::data::Window;
use super::freeze::runtime_log_probs;
use super::train::mean_nll;
use crate::data::Rows;
use crate::error::{ConfigError, FloeError, ParityError, Result};
use crate::freeze::{FrozenLayer, FrozenModel, LoadedModel};
use crate::quant::calibrate::conditioner_inputs;
use crate::quant::scheme::{int8_layer_clipped, w8_layer};
use crate::quant::verify::{verify, Verified};
use crate::quant::{reference, LayerChoice};

/// The step flows' inputs on windows, as the runtime's tracker forms them: one
/// row per window and step (`x` the step's displacement, context
/// `[h, v_{t−1}, e_t]`), the step of each row, and the encoder's standardized
/// input and output per window.
#[derive(Debug, Clone, Default)]
pub struct StepRows {
    /// Rows, D = 2.
    pub rows: Rows,
    /// Step of each row.
    pub steps: Vec<usize>,
    /// `(standardized features, h)` per window.
    pub encoder: Vec<(Vec<f32>, Vec<f32>)>,
}

/// [`StepRows`] of `windows` under a trajectory file.
pub fn step_rows(model: &Model<'_>, windows: &[Window]) -> Result<StepRows> {
    let layout = model.trajectory_layout().ok_or(floe_runtime::Error::NotATrajectoryModel)?;
    let c = model.context_dim();
    let width = layout.encoding(c);
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut out = StepRows { rows: Rows { dim: 2, context_dim: c, x: vec![], c: vec![] }, ..StepRows::default() };
    for w in windows {
        let mut h = vec![0.0f32; width];
        let mut seen = (Vec::new(), Vec::new());
        let (frame, v0) = exporter_hooks::encode(model, w.history(), &mut h, &mut scratch, &mut |_, i, o| {
            seen = (i.to_vec(), o.to_vec());
        })?;
        out.encoder.push(seen);
        let (mut pos, mut prev) = ([0.0f32; 2], v0);
        for (s, &p) in w.future().iter().enumerate() {
            let u = frame.to_local(p);
            let v = [u[0] - pos[0], u[1] - pos[1]];
            out.rows.x.extend_from_slice(&v);
            out.rows.c.extend_from_slice(&h);
            out.rows.c.extend_from_slice(&prev);
            out.rows.c.extend_from_slice(exporter_hooks::step_embedding(model, s)?);
            out.steps.push(s);
            pos = u;
            prev = v;
        }
    }
    Ok(out)
}

/// The encoder layer's MLP alone (its tensors between `mean`, `std` and the
/// embedding), as the quantization scheme and the reference take it.
fn encoder_mlp(layer: &FrozenLayer, embedding: bool) -> FrozenLayer {
    let end = layer.tensors.len() - usize::from(embedding);
    FrozenLayer { tensors: layer.tensors[2..end].to_vec(), ..layer.clone() }
}

/// The encoder layer with its MLP replaced.
fn with_mlp(layer: &FrozenLayer, mlp: FrozenLayer, embedding: bool) -> FrozenLayer {
    let mut tensors = layer.tensors[..2].to_vec();
    tensors.extend(mlp.tensors);
    if embedding {
        tensors.extend(layer.tensors.last().cloned());
    }
    FrozenLayer { precision: mlp.precision, tensors, ..layer.clone() }
}

/// A quantized trajectory model.
#[derive(Debug)]
pub struct TrajectoryQuantized {
    /// The model as written.
    pub model: FrozenModel,
    /// Its file, loaded back.
    pub loaded: LoadedModel,
    /// One entry per conditioned layer (costs in nats per trajectory).
    pub choices: Vec<LayerChoice>,
    /// Validation joint NLL of the f32 and the quantized file, nats/trajectory.
    pub val_nll: (f64, f64),
    /// The bit-exact check of the step flows' conditioners.
    pub verified: Verified,
    /// Encoder outputs compared bit for bit with the reference.
    pub encoder_values: usize,
}

/// Settings of [`quantize_trajectory`].
#[derive(Debug, Clone, Copy)]
pub struct TrajectoryQuantConfig {
    /// int8 (layers that cannot be int8 try w8) or w8.
    pub precision: Precision,
    /// A layer's version is kept only if it alone raises the joint NLL by at
    /// most this, nats per trajectory.
    pub max_layer_cost: f64,
    /// The whole model may raise it by at most this.
    pub max_total_cost: f64,
    /// Activation-range clipping quantile for int8 (0: min/max).
    pub clip: f64,
}

/// A conditioned layer's quantized versions within its own budget, in order of
/// preference, and the one in use (past the end: f32).
struct Options {
    layer: usize,
    passing: Vec<(FrozenLayer, f64)>,
    current: usize,
}

/// Quantize a trajectory file: calibrate on `calib`, decide per layer on the
/// joint NLL of `val` (a layer stays f32 if it alone costs more than
/// `max_layer_cost` nats per trajectory in int8, it is tried in w8, and stays f32
/// if that costs too much as well; then, while the whole model costs more than
/// `max_total_cost`, the costliest choice steps down), check on `check`.
pub fn quantize_trajectory(
    model: &FrozenModel,
    cfg: &TrajectoryQuantConfig,
    calib: &[Window],
    val: &[Window],
    check: &[Window],
) -> Result<TrajectoryQuantized> {
    let TrajectoryQuantConfig { precision, max_layer_cost, max_total_cost, clip } = *cfg;
    if !precision.is_quantized() {
        return Err(ConfigError::invalid("--quantize", "int8 or w8", precision.name()).into());
    }
    let embedding = model.trajectory.is_some_and(|t| t.embedding > 0);
    let f32_loaded = model.load()?;
    let cal = step_rows(f32_loaded.model(), calib)?;
    let inputs = conditioner_inputs(f32_loaded.model(), &cal.rows, &cal.steps)?;
    let enc_inputs: Vec<Vec<f32>> = cal.encoder.iter().map(|(i, _)| i.clone()).collect();
    let joint_nll = |m: &FrozenModel| -> Result<f64> { Ok(mean_nll(&runtime_log_probs(m.load()?.model(), val)?)) };
    let base_nll = joint_nll(model)?;
    let bytes = |l: &FrozenLayer| l.tensors.iter().map(|t| t.n_bytes()).sum::<usize>();
    let mut choices = Vec::new();
    let mut options: Vec<Options> = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        if !layer.has_conditioner() {
            continue;
        }
        let (sub, calib_in) = if i == 0 {
            (encoder_mlp(layer, embedding), enc_inputs.as_slice())
        } else {
            (layer.clone(), inputs.get(&(i as u16)).map(Vec::as_slice).unwrap_or(&[]))
        };
        // Candidates in order: int8 (when asked for and possible), then w8; the
        // first within the budget is kept, else the layer stays f32.
        let mut note = String::new();
        let mut candidates = Vec::new();
        if precision == Precision::Int8 {
            match int8_layer_clipped(&sub, calib_in, clip) {
                Ok(q) => candidates.push(q),
                Err(why) => note = why,
            }
        }
        candidates.push(w8_layer(&sub)?);
        // Every candidate within the layer's budget, in order of preference.
        let mut passing = Vec::new();
        let mut tried = Vec::new();
        for q in candidates {
            let candidate = if i == 0 { with_mlp(layer, q, embedding) } else { q };
            let mut trial = model.clone();
            trial.layers[i] = candidate.clone();
            let cost = joint_nll(&trial)? - base_nll;
            if cost <= max_layer_cost {
                passing.push((candidate, cost));
            } else {
                tried.push(format!("{} costs {cost:.3} nats/traj > {max_layer_cost}", candidate.precision.name()));
            }
        }
        if !tried.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&tried.join("; "));
        }
        options.push(Options { layer: i, passing, current: 0 });
        choices.push(LayerChoice {
            layer: i,
            kind: layer.kind.name(),
            precision: Precision::F32,
            cost: 0.0,
            bytes: (bytes(layer), bytes(layer)),
            note,
        });
    }
    // The layers' costs add up: while the whole model costs more than
    // `max_total_cost`, the layer whose choice costs most steps down (int8 → w8
    // → f32).
    let build = |opts: &[Options]| -> Vec<FrozenLayer> {
        let mut layers = model.layers.clone();
        for o in opts {
            if let Some((l, _)) = o.passing.get(o.current) {
                layers[o.layer] = l.clone();
            }
        }
        layers
    };
    let mut total = joint_nll(&FrozenModel { layers: build(&options), ..model.clone() })? - base_nll;
    while total > max_total_cost {
        let worst = options
            .iter_mut()
            .filter_map(|o| o.passing.get(o.current).map(|(_, c)| *c).map(|c| (c, o)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let Some((_, o)) = worst else { break };
        o.current += 1;
        total = joint_nll(&FrozenModel { layers: build(&options), ..model.clone() })? - base_nll;
    }
    for (o, c) in options.iter().zip(choices.iter_mut()) {
        match o.passing.get(o.current) {
            Some((l, cost)) => {
                c.precision = l.precision;
                c.cost = *cost;
                c.bytes.1 = bytes(l);
            }
            None if o.passing.is_empty() => c.note.push_str("; kept f32"),
            None => {}
        }
        if o.current > 0 {
            let to = o.passing.get(o.current).map_or("f32", |(l, _)| l.precision.name());
            c.note.push_str(&format!("; {to}: the model's total cost exceeded {max_total_cost} nats/traj"));
        }
    }
    let layers = build(&options);
    let out = FrozenModel { layers, ..model.clone() };
    let loaded = out.load()?;
    // Bytes as stored (an int8 layer's hidden scales become requantization words).
    for c in choices.iter_mut().filter(|c| c.precision != Precision::F32) {
        c.bytes.1 = loaded.model().layer_info(c.layer)?.n_bytes;
    }
    let q_nll = mean_nll(&runtime_log_probs(loaded.model(), val)?);
    // The step flows: runtime conditioners vs the reference, and log p vs the
    // simulated quantization, bit for bit.
    let chk = step_rows(f32_loaded.model(), check)?;
    let verified = verify(&out, loaded.model(), f32_loaded.model(), &chk.rows, &chk.steps)?;
    // The encoder: the quantized file's encodings vs the reference's.
    let mut encoder_values = 0;
    if out.layers[0].precision.is_quantized() {
        let sub = encoder_mlp(&out.layers[0], embedding);
        let q = step_rows(loaded.model(), check)?;
        for (input, h) in &q.encoder {
            let r = reference(&sub, input)?;
            if let Some(index) =
                (0..r.len().max(h.len())).find(|&k| r.get(k).map(|v| v.to_bits()) != h.get(k).map(|v| v.to_bits()))
            {
                return Err(ParityError::Conditioner {
                    layer: 0,
                    index,
                    runtime: h.get(index).copied(),
                    reference: r.get(index).copied(),
                }
                .into());
            }
            encoder_values += r.len();
        }
    }
    if !q_nll.is_finite() {
        return Err(FloeError::Internal("the quantized model's NLL is not finite"));
    }
    Ok(TrajectoryQuantized { model: out, loaded, choices, val_nll: (base_nll, q_nll), verified, encoder_values })
}
