//! Coupling layers (affine and spline) and MADE layers, in Burn: the same
//! parameterization as `floe_runtime::transforms::{affine_coupling, made}`.

use burn::prelude::*;
use floe_runtime::transforms::spline::params_per_dim;
use floe_runtime::LayerKind;

use super::conditioner::{Mlp, MlpSpec};
use super::spline::rqs_forward;
use crate::writer::FrozenLayer;

/// The elementwise map shared by couplings and MADE layers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Elementwise {
    /// `z = x exp(A tanh(raw/A)) + t`.
    Affine {
        /// Soft clamp A of the log-scale.
        clamp: f32,
    },
    /// Rational-quadratic spline.
    Spline {
        /// K.
        bins: usize,
        /// B.
        bound: f32,
    },
}

impl Elementwise {
    /// Raw parameters per coordinate.
    pub fn ppd(&self) -> usize {
        match *self {
            Elementwise::Affine { .. } => 2,
            Elementwise::Spline { bins, .. } => params_per_dim(bins),
        }
    }

    /// Apply to `x [N, m]` with parameters `[N, m * ppd]`; returns `(z, log|det| [N])`.
    pub fn forward(&self, x: Tensor<2>, params: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, m] = x.dims();
        let p = params.reshape([n * m, self.ppd()]);
        let xf = x.reshape([n * m]);
        let (z, ld) = match *self {
            Elementwise::Affine { clamp } => {
                let t = p.clone().slice([0..n * m, 0..1]).reshape([n * m]);
                let raw = p.slice([0..n * m, 1..2]).reshape([n * m]);
                let ls = raw.div_scalar(clamp).tanh().mul_scalar(clamp);
                (xf * ls.clone().exp() + t, ls)
            }
            Elementwise::Spline { bins, bound } => rqs_forward(xf, p, bins, bound),
        };
        (z.reshape([n, m]), ld.reshape([n, m]).sum_dim(1).reshape([n]))
    }

    fn fields(&self) -> (u16, f32) {
        match *self {
            Elementwise::Affine { clamp } => (0, clamp),
            Elementwise::Spline { bins, bound } => (bins as u16, bound),
        }
    }
}

/// RealNVP / NSF coupling: the first `split` coordinates condition the rest.
#[derive(Module, Debug)]
pub struct Coupling {
    /// Conditioner `[x_a, context] -> params`.
    pub mlp: Mlp,
    /// Pass-through coordinates.
    pub split: usize,
    /// D.
    pub dim: usize,
    /// The map.
    #[module(skip)]
    pub elem: Elementwise,
    /// Conditioner shape.
    #[module(skip)]
    pub spec: MlpSpec,
}

impl Coupling {
    /// A coupling that starts as the identity.
    pub fn new(
        dim: usize,
        context_dim: usize,
        split: usize,
        elem: Elementwise,
        spec: MlpSpec,
        device: &Device,
    ) -> Self {
        let mlp = Mlp::new(&spec, split + context_dim, (dim - split) * elem.ppd(), None, device);
        Coupling { mlp, split, dim, elem, spec }
    }

    /// Data to latent.
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [n, d] = x.dims();
        let xa = x.clone().slice([0..n, 0..self.split]);
        let xb = x.slice([0..n, self.split..d]);
        let inp = match ctx {
            Some(c) => Tensor::cat(vec![xa.clone(), c], 1),
            None => xa.clone(),
        };
        let (zb, ld) = self.elem.forward(xb, self.mlp.forward(inp));
        (Tensor::cat(vec![xa, zb], 1), ld)
    }

    /// The layer as written to the file.
    pub fn frozen(&self) -> FrozenLayer {
        let kind = match self.elem {
            Elementwise::Affine { .. } => LayerKind::AffineCoupling,
            Elementwise::Spline { .. } => LayerKind::SplineCoupling,
        };
        let (bins, param) = self.elem.fields();
        FrozenLayer {
            kind,
            activation: self.spec.activation(),
            quant: 0,
            residual: self.spec.residual,
            split: self.split as u16,
            bins,
            hidden: self.spec.hidden as u16,
            blocks: self.spec.blocks as u16,
            param,
            tensors: self.mlp.frozen(),
        }
    }
}

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
    /// A MADE layer that starts as the identity.
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

    /// The layer as written to the file.
    pub fn frozen(&self) -> FrozenLayer {
        let kind = match self.elem {
            Elementwise::Affine { .. } => LayerKind::MadeAffine,
            Elementwise::Spline { .. } => LayerKind::MadeSpline,
        };
        let (bins, param) = self.elem.fields();
        FrozenLayer {
            kind,
            activation: self.spec.activation(),
            quant: 0,
            residual: self.spec.residual,
            split: 0,
            bins,
            hidden: self.spec.hidden as u16,
            blocks: self.spec.blocks as u16,
            param,
            tensors: self.mlp.frozen(),
        }
    }
}
