//! Maximum-likelihood training: Adam, cosine learning-rate schedule, gradient
//! clipping, early stopping on validation NLL, seeded and reproducible — on the
//! device the caller chooses; checkpoints; a settings file's experiment.

pub mod bench;
pub(crate) mod checkpoint;
mod config;
mod dequantize;
pub mod device;
mod eval;
mod experiment;
pub(crate) mod progress;

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use checkpoint::Checkpoint;
pub use config::{TrainConfig, LR_DROP, MAX_LR_DROPS};
pub use dequantize::grid_steps;
pub use device::{cpu, materialize, seeded, DeviceName};
pub use eval::{log_prob_rows, nll_per_dim};
pub use experiment::{Experiment, SettingsFile, Trained};

use crate::data::{Rows, Standardization};
use crate::error::Result;
use crate::flow::{Flow, FlowConfig};
use eval::batch;

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
    /// Epochs (0-based) that began a restart from the best model at a lower
    /// learning rate ([`TrainConfig::lr_drops`]).
    #[serde(default)]
    pub restarts: Vec<usize>,
}

/// Train a flow by maximum likelihood on `device` (its autodiff twin computes
/// the gradients). Returns the model of the best validation epoch (on `device`,
/// without autodiff) and the history. The rows are standardized; `xs` turns the
/// reported NLLs into data units.
pub fn train(
    flow_cfg: &FlowConfig,
    cfg: &TrainConfig,
    xs: &Standardization,
    train_rows: &Rows,
    val_rows: &Rows,
    device: &Device,
    progress: bool,
) -> Result<(Flow, History)> {
    train_on(flow_cfg, cfg, xs, train_rows, val_rows, std::slice::from_ref(device), progress)
}

/// [`train`] data-parallel over several devices: each batch is split into one
/// shard per device; every device runs forward and backward on its shard of a
/// fork of the model (one thread each), the gradients (each shard's loss
/// weighted by its share of the batch, so that their sum is the full batch's
/// mean gradient) are moved to the first device and summed, and the optimizer
/// steps there once — burn-train's multi-device strategy, in this loop. The
/// first device holds the model, the optimizer state and validation. With one
/// device this is [`train`]. Dequantization noise is drawn on the host (seeded),
/// so it is the same whatever the devices.
pub fn train_on(
    flow_cfg: &FlowConfig,
    cfg: &TrainConfig,
    xs: &Standardization,
    train_rows: &Rows,
    val_rows: &Rows,
    devices: &[Device],
    progress: bool,
) -> Result<(Flow, History)> {
    flow_cfg.validate()?;
    cfg.validate()?;
    let Some(device) = devices.first() else {
        return Err(crate::error::FloeError::Internal("train_on: no device"));
    };
    let start = Instant::now();
    let dev = device.clone().autodiff();
    let workers: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
    let (d, c) = (flow_cfg.dim, flow_cfg.context_dim);
    // Initialize on the CPU (its seeded RNG) and move to the device: the same
    // seed gives the same initial model on every device, so runs on different
    // devices can be compared step by step.
    let mut model = if crate::flow::fused::on_cube(device) {
        let host = device::cpu().autodiff();
        device::seeded(&host, cfg.seed, || Flow::new(flow_cfg, &host).map(device::materialize))?.fork(&dev)
    } else {
        device::seeded(&dev, cfg.seed, || Flow::new(flow_cfg, &dev).map(device::materialize))?
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut noise_rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..train_rows.n()).collect();
    order.shuffle(&mut rng);
    let init: Vec<usize> = order.iter().copied().take(2048).collect();
    model =
        model.data_init(batch(&train_rows.x, &init, d, &dev), (c > 0).then(|| batch(&train_rows.c, &init, c, &dev)));

    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay((cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay)))
        .with_grad_clipping(cfg.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let steps_per_epoch = train_rows.n().div_ceil(cfg.batch_size);
    let total = (cfg.epochs * steps_per_epoch).max(1) as f64;
    let quanta = if cfg.dequantize { dequantize::grid_steps(&train_rows.x, d) } else { vec![0.0; d] };
    let noisy = quanta.iter().any(|&q| q > 0.0);
    let mut stop = progress::Stopper::new(&model, cfg, 1e-4, "nats/dim", progress, start);
    let mut step = 0usize;
    // Divides the schedule's rate after each restart (`cfg.lr_drops`).
    let mut lr_scale = 1.0f64;
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0f64;
        for idx in order.chunks(cfg.batch_size) {
            let lr = progress::cosine_lr(cfg, step, total) * lr_scale;
            // Dequantization noise from the host's seeded generator: the same
            // draws on every device and for any number of devices.
            let noise = noisy.then(|| dequantize::host_noise(&quanta, idx.len(), &mut noise_rng));
            let (l, grads) = if workers.len() == 1 {
                let xb = batch(&train_rows.x, idx, d, &dev);
                let xb = match noise {
                    Some(u) => xb + Tensor::<2>::from_data(TensorData::new(u, [idx.len(), d]), &dev),
                    None => xb,
                };
                let cb = (c > 0).then(|| batch(&train_rows.c, idx, c, &dev));
                let loss = model.log_prob(xb, cb).mean_dim(0).neg();
                let l = loss.clone().into_scalar::<f32>() as f64;
                (l, GradientsParams::from_grads(loss.backward(), &model))
            } else {
                data_parallel_step(&model, &workers, &dev, train_rows, idx, noise.as_deref())?
            };
            if !l.is_finite() {
                return Err(stop.diverged(epoch, l));
            }
            sum += l * idx.len() as f64;
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let train_nll = (sum / train_rows.n() as f64 + xs.log_det()) / d as f64;
        let val = nll_per_dim(&log_prob_rows(&model.valid(), val_rows), xs);
        if stop.epoch(epoch, train_nll, val, &model) {
            // A plateau: go on from the best model at a lower rate, or stop.
            match stop.restart() {
                Some(best) => {
                    model = best;
                    lr_scale /= LR_DROP;
                }
                None => break,
            }
        }
    }
    let (best, hist) = stop.finish()?;
    Ok((best.valid(), hist))
}

/// One data-parallel step: the batch `idx` split into one shard per worker
/// device, forward and backward on a fork of `model` per device (a thread each),
/// the gradients summed on `main`. Returns the batch's mean loss and its gradient.
fn data_parallel_step(
    model: &Flow,
    workers: &[Device],
    main: &Device,
    rows: &Rows,
    idx: &[usize],
    noise: Option<&[f32]>,
) -> Result<(f64, GradientsParams)> {
    let (d, c) = (rows.dim, rows.context_dim);
    let n = idx.len();
    let per = n.div_ceil(workers.len());
    let results: Vec<std::thread::Result<(f64, GradientsParams)>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .zip(idx.chunks(per).enumerate())
            .map(|(dev, (shard, part))| {
                let m = model.clone();
                s.spawn(move || {
                    let m = m.fork(dev);
                    let mut xv = Vec::with_capacity(part.len() * d);
                    for (j, &i) in part.iter().enumerate() {
                        let row = &rows.x[i * d..(i + 1) * d];
                        match noise {
                            Some(u) => xv.extend(row.iter().zip(&u[(shard * per + j) * d..]).map(|(x, e)| x + e)),
                            None => xv.extend_from_slice(row),
                        }
                    }
                    let xb = Tensor::<2>::from_data(TensorData::new(xv, [part.len(), d]), dev);
                    let cb = (c > 0).then(|| batch(&rows.c, part, c, dev));
                    let w = part.len() as f64 / n as f64;
                    let loss = m.log_prob(xb, cb).mean_dim(0).neg().mul_scalar(w);
                    let l = loss.clone().into_scalar::<f32>() as f64;
                    (l, GradientsParams::from_grads(loss.backward(), &m))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut acc = GradientsAccumulator::new();
    let mut loss = 0.0;
    for r in results {
        let (l, g) = r.map_err(|_| crate::error::FloeError::Internal("a data-parallel worker panicked"))?;
        acc.accumulate(model, g.to_device(main, model));
        loss += l;
    }
    Ok((loss, acc.grads()))
}
