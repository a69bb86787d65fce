//! Elementwise affine map `z = x exp(log_scale) + shift` — how a trained ActNorm
//! (Glow) is stored once its data-dependent initialization is folded in.

use crate::error::{Error, Result};

/// Forward map in place; returns `log |det| = sum(log_scale)`.
pub(crate) fn forward(log_scale: &[f32], shift: &[f32], x: &mut [f32]) -> Result<f32> {
    if log_scale.len() != x.len() || shift.len() != x.len() {
        return Err(Error::Internal);
    }
    for ((v, &s), &b) in x.iter_mut().zip(log_scale).zip(shift) {
        *v = *v * crate::kernels::math::exp(s) + b;
    }
    Ok(log_scale.iter().sum())
}

/// Inverse map in place; returns the forward `log |det|`.
pub(crate) fn inverse(log_scale: &[f32], shift: &[f32], z: &mut [f32]) -> Result<f32> {
    if log_scale.len() != z.len() || shift.len() != z.len() {
        return Err(Error::Internal);
    }
    for ((v, &s), &b) in z.iter_mut().zip(log_scale).zip(shift) {
        *v = (*v - b) * crate::kernels::math::exp(-s);
    }
    Ok(log_scale.iter().sum())
}
