//! What every training loop here shares: the cosine learning-rate schedule, the
//! progress bar, and early stopping on a validation loss with the best model
//! kept.

use std::time::Instant;

use super::{History, TrainConfig};
use crate::error::{Result, TrainingError};

/// The learning rate at optimizer step `step` of `total`: cosine-annealed from
/// `lr` to `min_lr`.
pub(crate) fn cosine_lr(cfg: &TrainConfig, step: usize, total: f64) -> f64 {
    cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + (std::f64::consts::PI * step as f64 / total).cos())
}

/// Early stopping with the best model kept, a history and a progress bar.
pub(crate) struct Stopper<M> {
    best: f64,
    best_model: M,
    wait: usize,
    patience: usize,
    min_delta: f64,
    unit: &'static str,
    bar: indicatif::ProgressBar,
    hist: History,
    start: Instant,
}

impl<M: Clone> Stopper<M> {
    /// Stop after `cfg.patience` epochs without a validation loss `min_delta`
    /// below the best; `unit` labels the progress bar's figures; the history's
    /// seconds count from `start`.
    pub(crate) fn new(
        model: &M,
        cfg: &TrainConfig,
        min_delta: f64,
        unit: &'static str,
        progress: bool,
        start: Instant,
    ) -> Self {
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
        Stopper {
            best: f64::INFINITY,
            best_model: model.clone(),
            wait: 0,
            patience: cfg.patience,
            min_delta,
            unit,
            bar,
            hist: History::default(),
            start,
        }
    }

    /// A training loss that is not finite: the bar stops, the error says when.
    pub(crate) fn diverged(&self, epoch: usize, loss: f64) -> crate::error::FloeError {
        self.bar.abandon();
        TrainingError::Diverged { epoch, loss }.into()
    }

    /// Record epoch `epoch`; `true` when training should stop.
    pub(crate) fn epoch(&mut self, epoch: usize, train: f64, val: f64, model: &M) -> bool {
        self.hist.train_nll.push(train);
        self.hist.val_nll.push(val);
        if val < self.best - self.min_delta {
            self.best = val;
            self.best_model = model.clone();
            self.hist.best_epoch = epoch;
            self.wait = 0;
        } else {
            self.wait += 1;
        }
        self.bar.set_position(epoch as u64 + 1);
        let (best, unit) = (self.best, self.unit);
        self.bar.set_message(format!("train {train:.4} val {val:.4} best {best:.4} {unit}"));
        self.wait >= self.patience
    }

    /// The best model and the history.
    pub(crate) fn finish(mut self) -> Result<(M, History)> {
        self.bar.finish();
        if !self.best.is_finite() {
            return Err(TrainingError::NeverFinite.into());
        }
        self.hist.seconds = self.start.elapsed().as_secs_f64();
        Ok((self.best_model, self.hist))
    }
}
