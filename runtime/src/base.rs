//! Base distributions: standard normal, diagonal normal, independent Student-t
//! (per-dimension degrees of freedom, as in Marginal Tail-Adaptive Flows), and a
//! mixture of diagonal or of full-covariance normals (a flow can then contain the
//! GMM it competes with).

use crate::error::{Error, Result};
use crate::format::{BaseKind, View, MAX_COMPONENTS, N_GLOBAL_TENSORS};
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
    /// K components: `logits` (K), `loc` and `log_scale` (K × D, row k =
    /// component k), and for full covariances `lower` (K × D(D−1)/2; empty for
    /// diagonal ones): component k's whitening matrix is
    /// `diag(e^{−log_scale_k}) + L_k`, `L_k` strictly lower triangular, row i's
    /// entries j < i packed row after row.
    Mixture {
        logits: &'a [f32],
        loc: &'a [f32],
        log_scale: &'a [f32],
        lower: &'a [f32],
    },
}

/// `log p(z)` of one mixture component without the `−D/2·ln 2π` term:
/// `−½ ‖W(z − loc)‖² − Σ ls`, with `W = diag(e^{−ls}) + L` and `L`'s rows packed
/// in `lower` (empty: a diagonal component). Row i: `u_i = (z_i − loc_i)·e^{−ls_i}`,
/// then `+ L_ij·(z_j − loc_j)` for j = 0, 1, …, i − 1 in order; `None` when
/// `lower` is too short.
#[inline(never)]
fn component_kernel(z: &[f32], loc: &[f32], log_scale: &[f32], lower: &[f32]) -> Option<f32> {
    let full = !lower.is_empty();
    let mut c = 0.0f32;
    let mut rest = lower;
    for (i, ((&v, &m), &l)) in z.iter().zip(loc).zip(log_scale).enumerate() {
        let mut u = (v - m) * crate::kernels::math::exp(-l);
        if full {
            let row = rest.get(..i)?;
            rest = rest.get(i..)?;
            for ((&a, &zj), &mj) in row.iter().zip(z).zip(loc) {
                u += a * (zj - mj);
            }
        }
        c -= 0.5 * u * u + l;
    }
    Some(c)
}

/// The component a mixture sample comes from: the first k whose cumulative
/// weight exceeds u · Σ weights (weights e^{logit − max}, summed in order).
fn pick_component(logits: &[f32], rng: &mut Rng) -> usize {
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
    k
}

/// The mixture's D(D−1)/2 lower-triangle entries per component for
/// `d`-dimensional points (0: diagonal), or `None` when its tensors do not fit.
fn mixture_tri(d: usize, logits: &[f32], loc: &[f32], log_scale: &[f32], lower: &[f32]) -> Option<usize> {
    let tri = if lower.is_empty() { 0 } else { d * d.checked_sub(1)? / 2 };
    let ok =
        d != 0 && loc.len() == logits.len() * d && log_scale.len() == loc.len() && lower.len() == logits.len() * tri;
    ok.then_some(tri)
}

/// [`Base::log_kernel`] of a mixture (its own frame: the other bases' calls
/// keep their stack): component k's term, logits_k + its kernel, summed by
/// log-sum-exp in component order.
#[inline(never)]
fn mixture_log_kernel(z: &[f32], logits: &[f32], loc: &[f32], log_scale: &[f32], lower: &[f32]) -> Result<f32> {
    let d = z.len();
    let tri = mixture_tri(d, logits, loc, log_scale, lower).ok_or(Error::Internal)?;
    let mut lse = LogSum::new();
    let rows = loc.chunks_exact(d).zip(log_scale.chunks_exact(d));
    for (k, (&w, (m, l))) in logits.iter().zip(rows).enumerate() {
        let low = lower.get(k * tri..(k + 1) * tri).ok_or(Error::Internal)?;
        lse.add(w + component_kernel(z, m, l, low).ok_or(Error::Internal)?);
    }
    Ok(lse.value())
}

/// [`Base::sample`] of a mixture (its own frame).
#[inline(never)]
fn mixture_sample(
    rng: &mut Rng,
    z: &mut [f32],
    logits: &[f32],
    loc: &[f32],
    log_scale: &[f32],
    lower: &[f32],
) -> Result<()> {
    let d = z.len();
    let tri = mixture_tri(d, logits, loc, log_scale, lower).ok_or(Error::Internal)?;
    let k = pick_component(logits, rng);
    let m = loc.chunks_exact(d).nth(k).ok_or(Error::Internal)?;
    let l = log_scale.chunks_exact(d).nth(k).ok_or(Error::Internal)?;
    let low = lower.get(k * tri..(k + 1) * tri).ok_or(Error::Internal)?;
    // z = loc + y with W y = ε: draw ε into z, then forward-substitute in
    // place, y_i = (ε_i − Σ_{j<i} L_ij y_j)·e^{ls_i} (j in order; a diagonal
    // component has no L, so y_i = ε_i·e^{ls_i}).
    for v in z.iter_mut() {
        *v = rng.normal();
    }
    let mut rest = low;
    for i in 0..d {
        let (done, tail) = z.split_at_mut(i);
        let zi = tail.first_mut().ok_or(Error::Internal)?;
        let ls = l.get(i).copied().ok_or(Error::Internal)?;
        let mut acc = *zi;
        if tri != 0 {
            let row = rest.get(..i).ok_or(Error::Internal)?;
            rest = rest.get(i..).ok_or(Error::Internal)?;
            for (&a, &y) in row.iter().zip(done.iter()) {
                acc -= a * y;
            }
        }
        *zi = acc * crate::kernels::math::exp(ls);
    }
    for (v, &mu) in z.iter_mut().zip(m) {
        *v += mu;
    }
    Ok(())
}

impl<'a> Base<'a> {
    /// The base distribution's parameters of a file's `kind`, checked (inlined
    /// into `Model::load`: a separate frame stops LLVM folding an embedded
    /// model's base kind, README "On a microcontroller").
    pub(crate) fn from_view(view: &View<'a>, kind: BaseKind, dim: usize) -> Result<Base<'a>> {
        let g = N_GLOBAL_TENSORS as u32;
        Ok(match kind {
            BaseKind::StdNormal => Base::StdNormal,
            BaseKind::DiagNormal => Base::DiagNormal {
                loc: view.f32_shaped(g, Some(dim), 1)?,
                log_scale: view.f32_shaped(g + 1, Some(dim), 1)?,
            },
            BaseKind::StudentT => {
                let df = view.f32_shaped(g, Some(dim), 1)?;
                if df.iter().any(|&v| !(v > 0.0)) {
                    return Err(Error::InvalidBase);
                }
                Base::StudentT { df }
            }
            BaseKind::Mixture | BaseKind::FullMixture => {
                let logits = view.f32_shaped(g, None, 1)?;
                let k = logits.len();
                let full = kind == BaseKind::FullMixture;
                if !(1..=MAX_COMPONENTS).contains(&k) || (full && dim < 2) {
                    return Err(Error::InvalidBase);
                }
                let loc = view.f32_shaped(g + 1, Some(k), dim)?;
                let log_scale = view.f32_shaped(g + 2, Some(k), dim)?;
                // A diagonal mixture has no lower triangles: an empty slice.
                let lower = if full { view.f32_shaped(g + 3, Some(k), dim * (dim - 1) / 2)? } else { &[] };
                Base::Mixture { logits, loc, log_scale, lower }
            }
        })
    }

    /// The kind byte.
    pub(crate) fn kind(&self) -> BaseKind {
        match self {
            Base::StdNormal => BaseKind::StdNormal,
            Base::DiagNormal { .. } => BaseKind::DiagNormal,
            Base::StudentT { .. } => BaseKind::StudentT,
            Base::Mixture { lower: [], .. } => BaseKind::Mixture,
            Base::Mixture { .. } => BaseKind::FullMixture,
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
            Base::Mixture { logits, loc, log_scale, lower } => {
                s = mixture_log_kernel(z, logits, loc, log_scale, lower)?;
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
            Base::Mixture { logits, loc, log_scale, lower } => {
                mixture_sample(rng, z, logits, loc, log_scale, lower)?;
            }
        }
        Ok(())
    }
}
