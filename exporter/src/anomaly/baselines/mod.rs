//! The anomaly detectors people deploy on microcontrollers today, for comparison
//! with a flow on the same rows: a full-covariance Gaussian mixture (what emlearn
//! ships) and an isolation forest (Liu, Ting & Zhou 2008). Both score "higher =
//! more anomalous". Written here in plain f64 Rust: the maintained crates that
//! offer them (linfa) pull in an ndarray/LAPACK stack the exporter does not
//! otherwise need.

mod forest;
mod gmm;

pub use forest::IsolationForest;
pub use gmm::Gmm;

/// Row `i` of row-major `n x d` rows.
fn row(x: &[f64], d: usize, i: usize) -> &[f64] {
    &x[i * d..(i + 1) * d]
}
