//! The transforms, one file each, and [`Layer`]: a layer record bound to its
//! tensors, which dispatches to them.
//!
//! Every transform maps data towards the latent space in `forward` (the direction
//! `log_prob` needs) and back in `inverse`, and both return the log-determinant of
//! the *forward* Jacobian. Conditioned layers (couplings, MADE) evaluate a
//! [`conditioner::Conditioner`] and apply an [`Elementwise`] map with its output.

mod actnorm;
pub(crate) mod conditioner;
pub(crate) mod coupling;
mod encoder;
pub(crate) mod layer;
pub(crate) mod lu_linear;
mod made;
mod permute;
pub(crate) mod spline;

pub(crate) use encoder::Encoder;
pub(crate) use layer::{Dims, Layer, Plan};

use crate::error::{Error, Result};
use crate::format::LayerRecord;
use crate::kernels::sub;

/// Soft clamp of affine log-scales: `log s = A tanh(raw / A)`, or zuko's
/// `raw / (1 + |raw / A|)` ([`crate::format::FLAG_ZUKO`]).
#[inline]
pub(crate) fn soft_clamp(raw: f32, a: f32, zuko: bool) -> f32 {
    if zuko {
        crate::format::spline::zuko_clip(raw, 1.0, a)
    } else {
        a * libm::tanhf(raw / a)
    }
}

/// The elementwise map a conditioner parameterizes: affine or spline.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Elementwise {
    /// `z = x exp(A tanh(raw_s / A)) + t`, params per coordinate `[t, raw_s]`
    /// (`zuko`: `exp(raw_s / (1 + |raw_s / A|))`).
    Affine { clamp: f32, zuko: bool },
    /// Rational-quadratic spline, `3K - 1` params per coordinate (`zuko`: read
    /// the way zuko does, [`crate::format::spline::ZUKO_NEG_LN_SLOPE`]).
    Spline { bins: usize, bound: f32, zuko: bool },
}

impl Elementwise {
    /// The map of a conditioned layer's record.
    pub(crate) fn of(rec: &LayerRecord) -> Elementwise {
        let zuko = rec.flags & crate::format::FLAG_ZUKO != 0;
        if rec.kind.is_spline() {
            Elementwise::Spline { bins: rec.bins as usize, bound: rec.param, zuko }
        } else {
            Elementwise::Affine { clamp: rec.param, zuko }
        }
    }
    /// Whether the map reads its parameters the way zuko does.
    pub(crate) fn zuko(&self) -> bool {
        match *self {
            Elementwise::Affine { zuko, .. } | Elementwise::Spline { zuko, .. } => zuko,
        }
    }
    /// Raw parameters per transformed coordinate.
    pub(crate) fn params_per_dim(&self) -> usize {
        match *self {
            Elementwise::Affine { .. } => 2,
            Elementwise::Spline { bins, .. } => crate::format::spline::params_per_dim(bins),
        }
    }
    /// Work space for one evaluation.
    pub(crate) fn work_len(&self) -> usize {
        match *self {
            Elementwise::Affine { .. } => 0,
            Elementwise::Spline { bins, .. } => spline::work_len(bins),
        }
    }
    /// Check the record's parameters.
    pub(crate) fn check(&self) -> bool {
        match *self {
            Elementwise::Affine { clamp, .. } => clamp.is_finite() && clamp > 0.0,
            Elementwise::Spline { bins, bound, .. } => {
                (1..=crate::format::MAX_BINS).contains(&bins) && bound.is_finite() && bound > 0.0
            }
        }
    }
    /// Transform coordinate `j` of the `params` block forward; returns `(z, log|dz/dx|)`.
    pub(crate) fn forward(&self, x: f32, params: &[f32], j: usize, work: &mut [f32]) -> Result<(f32, f32)> {
        let p = sub(params, j * self.params_per_dim(), self.params_per_dim())?;
        match *self {
            Elementwise::Affine { clamp, zuko } => {
                let t = p.first().copied().ok_or(Error::Internal)?;
                let ls = soft_clamp(p.get(1).copied().ok_or(Error::Internal)?, clamp, zuko);
                Ok((x * crate::kernels::math::exp(ls) + t, ls))
            }
            Elementwise::Spline { bins, bound, zuko } => spline::Spline { bins, bound, zuko }.forward(x, p, work),
        }
    }
    /// Inverse of [`Elementwise::forward`]; returns `(x, log|dz/dx|)`.
    pub(crate) fn inverse(&self, z: f32, params: &[f32], j: usize, work: &mut [f32]) -> Result<(f32, f32)> {
        let p = sub(params, j * self.params_per_dim(), self.params_per_dim())?;
        match *self {
            Elementwise::Affine { clamp, zuko } => {
                let t = p.first().copied().ok_or(Error::Internal)?;
                let ls = soft_clamp(p.get(1).copied().ok_or(Error::Internal)?, clamp, zuko);
                Ok(((z - t) * crate::kernels::math::exp(-ls), ls))
            }
            Elementwise::Spline { bins, bound, zuko } => spline::Spline { bins, bound, zuko }.inverse(z, p, work),
        }
    }
}

/// An observer of conditioner evaluations: `(layer, input, output)`; it may
/// rewrite the output before the layer uses it. The exporter calibrates int8
/// activation ranges with it and simulates quantized conditioners on an f32 model
/// (`floe_runtime::exporter_hooks::log_prob_traced`).
pub type Trace<'t> = dyn FnMut(u16, &[f32], &mut [f32]) + 't;

/// An optional [`Trace`] and the layer being evaluated.
pub(crate) struct Tracer<'t> {
    f: Option<&'t mut Trace<'t>>,
    pub(crate) layer: u16,
}

impl<'t> Tracer<'t> {
    /// No observer.
    pub(crate) fn none() -> Tracer<'t> {
        Tracer { f: None, layer: 0 }
    }

    /// Report to `f`.
    pub(crate) fn new(f: &'t mut Trace<'t>) -> Tracer<'t> {
        Tracer { f: Some(f), layer: 0 }
    }

    /// Report one evaluation of the current layer's conditioner (the observer may
    /// rewrite `output`).
    pub(crate) fn emit(&mut self, input: &[f32], output: &mut [f32]) {
        if let Some(f) = self.f.as_mut() {
            f(self.layer, input, output);
        }
    }
}
