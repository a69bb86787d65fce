//! Base distributions: standard normal, diagonal normal, independent Student-t
//! (per-dimension degrees of freedom, as in Marginal Tail-Adaptive Flows), and a
//! mixture of diagonal normals (a flow can then contain the GMM it competes with).

use crate::error::{Error, Result};
use crate::format::BaseKind;
use crate::kernels::LogSum;
use crate::rng::Rng;

/// `0.5 ln(2 pi)`.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

/// Parameters of the base distribution, borrowed from the model file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base<'a> {
    StdNormal,
    DiagNormal {
        loc: &'a [f32],
        log_scale: &'a [f32],
    },
    StudentT {
        df: &'a [f32],
    },
    /// K components: `logits` (K), `loc` and `log_scale` (K × D, row k = component k).
    Mixture {
        logits: &'a [f32],
        loc: &'a [f32],
        log_scale: &'a [f32],
    },
}

/// `log p(z)` of one mixture component without the `−D/2·ln 2π` term:
/// `−½ Σ ((z − loc)·e^{−ls})² − Σ ls`.
#[inline(never)]
fn component_kernel(z: &[f32], loc: &[f32], log_scale: &[f32]) -> f32 {
    let mut c = 0.0f32;
    for ((&v, &m), &l) in z.iter().zip(loc).zip(log_scale) {
        let u = (v - m) * crate::kernels::math::exp(-l);
        c -= 0.5 * u * u + l;
    }
    c
}

impl Base<'_> {
    /// The kind byte.
    pub(crate) fn kind(&self) -> BaseKind {
        match self {
            Base::StdNormal => BaseKind::StdNormal,
            Base::DiagNormal { .. } => BaseKind::DiagNormal,
            Base::StudentT { .. } => BaseKind::StudentT,
            Base::Mixture { .. } => BaseKind::Mixture,
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
                    s += crate::kernels::math::lgamma(0.5 * (v + 1.0))
                        - crate::kernels::math::lgamma(0.5 * v)
                        - 0.5 * libm::logf(v * core::f32::consts::PI);
                }
                s
            }
            // The weights' normalizer: log softmax(logits)_k = logits_k − LSE(logits).
            Base::Mixture { logits, .. } => {
                let mut lse = LogSum::new();
                for &w in logits {
                    lse.add(w);
                }
                -(dim as f32) * HALF_LN_2PI - lse.value()
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
                    let u = (v - m) * crate::kernels::math::exp(-l);
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
            Base::Mixture { logits, loc, log_scale } => {
                let d = z.len();
                if d == 0 || loc.len() != logits.len() * d || log_scale.len() != loc.len() {
                    return Err(Error::Internal);
                }
                // Component k's term: logits_k + its kernel, summed by log-sum-exp
                // in component order.
                let mut lse = LogSum::new();
                for (&w, (m, l)) in logits.iter().zip(loc.chunks_exact(d).zip(log_scale.chunks_exact(d))) {
                    lse.add(w + component_kernel(z, m, l));
                }
                s = lse.value();
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
                    *v = m + crate::kernels::math::exp(l) * rng.normal();
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
            Base::Mixture { logits, loc, log_scale } => {
                let d = z.len();
                if d == 0 || loc.len() != logits.len() * d || log_scale.len() != loc.len() {
                    return Err(Error::Internal);
                }
                // The component: the first k whose cumulative weight exceeds
                // u · Σ weights (weights e^{logit − max}, summed in order).
                let mut top = f32::NEG_INFINITY;
                for &w in logits {
                    if w > top {
                        top = w;
                    }
                }
                let mut total = 0.0f32;
                for &w in logits {
                    total += crate::kernels::math::exp(w - top);
                }
                let target = rng.uniform() * total;
                let (mut acc, mut k) = (0.0f32, logits.len().saturating_sub(1));
                for (i, &w) in logits.iter().enumerate() {
                    acc += crate::kernels::math::exp(w - top);
                    if target < acc {
                        k = i;
                        break;
                    }
                }
                let rows = loc.chunks_exact(d).zip(log_scale.chunks_exact(d));
                let (m, l) = rows.clone().nth(k).ok_or(Error::Internal)?;
                for ((v, &mu), &ls) in z.iter_mut().zip(m).zip(l) {
                    *v = mu + crate::kernels::math::exp(ls) * rng.normal();
                }
            }
        }
        Ok(())
    }
}
