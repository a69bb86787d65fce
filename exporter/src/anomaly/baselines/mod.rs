//! The anomaly detectors people deploy on microcontrollers today, for comparison
//! with a flow on the same rows: a full-covariance Gaussian mixture (what emlearn
//! ships) and an isolation forest (Liu, Ting & Zhou 2008). Both score "higher =
//! more anomalous". Written here in plain f64 Rust: the maintained crates that
//! offer them (linfa) pull in an ndarray/LAPACK stack the exporter does not
//! otherwise need.

mod forest;
mod gmm;

pub use forest::IsolationForest;
pub use gmm::{Gmm, WhitenedMixture};

/// Row `i` of row-major `n x d` rows.
fn row(x: &[f64], d: usize, i: usize) -> &[f64] {
    &x[i * d..(i + 1) * d]
}

/// `n` points uniform on the square of side 2 around `center`, seeded.
#[cfg(test)]
fn blob(n: usize, center: [f64; 2], seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).flat_map(|_| [center[0] + rng.gen_range(-1.0..1.0), center[1] + rng.gen_range(-1.0..1.0)]).collect()
}
