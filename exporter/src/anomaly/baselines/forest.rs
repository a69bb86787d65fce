//! An isolation forest (Liu, Ting & Zhou 2008).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::row;

/// A node of an isolation tree.
#[derive(Debug, Clone)]
enum Node {
    Split { dim: usize, at: f64, left: Box<Node>, right: Box<Node> },
    Leaf { size: usize },
}

/// Average path length of an unsuccessful search in a binary search tree of `n`
/// items (the normalizer of the isolation forest).
fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// An isolation forest: `trees` trees on sub-samples of `psi` rows.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    d: usize,
    psi: usize,
    trees: Vec<Node>,
}

impl IsolationForest {
    /// Fit (Liu et al.: 100 trees, ψ = 256, height limit ⌈log2 ψ⌉).
    pub fn fit(x: &[f64], d: usize, trees: usize, psi: usize, seed: u64) -> IsolationForest {
        let n = x.len() / d;
        let psi = psi.min(n).max(2);
        let limit = (psi as f64).log2().ceil() as usize;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut idx: Vec<usize> = (0..n).collect();
        let trees = (0..trees)
            .map(|_| {
                idx.shuffle(&mut rng);
                let sample: Vec<usize> = idx[..psi].to_vec();
                Self::grow(x, d, &sample, 0, limit, &mut rng)
            })
            .collect();
        IsolationForest { d, psi, trees }
    }

    fn grow(x: &[f64], d: usize, rows: &[usize], depth: usize, limit: usize, rng: &mut impl Rng) -> Node {
        if depth >= limit || rows.len() <= 1 {
            return Node::Leaf { size: rows.len() };
        }
        // Dimensions with spread among these rows.
        let spread: Vec<(usize, f64, f64)> = (0..d)
            .filter_map(|j| {
                let lo = rows.iter().map(|&i| x[i * d + j]).fold(f64::INFINITY, f64::min);
                let hi = rows.iter().map(|&i| x[i * d + j]).fold(f64::NEG_INFINITY, f64::max);
                (hi > lo).then_some((j, lo, hi))
            })
            .collect();
        let Some(&(dim, lo, hi)) = spread.get(rng.gen_range(0..spread.len().max(1))) else {
            return Node::Leaf { size: rows.len() };
        };
        let at = rng.gen_range(lo..hi);
        let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&i| x[i * d + dim] < at);
        Node::Split {
            dim,
            at,
            left: Box::new(Self::grow(x, d, &l, depth + 1, limit, rng)),
            right: Box::new(Self::grow(x, d, &r, depth + 1, limit, rng)),
        }
    }

    fn path(node: &Node, x: &[f64], depth: usize) -> f64 {
        match node {
            Node::Leaf { size } => depth as f64 + c_factor(*size),
            Node::Split { dim, at, left, right } => Self::path(if x[*dim] < *at { left } else { right }, x, depth + 1),
        }
    }

    /// Anomaly scores `2^(-E[h(x)] / c(ψ))` in (0, 1]: higher = more anomalous.
    pub fn scores(&self, x: &[f64]) -> Vec<f64> {
        let c = c_factor(self.psi);
        (0..x.len() / self.d)
            .map(|i| {
                let r = row(x, self.d, i);
                let h = self.trees.iter().map(|t| Self::path(t, r, 0)).sum::<f64>() / self.trees.len() as f64;
                2f64.powf(-h / c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::blob;
    use super::*;

    #[test]
    fn isolation_forest_isolates_outliers_first() {
        let x = blob(500, [0.0, 0.0], 3);
        let f = IsolationForest::fit(&x, 2, 100, 256, 0);
        let s = f.scores(&[0.0, 0.0, 6.0, 6.0]);
        assert!(s[1] > 0.6 && s[0] < 0.5, "{s:?}");
    }
}
