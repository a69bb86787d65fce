//! Base distributions: standard normal, diagonal normal and independent Student-t
//! (per-dimension degrees of freedom, as in Marginal Tail-Adaptive Flows).

use crate::error::{Error, Result};
use crate::format::BaseKind;
use crate::rng::Rng;

/// `0.5 ln(2 pi)`.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

/// Parameters of the base distribution, borrowed from the model file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base<'a> {
    StdNormal,
    DiagNormal { loc: &'a [f32], log_scale: &'a [f32] },
    StudentT { df: &'a [f32] },
}

impl Base<'_> {
    /// The kind byte.
    pub(crate) fn kind(&self) -> BaseKind {
        match self {
            Base::StdNormal => BaseKind::StdNormal,
            Base::DiagNormal { .. } => BaseKind::DiagNormal,
            Base::StudentT { .. } => BaseKind::StudentT,
        }
    }

    /// The part of `log p(z)` that does not depend on `z`, for dimension `dim`.
    pub(crate) fn log_norm(&self, dim: usize) -> f32 {
        match *self {
            Base::StdNormal => -(dim as f32) * HALF_LN_2PI,
            Base::DiagNormal { log_scale, .. } => {
                let mut s = -(dim as f32) * HALF_LN_2PI;
                for &l in log_scale {
                    s -= l;
                }
                s
            }
            Base::StudentT { df } => {
                let mut s = 0.0f32;
                for &v in df {
                    s += libm::lgammaf(0.5 * (v + 1.0))
                        - libm::lgammaf(0.5 * v)
                        - 0.5 * libm::logf(v * core::f32::consts::PI);
                }
                s
            }
        }
    }

    /// The `z`-dependent part of `log p(z)` (add [`Base::log_norm`]).
    pub(crate) fn log_kernel(&self, z: &[f32]) -> Result<f32> {
        let mut s = 0.0f32;
        match *self {
            Base::StdNormal => {
                for &v in z {
                    s -= 0.5 * v * v;
                }
            }
            Base::DiagNormal { loc, log_scale } => {
                if loc.len() != z.len() || log_scale.len() != z.len() {
                    return Err(Error::Internal);
                }
                for ((&v, &m), &l) in z.iter().zip(loc).zip(log_scale) {
                    let u = (v - m) * libm::expf(-l);
                    s -= 0.5 * u * u;
                }
            }
            Base::StudentT { df } => {
                if df.len() != z.len() {
                    return Err(Error::Internal);
                }
                for (&v, &n) in z.iter().zip(df) {
                    s -= 0.5 * (n + 1.0) * libm::log1pf(v * v / n);
                }
            }
        }
        Ok(s)
    }

    /// Draw `z` from the base distribution.
    pub(crate) fn sample(&self, rng: &mut Rng, z: &mut [f32]) -> Result<()> {
        match *self {
            Base::StdNormal => {
                for v in z.iter_mut() {
                    *v = rng.normal();
                }
            }
            Base::DiagNormal { loc, log_scale } => {
                if loc.len() != z.len() || log_scale.len() != z.len() {
                    return Err(Error::Internal);
                }
                for ((v, &m), &l) in z.iter_mut().zip(loc).zip(log_scale) {
                    *v = m + libm::expf(l) * rng.normal();
                }
            }
            Base::StudentT { df } => {
                if df.len() != z.len() {
                    return Err(Error::Internal);
                }
                for (v, &n) in z.iter_mut().zip(df) {
                    *v = rng.student_t(n);
                }
            }
        }
        Ok(())
    }
}
