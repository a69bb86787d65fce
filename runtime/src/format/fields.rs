//! The header's optional sections, as types: the anomaly threshold, the stream
//! layout and its alarm rule, the trajectory layout. [`super::Header`] decodes
//! and encodes them (`records.rs`); these are what they mean.

use super::{MAX_ALARM_WINDOW, TRAJECTORY_FLAG_HEADING, TRAJECTORY_FLAG_PER_STEP};

/// What a trajectory model predicts from what. The file's layer 0 is the history
/// encoder (kind [`super::LayerKind::Encoder`]); the step flows follow — one flow
/// for every step (context `[h, v_{t−1}, e_t]`) or one per step (context
/// `[h, v_{t−1}]`), over the step's 2-D displacement `v_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrajectoryLayout {
    /// Future steps T.
    pub horizon: u8,
    /// Observed positions the encoder reads (the last is "now").
    pub observed: u8,
    /// One flow per step (else one shared flow with a step embedding).
    pub per_step: bool,
    /// Positions in the heading frame of the last observed displacement (else
    /// in the world frame), both relative to the last observed position.
    pub heading_frame: bool,
    /// Width E of the step embedding (0 with per-step flows).
    pub embedding: u8,
}

impl TrajectoryLayout {
    /// Encoder inputs: the `observed − 1` displacements, 2 values each.
    pub const fn features(&self) -> usize {
        2 * (self.observed as usize).saturating_sub(1)
    }
    /// The step flow's context width for an encoding of width `encoding`.
    pub const fn context_dim(&self, encoding: usize) -> usize {
        encoding + 2 + self.embedding as usize
    }
    /// The encoding width a step-flow context of width `context_dim` implies.
    pub const fn encoding(&self, context_dim: usize) -> usize {
        context_dim.saturating_sub(2 + self.embedding as usize)
    }
    /// The trajectory flag byte.
    pub const fn flags(&self) -> u8 {
        (if self.per_step { TRAJECTORY_FLAG_PER_STEP } else { 0 })
            | (if self.heading_frame { TRAJECTORY_FLAG_HEADING } else { 0 })
    }
}

/// A calibrated anomaly threshold: a row is an anomaly when its score
/// `-log p(x)` (nats, data units) exceeds `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AnomalyThreshold {
    /// Score threshold, nats.
    pub threshold: f32,
    /// The false-alarm rate it was calibrated for on held-out normal rows.
    pub target_fpr: f32,
}

/// How a stream of `channels`-wide samples becomes the model's input: the last
/// `window` samples, oldest first, channel-interleaved (`[s_0c_0, s_0c_1, …]`), or
/// with `differences` the `window − 1` first differences `s_{t+1} − s_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StreamLayout {
    /// Samples per window, W.
    pub window: u16,
    /// Channels per sample, C.
    pub channels: u16,
    /// Whether the input is the first differences of the window.
    pub differences: bool,
}

/// When a stream's alarm goes on and off, from the verdicts (score above the
/// threshold or not) of the last `window` scored windows: on when at least
/// `raise` of them are above, off again when at most `clear` are — k-of-m
/// raising with hysteresis, so one anomaly is one alarm and an isolated
/// excursion is none. `{ window: 1, raise: 1, clear: 0 }` is the plain
/// per-window verdict (what a stream model without a stored rule uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlarmRule {
    /// Windows counted, m: 1 ..= [`MAX_ALARM_WINDOW`].
    pub window: u8,
    /// Windows above the threshold that raise the alarm, k: 1 ..= m.
    pub raise: u8,
    /// An active alarm clears when at most this many are above, j: < k.
    pub clear: u8,
}

impl AlarmRule {
    /// The per-window verdict: on while the current window is above the threshold.
    pub const PER_WINDOW: AlarmRule = AlarmRule { window: 1, raise: 1, clear: 0 };

    /// Whether the rule is one the format allows: `1 ≤ m ≤ 32`, `1 ≤ k ≤ m`, `j < k`.
    pub const fn is_valid(&self) -> bool {
        self.window >= 1
            && self.window <= MAX_ALARM_WINDOW
            && self.raise >= 1
            && self.raise <= self.window
            && self.clear < self.raise
    }
}

impl StreamLayout {
    /// Input dimension the layout produces: `C·W`, or `C·(W − 1)` with differences.
    pub const fn dim(&self) -> usize {
        let w = if self.differences { (self.window as usize).saturating_sub(1) } else { self.window as usize };
        w * self.channels as usize
    }
    /// f32 values of stream history needed: `C·W`.
    pub const fn history_len(&self) -> usize {
        self.window as usize * self.channels as usize
    }
}
