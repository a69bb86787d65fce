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

/// Values one pass of [`is_permutation`] checks: a 128-byte bitset on the stack.
const PASS: usize = 1024;

/// Whether `perm` holds each of `0..perm.len()` exactly once. Linear time and
/// fixed stack: each pass marks the values of one block of [`PASS`] in a
/// bitset, so a model's largest D (4096) takes at most 4 passes over `perm`
/// (a pairwise check would be D²/2 = 8.4 M comparisons inside `Model::load`).
pub(crate) fn is_permutation(perm: &[u16]) -> bool {
    let n = perm.len();
    if perm.iter().any(|&p| p as usize >= n) {
        return false;
    }
    let mut lo = 0;
    while lo < n {
        let mut seen = [0u32; PASS / 32];
        for &p in perm {
            let Some(k) = (p as usize).checked_sub(lo).filter(|&k| k < PASS) else { continue };
            let (word, bit) = (k / 32, 1u32 << (k % 32));
            let Some(w) = seen.get_mut(word) else { return false };
            if *w & bit != 0 {
                return false; // a repeat
            }
            *w |= bit;
        }
        lo += PASS;
    }
    // n values, all below n, no repeat: each of 0..n exactly once.
    true
}

#[cfg(test)]
mod tests {
    use super::is_permutation;

    #[test]
    fn permutations_are_told_from_everything_else() {
        assert!(is_permutation(&[]));
        assert!(is_permutation(&[0]));
        assert!(is_permutation(&[2, 0, 1]));
        assert!(!is_permutation(&[0, 0, 1]));
        assert!(!is_permutation(&[0, 3, 1]));
        // Across pass boundaries (1024 values a pass): a reversal of 0..3000 is
        // one; a repeat in the third block, or a value past the end, is not.
        let mut p: std::vec::Vec<u16> = (0..3000u16).rev().collect();
        assert!(is_permutation(&p));
        p[5] = 2500;
        assert!(!is_permutation(&p));
        p[5] = 3000;
        assert!(!is_permutation(&p));
        // A repeat of the last value of a block and of the first of the next.
        let mut p: std::vec::Vec<u16> = (0..2048u16).collect();
        p[0] = 1023;
        assert!(!is_permutation(&p));
        p[0] = 1024;
        assert!(!is_permutation(&p));
    }
}
