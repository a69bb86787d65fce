//! MADE autoregressive layers in Burn (MAF when affine): the same masks and
//! parameterization as the runtime's `transforms/made.rs`.

use burn::prelude::*;

use super::conditioner::{Mlp, MlpSpec};
use super::coupling::Elementwise;

/// MADE autoregressive layer (MAF when affine).
#[derive(Module, Debug)]
pub struct Made {
    /// Masked conditioner `[x, context] -> params`.
    pub mlp: Mlp,
    /// D.
    pub dim: usize,
    /// The map.
    #[module(skip)]
    pub elem: Elementwise,
    /// Conditioner shape.
    #[module(skip)]
    pub spec: MlpSpec,
}

impl Made {
    /// A MADE layer that starts as the identity (unless `spec.zero_last` is off).
    pub fn new(dim: usize, context_dim: usize, elem: Elementwise, spec: MlpSpec, device: &Device) -> Self {
        let mlp = Mlp::new(&spec, dim + context_dim, dim * elem.ppd(), Some((dim, elem.ppd())), device);
        Made { mlp, dim, elem, spec }
    }

    /// Data to latent (one pass).
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let inp = match ctx {
            Some(c) => Tensor::cat(vec![x.clone(), c], 1),
            None => x.clone(),
        };
        self.elem.forward(x, self.mlp.forward(inp))
    }
}
