//! Maximum-likelihood training: Adam, cosine learning-rate schedule, gradient
//! clipping, early stopping on validation NLL, seeded and reproducible.

use std::path::Path;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::error::{FloeError, Result};
use crate::model::{to_vec, Flow, FlowConfig, Standardization};

/// Optimization settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Peak learning rate (cosine-annealed to `min_lr`).
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// L2 penalty added to the gradients (0 = off).
    pub weight_decay: f32,
    /// Gradient clipping: largest L2 norm of each parameter tensor's gradient.
    pub grad_clip: f32,
    /// Stop after this many epochs without a better validation NLL.
    pub patience: usize,
    /// Seed of the split, the shuffles and the initial weights.
    pub seed: u64,
    /// Fraction of rows for validation.
    pub val_fraction: f64,
    /// Fraction of rows held out for testing.
    pub test_fraction: f64,
    /// Uniform dequantization: columns whose values sit on a grid (few distinct
    /// values) get `U(-q/2, q/2)` noise at their grid step `q` in every training
    /// batch, so the flow learns a smooth density instead of spikes.
    pub dequantize: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 200,
            batch_size: 256,
            lr: 3e-3,
            min_lr: 1e-5,
            weight_decay: 0.0,
            grad_clip: 5.0,
            patience: 25,
            seed: 0,
            val_fraction: 0.15,
            test_fraction: 0.15,
            dequantize: true,
        }
    }
}

impl TrainConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(FloeError::Config(m.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be >= 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be >= 1");
        }
        if !(self.lr > 0.0 && self.lr <= 1.0 && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad("need 0 < lr <= 1 and 0 <= min_lr <= lr");
        }
        if !(self.grad_clip > 0.0 && self.weight_decay >= 0.0) {
            return bad("grad_clip must be > 0 and weight_decay >= 0");
        }
        Ok(())
    }
}

/// Standardized rows ready for training: `x` is `n x D`, `c` is `n x C`.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Data, standardized, row-major.
    pub x: Vec<f32>,
    /// Context, standardized, row-major (empty when C = 0).
    pub c: Vec<f32>,
    /// Row count.
    pub n: usize,
}

/// What training produced besides the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Training NLL per epoch (nats per dimension, data units).
    pub train_nll: Vec<f64>,
    /// Validation NLL per epoch (nats per dimension, data units).
    pub val_nll: Vec<f64>,
    /// Epoch (0-based) of the kept model.
    pub best_epoch: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The CPU device (Burn's ndarray backend).
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::ndarray()
}

fn batch(rows: &[f32], idx: &[usize], d: usize, device: &Device) -> Tensor<2> {
    let mut v = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        v.extend_from_slice(&rows[i * d..(i + 1) * d]);
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), d]), device)
}

/// `log p` of every row (standardized units) under a model, in chunks.
pub fn log_prob_rows(model: &Flow, rows: &Rows, device: &Device) -> Vec<f64> {
    let (d, c) = (model.dim, model.context_dim);
    let mut out = Vec::with_capacity(rows.n);
    let all: Vec<usize> = (0..rows.n).collect();
    for chunk in all.chunks(4096) {
        let x = batch(&rows.x, chunk, d, device);
        let ctx = (c > 0).then(|| batch(&rows.c, chunk, c, device));
        out.extend(to_vec(model.log_prob(x, ctx)).into_iter().map(|v| v as f64));
    }
    out
}

/// Mean NLL in nats per dimension, data units.
pub fn nll_per_dim(lp_std: &[f64], xs: &Standardization) -> f64 {
    let d = xs.mean.len() as f64;
    let mean = lp_std.iter().sum::<f64>() / lp_std.len().max(1) as f64;
    (-(mean - xs.log_det())) / d
}

/// Train a flow by maximum likelihood. Returns the model of the best validation
/// epoch (on the plain CPU device) and the history.
pub fn train(
    flow_cfg: &FlowConfig,
    cfg: &TrainConfig,
    xs: &Standardization,
    train_rows: &Rows,
    val_rows: &Rows,
    progress: bool,
) -> Result<(Flow, History)> {
    flow_cfg.validate()?;
    cfg.validate()?;
    let start = Instant::now();
    let plain = cpu();
    let dev = plain.clone().autodiff();
    dev.seed(cfg.seed);
    let (d, c) = (flow_cfg.dim, flow_cfg.context_dim);
    let mut model = Flow::new(flow_cfg, &dev)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..train_rows.n).collect();
    order.shuffle(&mut rng);
    let init: Vec<usize> = order.iter().copied().take(2048).collect();
    model =
        model.data_init(batch(&train_rows.x, &init, d, &dev), (c > 0).then(|| batch(&train_rows.c, &init, c, &dev)));

    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay((cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay)))
        .with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.grad_clip)))
        .init();
    let steps_per_epoch = train_rows.n.div_ceil(cfg.batch_size);
    let total = (cfg.epochs * steps_per_epoch).max(1) as f64;
    let bar = if progress {
        let b = indicatif::ProgressBar::new(cfg.epochs as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} epoch {pos:>4}/{len} [{bar:30}] {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let quanta = if cfg.dequantize { grid_steps(&train_rows.x, d) } else { vec![0.0; d] };
    let noisy = quanta.iter().any(|&q| q > 0.0);
    let mut hist = History::default();
    let mut best = f64::INFINITY;
    let mut best_model = model.clone();
    let mut wait = 0;
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0f64;
        for idx in order.chunks(cfg.batch_size) {
            let lr =
                cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            let xb = batch(&train_rows.x, idx, d, &dev);
            let xb = if noisy {
                let q = Tensor::<1>::from_data(TensorData::new(quanta.clone(), [d]), &dev).unsqueeze::<2>();
                let u = xb.random_like(burn::tensor::Distribution::Uniform(-0.5, 0.5));
                xb + u * q
            } else {
                xb
            };
            let cb = (c > 0).then(|| batch(&train_rows.c, idx, c, &dev));
            let loss = model.log_prob(xb, cb).mean().neg();
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                bar.abandon();
                return Err(FloeError::Training(format!(
                    "loss became {l} at epoch {epoch}; try a smaller --lr or --grad-clip"
                )));
            }
            sum += l * idx.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let train_nll = (sum / train_rows.n as f64 + xs.log_det()) / d as f64;
        let val = nll_per_dim(&log_prob_rows(&model.valid(), val_rows, &plain), xs);
        hist.train_nll.push(train_nll);
        hist.val_nll.push(val);
        if val < best - 1e-4 {
            best = val;
            best_model = model.clone();
            hist.best_epoch = epoch;
            wait = 0;
        } else {
            wait += 1;
        }
        bar.set_position(epoch as u64 + 1);
        bar.set_message(format!("train {train_nll:.4} val {val:.4} best {best:.4} nats/dim"));
        if wait >= cfg.patience {
            break;
        }
    }
    bar.finish();
    if !best.is_finite() {
        return Err(FloeError::Training("validation NLL never became finite".into()));
    }
    hist.seconds = start.elapsed().as_secs_f64();
    Ok((best_model.valid(), hist))
}

/// Grid step of each column of row-major `x` (`d` columns): the smallest gap
/// between distinct values when the column has at most `n / 4` distinct values
/// (a quantized measurement), 1 for a column constant on more than one row, else 0.
pub fn grid_steps(x: &[f32], d: usize) -> Vec<f32> {
    let n = x.len() / d.max(1);
    (0..d)
        .map(|j| {
            let mut v: Vec<f32> = (0..n).map(|i| x[i * d + j]).collect();
            v.sort_by(f32::total_cmp);
            v.dedup();
            if v.len() < 2 {
                // Constant on the training rows: a unit of noise keeps the density
                // bounded (a flow would otherwise squeeze the column to a point and
                // its likelihood would grow without limit).
                return if n > 1 { 1.0 } else { 0.0 };
            }
            if v.len() > n / 4 {
                return 0.0;
            }
            v.windows(2).map(|w| w[1] - w[0]).fold(f32::INFINITY, f32::min)
        })
        .collect()
}

/// Everything needed to rebuild a trained model: written next to its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Architecture.
    pub flow: FlowConfig,
    /// Optimization.
    pub train: TrainConfig,
    /// Data source.
    pub data: DataSpec,
    /// Input standardization.
    pub x_std: Standardization,
    /// Context standardization.
    pub c_std: Standardization,
    /// Training curves.
    pub history: History,
}

impl Checkpoint {
    /// Write `meta.json` and `model.bpk` into `dir`.
    pub fn save(&self, model: &Flow, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| FloeError::io(dir, e))?;
        let meta = serde_json::to_string_pretty(self).map_err(|e| FloeError::Model(e.to_string()))?;
        std::fs::write(dir.join("meta.json"), meta).map_err(|e| FloeError::io(dir.join("meta.json"), e))?;
        model
            .clone()
            .save_file(dir.join("model.bpk"))
            .map_err(|e| FloeError::Model(format!("saving {}: {e}", dir.join("model.bpk").display())))
    }

    /// Read a checkpoint written by [`Checkpoint::save`].
    pub fn load(dir: &Path) -> Result<(Checkpoint, Flow)> {
        let p = dir.join("meta.json");
        let s = std::fs::read_to_string(&p).map_err(|e| FloeError::io(&p, e))?;
        let ck: Checkpoint =
            serde_json::from_str(&s).map_err(|e| FloeError::Parse { path: p.clone(), msg: e.to_string() })?;
        let model = Flow::new(&ck.flow, &cpu())?;
        let w = dir.join("model.bpk");
        if !w.exists() {
            return Err(FloeError::io(&w, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        let model = model
            .try_load_file(&w)
            .map_err(|e| FloeError::Parse { path: w.clone(), msg: format!("cannot load weights: {e}") })?;
        Ok((ck, model))
    }
}
