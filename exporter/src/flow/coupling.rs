//! Coupling layers (affine and spline) in Burn, and the elementwise maps they
//! share with MADE layers: the same parameterization as the runtime's
//! `transforms/coupling.rs`.

use burn::prelude::*;
use floe_runtime::format::spline::params_per_dim;
use floe_runtime::format::LayerKind;

use super::conditioner::{Mlp, MlpSpec};
use super::spline::{rqs_forward, rqs_forward_zuko, zuko_clip};

/// The elementwise map shared by couplings and MADE layers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Elementwise {
    /// `z = x exp(A tanh(raw/A)) + t` (zuko: `exp(raw / (1 + |raw/A|))`).
    Affine {
        /// Soft clamp A of the log-scale.
        clamp: f32,
        /// zuko's parameterization (an imported flow, `FLAG_ZUKO`).
        #[serde(default)]
        zuko: bool,
    },
    /// Rational-quadratic spline.
    Spline {
        /// K.
        bins: usize,
        /// B.
        bound: f32,
        /// zuko's parameterization (an imported flow, `FLAG_ZUKO`).
        #[serde(default)]
        zuko: bool,
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
            Elementwise::Affine { clamp, zuko } => {
                let t = p.clone().slice([0..n * m, 0..1]).reshape([n * m]);
                let raw = p.slice([0..n * m, 1..2]).reshape([n * m]);
                let ls = if zuko { zuko_clip(raw, 1.0, clamp) } else { raw.div_scalar(clamp).tanh().mul_scalar(clamp) };
                (xf * ls.clone().exp() + t, ls)
            }
            Elementwise::Spline { bins, bound, zuko: false } => rqs_forward(xf, p, bins, bound),
            Elementwise::Spline { bins, bound, zuko: true } => rqs_forward_zuko(xf, p, bins, bound),
        };
        (z.reshape([n, m]), ld.reshape([n, m]).sum_dim(1).reshape([n]))
    }

    /// `(bins, param)` as the layer record stores them.
    pub fn record_fields(&self) -> (u16, f32) {
        match *self {
            Elementwise::Affine { clamp, .. } => (0, clamp),
            Elementwise::Spline { bins, bound, .. } => (bins as u16, bound),
        }
    }

    /// Whether the map reads its parameters the way zuko does.
    pub fn zuko(&self) -> bool {
        match *self {
            Elementwise::Affine { zuko, .. } | Elementwise::Spline { zuko, .. } => zuko,
        }
    }

    /// The layer kind of a coupling (`made = false`) or MADE layer with this map.
    pub fn layer_kind(&self, made: bool) -> LayerKind {
        match (self, made) {
            (Elementwise::Affine { .. }, false) => LayerKind::AffineCoupling,
            (Elementwise::Spline { .. }, false) => LayerKind::SplineCoupling,
            (Elementwise::Affine { .. }, true) => LayerKind::MadeAffine,
            (Elementwise::Spline { .. }, true) => LayerKind::MadeSpline,
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
    /// A coupling that starts as the identity (unless `spec.zero_last` is off).
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
}
