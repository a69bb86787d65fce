//! LU-decomposed invertible linear map (Kingma & Dhariwal, "Glow", 2018).
//!
//! `z = L (U + diag(exp(log_diag))) x + bias`, with `L` unit lower-triangular and
//! `U` strictly upper-triangular, both packed in one `D x D` tensor `lu` whose
//! diagonal is zero. `log |det| = sum(log_diag)`. Both directions run in place in
//! `O(D^2)`: the inverse is two triangular solves.

use crate::error::{Error, Result};
use crate::kernels::{at, set, sub};

/// Forward map in place; returns `log |det|`.
pub(crate) fn forward(lu: &[f32], log_diag: &[f32], bias: &[f32], x: &mut [f32]) -> Result<f32> {
    let d = x.len();
    if lu.len() != d * d || log_diag.len() != d || bias.len() != d {
        return Err(Error::Internal);
    }
    // t = (U + D) x, top-down: t_i needs x_j for j >= i only.
    for i in 0..d {
        let row = sub(lu, i * d, d)?;
        let mut acc = crate::kernels::math::exp(at(log_diag, i)?) * at(x, i)?;
        for j in i + 1..d {
            acc += at(row, j)? * at(x, j)?;
        }
        set(x, i, acc)?;
    }
    // z = L t + b, bottom-up: z_i needs t_j for j < i only.
    for i in (0..d).rev() {
        let row = sub(lu, i * d, d)?;
        let mut acc = at(x, i)?;
        for j in 0..i {
            acc += at(row, j)? * at(x, j)?;
        }
        set(x, i, acc + at(bias, i)?)?;
    }
    Ok(log_diag.iter().sum())
}

/// Inverse map in place; returns the forward `log |det|`.
pub(crate) fn inverse(lu: &[f32], log_diag: &[f32], bias: &[f32], z: &mut [f32]) -> Result<f32> {
    let d = z.len();
    if lu.len() != d * d || log_diag.len() != d || bias.len() != d {
        return Err(Error::Internal);
    }
    // Solve L t = z - b, top-down.
    for i in 0..d {
        let row = sub(lu, i * d, d)?;
        let mut acc = at(z, i)? - at(bias, i)?;
        for j in 0..i {
            acc -= at(row, j)? * at(z, j)?;
        }
        set(z, i, acc)?;
    }
    // Solve (U + D) x = t, bottom-up.
    for i in (0..d).rev() {
        let row = sub(lu, i * d, d)?;
        let mut acc = at(z, i)?;
        for j in i + 1..d {
            acc -= at(row, j)? * at(z, j)?;
        }
        set(z, i, acc * crate::kernels::math::exp(-at(log_diag, i)?))?;
    }
    Ok(log_diag.iter().sum())
}
