//! Optimization settings: what a settings file's `[train]` table holds.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};

/// The factor a restart divides the learning rate by ([`TrainConfig::lr_drops`]).
pub const LR_DROP: f64 = 10.0;

/// The most restarts a configuration may ask for.
pub const MAX_LR_DROPS: usize = 8;
const MAX_LR_DROPS_TEXT: &str = "<= 8";

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
    /// Final learning rate (`min_lr = lr`: a constant rate).
    pub min_lr: f64,
    /// L2 penalty added to the gradients (0 = off).
    pub weight_decay: f32,
    /// Gradient clipping: largest L2 norm of each parameter tensor's gradient;
    /// `None` (`null` in a checkpoint's JSON) clips nothing.
    pub grad_clip: Option<f32>,
    /// Stop after this many epochs without a better validation NLL.
    pub patience: usize,
    /// Restarts at a lower learning rate before stopping: each time patience
    /// runs out, training goes on from the best model so far with the learning
    /// rate divided by [`LR_DROP`], this many times; then it stops. 0 = stop at
    /// the first plateau. Adam's moment estimates carry over (the model is
    /// restored, the optimizer is not). Flow and trajectory training both honour it.
    pub lr_drops: usize,
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
            grad_clip: Some(5.0),
            patience: 25,
            lr_drops: 0,
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
        if self.epochs == 0 {
            return Err(ConfigError::invalid("epochs", ">= 1", self.epochs).into());
        }
        if self.batch_size == 0 {
            return Err(ConfigError::invalid("batch_size", ">= 1", self.batch_size).into());
        }
        if !(self.lr > 0.0 && self.lr <= 1.0 && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            let value = format!("lr {}, min_lr {}", self.lr, self.min_lr);
            return Err(ConfigError::invalid("lr, min_lr", "0 < lr <= 1 and 0 <= min_lr <= lr", value).into());
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(ConfigError::invalid("grad_clip", "> 0 and finite (or none)", c).into());
            }
        }
        if self.lr_drops > MAX_LR_DROPS {
            return Err(ConfigError::invalid("lr_drops", MAX_LR_DROPS_TEXT, self.lr_drops).into());
        }
        if !(self.weight_decay >= 0.0) {
            return Err(ConfigError::invalid("weight_decay", ">= 0", self.weight_decay).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_off_round_trips_through_a_checkpoints_json_and_bad_values_are_refused() {
        let off = TrainConfig { grad_clip: None, ..TrainConfig::default() };
        off.validate().unwrap();
        let json = serde_json::to_string(&off).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), off, "{json}");
        // A file from before the option: its number still reads.
        let old = json.replace("\"grad_clip\":null", "\"grad_clip\":5.0");
        assert_eq!(serde_json::from_str::<TrainConfig>(&old).unwrap().grad_clip, Some(5.0));
        for bad in [0.0, -1.0, f32::INFINITY, f32::NAN] {
            let e = TrainConfig { grad_clip: Some(bad), ..TrainConfig::default() }.validate().unwrap_err();
            assert!(e.to_string().contains("grad_clip"), "{bad}: {e}");
        }
    }
}
