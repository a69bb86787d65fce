//! LU-decomposed invertible linear map (Kingma & Dhariwal, "Glow", 2018).
//!
//! `z = L (U + diag(exp(log_diag))) x + bias`, with `L` unit lower-triangular and
//! `U` strictly upper-triangular, both packed in one `D x D` tensor `lu` whose
//! diagonal is zero. `log |det| = sum(log_diag)`. Both directions run in place in
//! `O(D^2)`: the inverse is two triangular solves.

use crate::error::{Error, Result};
use crate::kernels::{at, set, sub, sub_mut, LANES};

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

/// [`forward`] on [`LANES`] rows at once: `xs` holds the rows (`LANES × D`,
/// row-major), `t` at least `D × LANES` words of work space (the rows
/// transposed, so each step runs on all lanes side by side). Every lane
/// performs [`forward`]'s operations in its order, so each row gets the bits
/// `forward` gives it; returns the `log |det|` every row shares.
pub(crate) fn forward_lanes(lu: &[f32], log_diag: &[f32], bias: &[f32], xs: &mut [f32], t: &mut [f32]) -> Result<f32> {
    let d = log_diag.len();
    let t = t.get_mut(..d * LANES).ok_or(Error::Internal)?;
    if lu.len() != d * d || bias.len() != d || xs.len() != d * LANES || d == 0 {
        return Err(Error::Internal);
    }
    for (l, x) in xs.chunks_exact(d).enumerate() {
        for (j, &v) in x.iter().enumerate() {
            set(t, j * LANES + l, v)?;
        }
    }
    let lane = |t: &[f32], j: usize| -> Result<[f32; LANES]> {
        sub(t, j * LANES, LANES)?.try_into().map_err(|_| Error::Internal)
    };
    // t = (U + D) x, top-down.
    for i in 0..d {
        let row = sub(lu, i * d, d)?;
        let e = crate::kernels::math::exp(at(log_diag, i)?);
        let mut acc = lane(t, i)?;
        for a in acc.iter_mut() {
            *a *= e;
        }
        for j in i + 1..d {
            let w = at(row, j)?;
            for (a, &v) in acc.iter_mut().zip(&lane(t, j)?) {
                *a += w * v;
            }
        }
        sub_mut(t, i * LANES, LANES)?.copy_from_slice(&acc);
    }
    // z = L t + b, bottom-up.
    for i in (0..d).rev() {
        let row = sub(lu, i * d, d)?;
        let mut acc = lane(t, i)?;
        for j in 0..i {
            let w = at(row, j)?;
            for (a, &v) in acc.iter_mut().zip(&lane(t, j)?) {
                *a += w * v;
            }
        }
        let b = at(bias, i)?;
        for a in acc.iter_mut() {
            *a += b;
        }
        sub_mut(t, i * LANES, LANES)?.copy_from_slice(&acc);
    }
    for (l, x) in xs.chunks_exact_mut(d).enumerate() {
        for (j, v) in x.iter_mut().enumerate() {
            *v = at(t, j * LANES + l)?;
        }
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
