//! The flow in Burn: one module per runtime transform, with the same names,
//! parameterization and numerical conventions (a parity test pins every pair).
//! Freezing a trained flow into a file is [`crate::freeze`]'s.

mod base;
mod conditioner;
mod config;
mod coupling;
pub mod fused;
mod linear;
mod made;
pub mod math;
pub mod spline;

use burn::module::Param;
use burn::prelude::*;
use rand::SeedableRng;

pub use base::BaseDist;
pub use conditioner::{Mlp, MlpSpec};
pub use config::{base_kind_serde, FlowConfig, PermChoice, TransformKind};
pub use coupling::{Coupling, Elementwise};
pub use linear::{ActNorm, LuLinear, Permute};
pub use made::Made;

use crate::error::Result;

/// One layer of a flow. (Variant sizes differ; a flow holds a handful of layers,
/// so boxing buys nothing.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// Coupling (affine or spline).
    Coupling(Coupling),
    /// MADE (affine or spline).
    Made(Made),
    /// LU linear.
    LuLinear(LuLinear),
    /// Permutation or reversal.
    Permute(Permute),
    /// ActNorm.
    ActNorm(ActNorm),
}

impl Layer {
    /// Data to latent: `(z, log|det| per row)`.
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        match self {
            Layer::Coupling(l) => l.forward(x, ctx),
            Layer::Made(l) => l.forward(x, ctx),
            Layer::LuLinear(l) => l.forward(x),
            Layer::Permute(l) => l.forward(x),
            Layer::ActNorm(l) => l.forward(x),
        }
    }
}

/// A normalizing flow: layers (data side first) and a base distribution. Works in
/// standardized units; [`crate::data::Standardization`] holds the map from data
/// units.
#[derive(Module, Debug)]
pub struct Flow {
    /// Layers, data side first.
    pub layers: Vec<Layer>,
    /// Base distribution.
    pub base: BaseDist,
    /// D.
    pub dim: usize,
    /// C.
    pub context_dim: usize,
}

impl Flow {
    /// Build an untrained flow (every layer the identity unless `cfg.zero_init`
    /// is off, ActNorm not yet initialized).
    pub fn new(cfg: &FlowConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dim;
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5EED_F10E);
        let mut layers = Vec::new();
        let elem = if cfg.transform.layer_kind().is_spline() {
            Elementwise::Spline { bins: cfg.bins, bound: cfg.tail_bound, zuko: false }
        } else {
            Elementwise::Affine { clamp: cfg.clamp, zuko: false }
        };
        for step in 0..cfg.steps {
            if step > 0 {
                match cfg.permutation {
                    PermChoice::Reverse if d > 1 => layers.push(Layer::Permute(Permute::reversal(d))),
                    PermChoice::Random if d > 1 => layers.push(Layer::Permute(Permute::random(d, &mut rng))),
                    _ => {}
                }
            }
            if cfg.actnorm {
                layers.push(Layer::ActNorm(ActNorm::new(d, device)));
            }
            if cfg.lu && d > 1 {
                layers.push(Layer::LuLinear(LuLinear::new(d, device)));
            }
            if !cfg.transform.is_conditioned() {
                continue;
            }
            let spec = cfg.mlp_spec();
            layers.push(if cfg.transform.is_coupling() {
                Layer::Coupling(Coupling::new(d, cfg.context_dim, d / 2, elem, spec, device))
            } else {
                Layer::Made(Made::new(d, cfg.context_dim, elem, spec, device))
            });
        }
        Ok(Flow {
            layers,
            base: BaseDist::new(cfg.base, d, cfg.components, device),
            dim: d,
            context_dim: cfg.context_dim,
        })
    }

    /// Data to latent: `(z, summed log|det|)`.
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [n, _] = x.dims();
        let mut ld = Tensor::<1>::zeros([n], &x.device());
        let mut z = x;
        for l in &self.layers {
            let (nz, l_ld) = l.forward(z, ctx.clone());
            z = nz;
            ld = ld + l_ld;
        }
        (z, ld)
    }

    /// `log p(x | ctx)` per row, in standardized units.
    pub fn log_prob(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> Tensor<1> {
        let (z, ld) = self.forward(x, ctx);
        self.base.log_prob(z) + ld
    }

    /// Data-dependent initialization of every ActNorm from a batch.
    pub fn data_init(mut self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> Self {
        let mut z = x;
        for l in self.layers.iter_mut() {
            if let Layer::ActNorm(a) = l {
                *a = a.init_from(&z);
            }
            z = l.forward(z, ctx.clone()).0.detach();
        }
        self
    }
}

/// Adds seeded `N(0, scale^2)` noise to every trainable parameter: turns the
/// identity-initialized flow into a generic one (tests, parity checks).
pub fn perturb(flow: Flow, scale: f32) -> Flow {
    struct Noise(f32);
    impl burn::module::ModuleMapper for Noise {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let v = param.val();
            let noise = v.random_like(burn::tensor::Distribution::Normal(0.0, self.0 as f64));
            Param::from_tensor((v + noise).detach())
        }
    }
    flow.map(&mut Noise(scale))
}
