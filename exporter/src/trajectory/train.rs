//! Training a trajectory model: exact maximum likelihood of whole futures, Adam
//! with a cosine schedule and early stopping on the NLL of held-out *tracks*.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::data::{example, Example, Scene, Window, HORIZON, OBSERVED};
use super::model::{TrajectoryConfig, TrajectoryFlow};
use crate::data::Standardization;
use crate::error::{DataError, Result};
use crate::train::progress::{cosine_lr, Stopper};
use crate::train::{History, TrainConfig, LR_DROP};

/// The standardizations a trajectory model is trained in and frozen with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Encoder features (`2 (OBSERVED − 1)`).
    pub features: Standardization,
    /// Step displacements (2), also used for the previous displacement in the
    /// step flows' context.
    pub steps: Standardization,
}

impl Stats {
    /// Statistics of training examples.
    pub fn fit(examples: &[Example]) -> Stats {
        let f: Vec<f32> = examples.iter().flat_map(|e| e.features.iter().copied()).collect();
        let s: Vec<f32> = examples.iter().flat_map(|e| e.steps.iter().copied()).collect();
        Stats { features: Standardization::fit(&f, 2 * (OBSERVED - 1)), steps: Standardization::fit(&s, 2) }
    }

    /// `T · Σ ln std` of the steps: standardized joint log-density minus this is
    /// in metres.
    pub fn log_det(&self) -> f64 {
        HORIZON as f64 * self.steps.log_det()
    }
}

/// The windows of the training scenes split by track: the windows of a seeded
/// 15 % of each scene's tracks validate (so no validation window shares a
/// position with a training window).
pub fn split_windows(scenes: &[Scene], seed: u64) -> (Vec<Window>, Vec<Window>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7AC5);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for s in scenes {
        let mut ids: Vec<usize> = (0..s.tracks.len()).collect();
        ids.shuffle(&mut rng);
        let n_val = (s.tracks.len() * 15).div_ceil(100);
        let is_val: std::collections::HashSet<usize> = ids.into_iter().take(n_val).collect();
        for w in s.windows() {
            if is_val.contains(&w.track) {
                val.push(w);
            } else {
                train.push(w);
            }
        }
    }
    (train, val)
}

/// Training and validation examples of the training scenes ([`split_windows`]);
/// `mirror` adds every training window mirrored.
pub fn examples(scenes: &[Scene], heading: bool, mirror: bool, seed: u64) -> Result<(Vec<Example>, Vec<Example>)> {
    let (train_w, val_w) = split_windows(scenes, seed);
    let mut train = Vec::with_capacity(train_w.len() * (1 + usize::from(mirror)));
    for w in &train_w {
        train.push(example(w, heading)?);
        if mirror {
            train.push(example(&w.mirrored(), heading)?);
        }
    }
    let val = examples_of(&val_w, heading)?;
    if train.is_empty() || val.is_empty() {
        return Err(DataError::TooFewRows { rows: train.len() + val.len() }.into());
    }
    Ok((train, val))
}

/// Examples of `windows`.
pub fn examples_of(windows: &[Window], heading: bool) -> Result<Vec<Example>> {
    windows.iter().map(|w| example(w, heading)).collect()
}

/// A batch: standardized features `[B, F]`, steps `[B, T, 2]` and previous
/// displacements `[B, T, 2]`.
pub(crate) fn batch(ex: &[&Example], stats: &Stats, device: &Device) -> (Tensor<2>, Tensor<3>, Tensor<3>) {
    let b = ex.len();
    let f = 2 * (OBSERVED - 1);
    let mut feat = Vec::with_capacity(b * f);
    let mut x = Vec::with_capacity(b * 2 * HORIZON);
    let mut prev = Vec::with_capacity(b * 2 * HORIZON);
    for e in ex {
        feat.extend(stats.features.apply(&e.features));
        x.extend(stats.steps.apply(&e.steps));
        prev.extend(stats.steps.apply(&e.features[f - 2..]));
        prev.extend(stats.steps.apply(&e.steps[..2 * (HORIZON - 1)]));
    }
    (
        Tensor::from_data(TensorData::new(feat, [b, f]), device),
        Tensor::from_data(TensorData::new(x, [b, HORIZON, 2]), device),
        Tensor::from_data(TensorData::new(prev, [b, HORIZON, 2]), device),
    )
}

/// `log p(v_1..v_T | history)` of each example in metres (nats per trajectory).
pub fn log_probs(model: &TrajectoryFlow, stats: &Stats, ex: &[Example]) -> Vec<f64> {
    let device = model.devices().into_iter().next().unwrap_or_else(crate::train::cpu);
    let mut out = Vec::with_capacity(ex.len());
    let refs: Vec<&Example> = ex.iter().collect();
    for chunk in refs.chunks(1024) {
        let (f, x, p) = batch(chunk, stats, &device);
        let lp = model.step_log_probs(f, x, p).sum_dim(1);
        out.extend(crate::flow::math::to_vec(lp).into_iter().map(|v| v as f64 - stats.log_det()));
    }
    out
}

/// Mean NLL, nats per trajectory.
pub fn mean_nll(lp: &[f64]) -> f64 {
    -lp.iter().sum::<f64>() / lp.len().max(1) as f64
}

/// Train on `train`, keep the model of the best `val` epoch. NLLs in the history
/// are nats per trajectory (metres).
pub fn train(
    cfg: &TrajectoryConfig,
    tc: &TrainConfig,
    train: &[Example],
    val: &[Example],
    device: &Device,
    progress: bool,
) -> Result<(TrajectoryFlow, Stats, History)> {
    tc.validate()?;
    let start = std::time::Instant::now();
    let stats = Stats::fit(train);
    let dev = device.clone().autodiff();
    let mut model = crate::train::device::seeded(&dev, tc.seed, || {
        TrajectoryFlow::new(cfg, &dev).map(crate::train::device::materialize)
    })?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(tc.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rng);
    {
        let init: Vec<&Example> = order.iter().take(1024).map(|&i| &train[i]).collect();
        let (f, x, p) = batch(&init, &stats, &dev);
        model = model.data_init(f, x, p);
    }
    let mut optim =
        AdamConfig::new().with_epsilon(1e-8).with_grad_clipping(tc.grad_clip.map(GradientClippingConfig::Norm)).init();
    let steps_per_epoch = train.len().div_ceil(tc.batch_size);
    let total = (tc.epochs * steps_per_epoch).max(1) as f64;
    let mut stop = Stopper::new(&model, tc, 1e-3, "nats/traj", progress, start);
    let mut step = 0usize;
    let mut lr_scale = 1.0f64;
    for epoch in 0..tc.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0f64;
        for idx in order.chunks(tc.batch_size) {
            let lr = cosine_lr(tc, step, total) * lr_scale;
            let ex: Vec<&Example> = idx.iter().map(|&i| &train[i]).collect();
            let (f, x, p) = batch(&ex, &stats, &dev);
            let loss = model.step_log_probs(f, x, p).sum_dim(1).mean_dim(0).neg();
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(stop.diverged(epoch, l));
            }
            sum += l * idx.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let train_nll = sum / train.len() as f64 + stats.log_det();
        let v = mean_nll(&log_probs(&model.valid(), &stats, val));
        if stop.epoch(epoch, train_nll, v, &model) {
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
    Ok((best.valid(), stats, hist))
}

/// The training settings trajectory models default to.
pub fn default_train_config() -> TrainConfig {
    TrainConfig {
        epochs: 40,
        batch_size: 128,
        lr: 2e-3,
        min_lr: 1e-5,
        patience: 8,
        dequantize: false,
        ..TrainConfig::default()
    }
}
