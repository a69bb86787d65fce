//! Seeded train / validation / test splits.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{ConfigError, DataError, Result};

/// Train / validation / test row indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows (early stopping).
    pub val: Vec<usize>,
    /// Held-out test rows (reported, parity-checked).
    pub test: Vec<usize>,
}

/// A seeded shuffle split into train / val / test.
pub fn split(n: usize, val: f64, test: f64, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 0.9 {
        return Err(ConfigError::invalid(
            "val_fraction, test_fraction",
            "in [0, 1) with a sum below 0.9",
            format!("{val}, {test}"),
        )
        .into());
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_val = ((n as f64) * val).round() as usize;
    let n_test = ((n as f64) * test).round() as usize;
    if n < 10 || n_val == 0 || n_test == 0 {
        return Err(DataError::TooFewRows { rows: n }.into());
    }
    let test_idx = idx[..n_test].to_vec();
    let val_idx = idx[n_test..n_test + n_val].to_vec();
    let train = idx[n_test + n_val..].to_vec();
    Ok(Split { train, val: val_idx, test: test_idx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_and_disjoint() {
        let a = split(100, 0.15, 0.15, 3).unwrap();
        let b = split(100, 0.15, 0.15, 3).unwrap();
        assert_eq!(a, b);
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).chain(&a.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
