//! Fixed permutations and reversal of the coordinates (volume preserving).

use crate::error::{Error, Result};
use crate::kernels::{at, set};

/// `z_i = x_perm[i]`, via `tmp`.
pub(crate) fn forward(perm: &[u16], x: &mut [f32], tmp: &mut [f32]) -> Result<()> {
    if perm.len() != x.len() || tmp.len() != x.len() {
        return Err(Error::Internal);
    }
    for (t, &p) in tmp.iter_mut().zip(perm) {
        *t = at(x, p as usize)?;
    }
    x.copy_from_slice(tmp);
    Ok(())
}

/// `x_perm[i] = z_i`, via `tmp`.
pub(crate) fn inverse(perm: &[u16], z: &mut [f32], tmp: &mut [f32]) -> Result<()> {
    if perm.len() != z.len() || tmp.len() != z.len() {
        return Err(Error::Internal);
    }
    for (&v, &p) in z.iter().zip(perm) {
        set(tmp, p as usize, v)?;
    }
    z.copy_from_slice(tmp);
    Ok(())
}

/// Whether `perm` holds each of `0..perm.len()` exactly once.
pub(crate) fn is_permutation(perm: &[u16]) -> bool {
    let n = perm.len();
    perm.iter().enumerate().all(|(i, &p)| (p as usize) < n && !perm.iter().take(i).any(|&q| q == p))
}
