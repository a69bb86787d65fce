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
    restarts_left: usize,
    epochs: usize,
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
            restarts_left: cfg.lr_drops,
            epochs: cfg.epochs,
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

    /// After [`Stopper::epoch`] said stop: the best model so far to go on from
    /// (the caller lowers the learning rate; patience starts again), while
    /// restarts (`cfg.lr_drops`) are left and an epoch remains to run; `None`
    /// when training should stop.
    pub(crate) fn restart(&mut self) -> Option<M> {
        if self.restarts_left == 0 || self.hist.val_nll.len() >= self.epochs {
            return None;
        }
        self.restarts_left -= 1;
        self.wait = 0;
        self.hist.restarts.push(self.hist.val_nll.len());
        Some(self.best_model.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stopper(patience: usize, lr_drops: usize) -> Stopper<u32> {
        let cfg = TrainConfig { patience, lr_drops, ..TrainConfig::default() };
        Stopper::new(&0, &cfg, 0.0, "nats", false, Instant::now())
    }

    #[test]
    fn a_plateau_restarts_from_the_best_model_while_drops_are_left_then_stops() {
        let mut s = stopper(2, 1);
        // Models are numbered by epoch; the best so far is epoch 1 (val 2.0).
        let vals = [3.0, 2.0, 2.5, 2.6];
        let stops: Vec<bool> = vals.iter().enumerate().map(|(e, &v)| s.epoch(e, v, v, &(e as u32))).collect();
        assert_eq!(stops, [false, false, false, true]);
        assert_eq!(s.restart(), Some(1), "the restart goes on from the best model");
        // Patience starts again: one worse epoch does not stop, a better one resets it.
        assert!(!s.epoch(4, 2.2, 2.2, &4));
        assert!(!s.epoch(5, 1.5, 1.5, &5));
        assert!(!s.epoch(6, 1.6, 1.6, &6));
        assert!(s.epoch(7, 1.7, 1.7, &7));
        assert_eq!(s.restart(), None, "no drop left");
        let (best, hist) = s.finish().unwrap();
        assert_eq!((best, hist.best_epoch, hist.restarts), (5, 5, vec![4]));
    }

    #[test]
    fn no_restart_is_recorded_after_the_last_epoch() {
        let cfg = TrainConfig { patience: 1, lr_drops: 3, epochs: 2, ..TrainConfig::default() };
        let mut s = Stopper::new(&0u32, &cfg, 0.0, "nats", false, Instant::now());
        assert!(!s.epoch(0, 1.0, 1.0, &0));
        assert!(s.epoch(1, 1.0, 1.0, &1));
        assert_eq!(s.restart(), None, "epoch 1 was the last");
        assert!(s.finish().unwrap().1.restarts.is_empty());
    }

    #[test]
    fn without_drops_the_first_plateau_stops() {
        let mut s = stopper(1, 0);
        assert!(!s.epoch(0, 1.0, 1.0, &0));
        assert!(s.epoch(1, 1.0, 1.0, &1));
        assert_eq!(s.restart(), None);
    }
}
