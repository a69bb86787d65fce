//! The trajectory model in Burn: a history encoder and the step flows, trained
//! by exact maximum likelihood of the whole future,
//! `log p(v_1..v_T | history) = Σ_t log p(v_t | h, v_{t−1}, e_t)`.

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::prelude::*;
use floe_runtime::format::{BaseKind, TrajectoryLayout, MAX_EMBEDDING, MAX_ENCODING};
use serde::{Deserialize, Serialize};

use super::data::{HORIZON, OBSERVED};
use crate::error::{ConfigError, Result};
use crate::flow::{Flow, FlowConfig, Mlp, MlpSpec, PermChoice, TransformKind};

/// The architecture of a trajectory model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryConfig {
    /// One flow per step (else one flow shared by every step, told the step by a
    /// learned embedding).
    pub per_step: bool,
    /// Predict in the heading frame of the last observed displacement (else in
    /// world axes).
    pub heading: bool,
    /// Encoding width H.
    pub encoding: usize,
    /// Step embedding width E (shared flow only).
    pub embedding: usize,
    /// The encoder MLP's hidden width.
    pub encoder_hidden: usize,
    /// The encoder MLP's hidden layers.
    pub encoder_blocks: usize,
    /// Each step flow: spline couplings over the 2-D displacement.
    pub flow: FlowConfig,
}

impl Default for TrajectoryConfig {
    fn default() -> Self {
        TrajectoryConfig::shared()
    }
}

impl TrajectoryConfig {
    /// The default shared-step model: H = 16, E = 6, four spline couplings of
    /// 2 × 64 (≈ 35 k parameters; ≈ 40 KB in int8).
    pub fn shared() -> Self {
        let (encoding, embedding) = (16, 6);
        let flow = FlowConfig {
            dim: 2,
            context_dim: encoding + 2 + embedding,
            transform: TransformKind::SplineCoupling,
            steps: 4,
            hidden: 64,
            blocks: 2,
            residual: false,
            tanh: false,
            bins: 8,
            tail_bound: 5.0,
            clamp: 3.0,
            actnorm: true,
            lu: false,
            permutation: PermChoice::Reverse,
            base: BaseKind::StdNormal,
            components: 4,
            seed: 0,
            zero_init: true,
        };
        TrajectoryConfig {
            per_step: false,
            heading: true,
            encoding,
            embedding,
            encoder_hidden: 64,
            encoder_blocks: 2,
            flow,
        }
    }

    /// One flow per step, each like the shared one (without the embedding).
    pub fn per_step() -> Self {
        let mut c = TrajectoryConfig::shared();
        c.per_step = true;
        c.embedding = 0;
        c.flow.context_dim = c.encoding + 2;
        c
    }

    /// The file's trajectory layout.
    pub fn layout(&self) -> TrajectoryLayout {
        TrajectoryLayout {
            horizon: HORIZON as u8,
            observed: OBSERVED as u8,
            per_step: self.per_step,
            heading_frame: self.heading,
            embedding: self.embedding as u8,
        }
    }

    /// The encoder's shape.
    pub fn encoder_spec(&self) -> MlpSpec {
        MlpSpec {
            hidden: self.encoder_hidden,
            blocks: self.encoder_blocks,
            residual: false,
            tanh: false,
            zero_last: true,
        }
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_ENCODING).contains(&self.encoding) {
            return Err(ConfigError::invalid("encoding", "in 1..=64", self.encoding).into());
        }
        if self.embedding > MAX_EMBEDDING || (self.per_step && self.embedding != 0) {
            return Err(ConfigError::invalid("embedding", "<= 30, and 0 with per-step flows", self.embedding).into());
        }
        if self.encoder_hidden == 0 || self.encoder_blocks == 0 {
            return Err(ConfigError::invalid("encoder", "hidden >= 1 and blocks >= 1", self.encoder_hidden).into());
        }
        if self.flow.dim != 2 || self.flow.context_dim != self.encoding + 2 + self.embedding {
            return Err(ConfigError::invalid("flow", "dim 2 and context H + 2 + E", self.flow.context_dim).into());
        }
        if self.flow.base != BaseKind::StdNormal {
            return Err(ConfigError::invalid(
                "flow.base",
                "normal (the step flows share the file's base)",
                self.flow.base.name(),
            )
            .into());
        }
        self.flow.validate()
    }
}

/// Encoder, step embedding and step flows.
#[derive(Module, Debug)]
pub struct TrajectoryFlow {
    /// History features (standardized) to the encoding `h`.
    pub encoder: Mlp,
    /// Step embedding `[T, E]` (shared flow with E > 0).
    pub embedding: Option<Param<Tensor<2>>>,
    /// One flow, or one per step.
    pub flows: Vec<Flow>,
}

impl TrajectoryFlow {
    /// An untrained model (seeded by the device's seed).
    pub fn new(cfg: &TrajectoryConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let spec = cfg.encoder_spec();
        let mut encoder = Mlp::new(&spec, 2 * (OBSERVED - 1), cfg.encoding, None, device);
        // Unlike a conditioner, the encoder must not start at zero: its output
        // is the flows' context, and a constant context learns slowly.
        if let Some(last) = encoder.linears.last_mut() {
            *last = LinearConfig::new(cfg.encoder_hidden, cfg.encoding).init(device);
        }
        let embedding = (cfg.embedding > 0).then(|| {
            let e = Tensor::random([HORIZON, cfg.embedding], burn::tensor::Distribution::Normal(0.0, 1.0), device);
            Param::from_tensor(e)
        });
        let n_flows = if cfg.per_step { HORIZON } else { 1 };
        let flows = (0..n_flows)
            .map(|s| {
                let mut f = cfg.flow.clone();
                f.seed = cfg.flow.seed.wrapping_add(s as u64);
                Flow::new(&f, device)
            })
            .collect::<Result<_>>()?;
        Ok(TrajectoryFlow { encoder, embedding, flows })
    }

    /// The encodings `[B, H]` of standardized features `[B, F]`.
    pub fn encode(&self, features: Tensor<2>) -> Tensor<2> {
        self.encoder.forward(features)
    }

    /// The step flows' inputs: for the shared flow one batch of `B·T` rows
    /// (step-major within a window), for per-step flows `T` batches of `B`.
    /// `x`, `vprev`: standardized `[B, T, 2]`.
    fn step_batches(&self, h: Tensor<2>, x: Tensor<3>, vprev: Tensor<3>) -> Vec<(Tensor<2>, Tensor<2>)> {
        let [b, t, _] = x.dims();
        if self.flows.len() == 1 {
            let mut parts = vec![h.unsqueeze_dim::<3>(1).repeat_dim(1, t), vprev];
            if let Some(e) = &self.embedding {
                parts.push(e.val().unsqueeze_dim::<3>(0).repeat_dim(0, b));
            }
            let ctx = Tensor::cat(parts, 2);
            let c = ctx.dims()[2];
            vec![(x.reshape([b * t, 2]), ctx.reshape([b * t, c]))]
        } else {
            (0..t)
                .map(|s| {
                    let xs = x.clone().slice([0..b, s..s + 1, 0..2]).reshape([b, 2]);
                    let vp = vprev.clone().slice([0..b, s..s + 1, 0..2]).reshape([b, 2]);
                    (xs, Tensor::cat(vec![h.clone(), vp], 1))
                })
                .collect()
        }
    }

    /// `log p` of each step `[B, T]`, standardized units.
    pub fn step_log_probs(&self, features: Tensor<2>, x: Tensor<3>, vprev: Tensor<3>) -> Tensor<2> {
        let [b, t, _] = x.dims();
        let h = self.encode(features);
        let shared = self.flows.len() == 1;
        let cols: Vec<Tensor<2>> = self
            .step_batches(h, x, vprev)
            .into_iter()
            .zip(&self.flows)
            .map(|((x, c), f)| {
                let lp = f.log_prob(x, Some(c));
                if shared {
                    lp.reshape([b, t])
                } else {
                    lp.reshape([b, 1])
                }
            })
            .collect();
        Tensor::cat(cols, 1)
    }

    /// Initialize every flow's ActNorms from a batch.
    pub fn data_init(mut self, features: Tensor<2>, x: Tensor<3>, vprev: Tensor<3>) -> Self {
        let h = self.encode(features).detach();
        let batches = self.step_batches(h, x, vprev);
        self.flows = self.flows.into_iter().zip(batches).map(|(f, (x, c))| f.data_init(x, Some(c))).collect();
        self
    }
}
