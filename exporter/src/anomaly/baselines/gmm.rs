//! A full-covariance Gaussian mixture fitted by EM, K chosen by BIC (what
//! emlearn ships to microcontrollers).

use rand::{Rng, SeedableRng};

use super::row;

/// One Gaussian component: weight, mean, Cholesky factor of the covariance.
#[derive(Debug, Clone)]
struct Component {
    log_weight: f64,
    mean: Vec<f64>,
    /// Lower-triangular `L` with `Σ = L Lᵀ`, row-major `d x d`.
    chol: Vec<f64>,
    /// `Σ log L_ii`.
    half_log_det: f64,
}

/// Cholesky factor of a symmetric positive-definite `d x d` matrix.
fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = a[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            if i == j {
                if !(s > 0.0) {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

impl Component {
    fn log_pdf(&self, x: &[f64]) -> f64 {
        let d = x.len();
        // Solve L z = (x - mean); log N = -½|z|² - Σ log L_ii - d/2 log 2π.
        let mut z = vec![0.0; d];
        for i in 0..d {
            let s: f64 = (x[i] - self.mean[i]) - (0..i).map(|k| self.chol[i * d + k] * z[k]).sum::<f64>();
            z[i] = s / self.chol[i * d + i];
        }
        -0.5 * z.iter().map(|v| v * v).sum::<f64>()
            - self.half_log_det
            - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
    }
}

/// A mixture's parameters in the runtime's full-covariance layout
/// ([`Gmm::whitened`]): `logits` (K), `loc`, `log_scale` (K × D, row-major) and
/// `lower` (K × D(D−1)/2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhitenedMixture {
    /// Log weights.
    pub logits: Vec<f32>,
    /// Means.
    pub loc: Vec<f32>,
    /// Minus the log of each whitening matrix's diagonal.
    pub log_scale: Vec<f32>,
    /// The whitening matrices' strictly lower triangles, packed row after row.
    pub lower: Vec<f32>,
}

/// A Gaussian mixture with full covariances, fitted by EM.
#[derive(Debug, Clone)]
pub struct Gmm {
    d: usize,
    comps: Vec<Component>,
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

impl Gmm {
    /// Fit `k` components to `x` (n x d) by EM (k-means++ start, at most 200
    /// iterations, covariance regularization `reg` on the diagonal).
    pub fn fit(x: &[f64], d: usize, k: usize, reg: f64, seed: u64) -> Gmm {
        let n = x.len() / d;
        let k = k.clamp(1, n.max(1));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // k-means++ seeding of the means.
        let mut means: Vec<Vec<f64>> = vec![row(x, d, rng.gen_range(0..n)).to_vec()];
        while means.len() < k {
            let dist: Vec<f64> = (0..n)
                .map(|i| {
                    means
                        .iter()
                        .map(|m| row(x, d, i).iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
                        .fold(f64::INFINITY, f64::min)
                })
                .collect();
            let total: f64 = dist.iter().sum();
            let mut u = rng.gen::<f64>() * total;
            let mut pick = n - 1;
            for (i, &w) in dist.iter().enumerate() {
                if u <= w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            means.push(row(x, d, pick).to_vec());
        }
        // Start: hard assignment to the nearest mean.
        let mut resp = vec![0.0; n * k];
        for i in 0..n {
            let best = (0..k)
                .min_by(|&a, &b| {
                    let da: f64 = row(x, d, i).iter().zip(&means[a]).map(|(p, q)| (p - q) * (p - q)).sum();
                    let db: f64 = row(x, d, i).iter().zip(&means[b]).map(|(p, q)| (p - q) * (p - q)).sum();
                    da.total_cmp(&db)
                })
                .unwrap_or(0);
            resp[i * k + best] = 1.0;
        }
        let mut gmm = Gmm { d, comps: Vec::new() };
        let mut last = f64::NEG_INFINITY;
        for _ in 0..200 {
            gmm.m_step(x, &resp, k, reg);
            // E step.
            let mut ll = 0.0;
            let mut lp = vec![0.0; k];
            for i in 0..n {
                for (j, c) in gmm.comps.iter().enumerate() {
                    lp[j] = c.log_weight + c.log_pdf(row(x, d, i));
                }
                let z = log_sum_exp(&lp);
                ll += z;
                for j in 0..k {
                    resp[i * k + j] = (lp[j] - z).exp();
                }
            }
            if (ll - last).abs() < 1e-6 * n as f64 {
                break;
            }
            last = ll;
        }
        gmm
    }

    fn m_step(&mut self, x: &[f64], resp: &[f64], k: usize, reg: f64) {
        let d = self.d;
        let n = x.len() / d;
        self.comps.clear();
        for j in 0..k {
            let nk: f64 = (0..n).map(|i| resp[i * k + j]).sum::<f64>() + 1e-10;
            let mean: Vec<f64> =
                (0..d).map(|a| (0..n).map(|i| resp[i * k + j] * x[i * d + a]).sum::<f64>() / nk).collect();
            let mut cov = vec![0.0; d * d];
            for i in 0..n {
                let r = resp[i * k + j];
                if r < 1e-12 {
                    continue;
                }
                let xi = row(x, d, i);
                for a in 0..d {
                    let da = xi[a] - mean[a];
                    for b in 0..=a {
                        cov[a * d + b] += r * da * (xi[b] - mean[b]);
                    }
                }
            }
            for a in 0..d {
                for b in 0..=a {
                    cov[a * d + b] /= nk;
                    cov[b * d + a] = cov[a * d + b];
                }
                cov[a * d + a] += reg;
            }
            let mut bump = reg;
            let mut chol = None;
            for _ in 0..24 {
                chol = cholesky(&cov, d);
                if chol.is_some() {
                    break;
                }
                for a in 0..d {
                    cov[a * d + a] += bump;
                }
                bump *= 10.0;
            }
            // A covariance no regularization repairs (non-finite data): the identity.
            let chol = chol.unwrap_or_else(|| {
                let mut l = vec![0.0; d * d];
                for a in 0..d {
                    l[a * d + a] = 1.0;
                }
                l
            });
            let half_log_det = (0..d).map(|a| chol[a * d + a].ln()).sum();
            self.comps.push(Component { log_weight: (nk / n as f64).ln(), mean, chol, half_log_det });
        }
    }

    /// Mean log-likelihood per row.
    pub fn mean_log_lik(&self, x: &[f64]) -> f64 {
        let n = x.len() / self.d;
        (0..n).map(|i| self.log_pdf(row(x, self.d, i))).sum::<f64>() / n as f64
    }

    /// `log p(x)` of one row.
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        let lp: Vec<f64> = self.comps.iter().map(|c| c.log_weight + c.log_pdf(x)).collect();
        log_sum_exp(&lp)
    }

    /// Free parameters (for BIC).
    pub fn n_params(&self) -> usize {
        let d = self.d;
        self.comps.len() * (d + d * (d + 1) / 2) + self.comps.len() - 1
    }

    /// Fit mixtures of each size in `ks` and keep the one with the lowest BIC.
    pub fn fit_bic(x: &[f64], d: usize, ks: &[usize], seed: u64) -> Gmm {
        let n = (x.len() / d) as f64;
        ks.iter()
            .map(|&k| Gmm::fit(x, d, k, 1e-6, seed))
            .min_by(|a, b| {
                let bic = |g: &Gmm| -2.0 * n * g.mean_log_lik(x) + g.n_params() as f64 * n.ln();
                bic(a).total_cmp(&bic(b))
            })
            .unwrap_or_else(|| Gmm::fit(x, d, 1, 1e-6, seed))
    }

    /// The mixture in the runtime's full-covariance layout (`BaseKind::FullMixture`,
    /// docs/FORMAT.md): each covariance `Σ = C Cᵀ` becomes its whitening matrix
    /// `W = C⁻¹` (lower triangular, `WᵀW = Σ⁻¹`), stored as `log_scale_i =
    /// −ln W_ii = ln C_ii` and W's strictly lower triangle, row after row. A
    /// floe file with this base and no layers is this GMM (for `d` ≥ 2: the
    /// runtime refuses a one-dimensional full-covariance mixture, which is a
    /// diagonal one).
    pub fn whitened(&self) -> WhitenedMixture {
        let d = self.d;
        let mut out = WhitenedMixture::default();
        for c in &self.comps {
            out.logits.push(c.log_weight as f32);
            out.loc.extend(c.mean.iter().map(|&v| v as f32));
            // W = C⁻¹, column by column: C w = e_col by forward substitution.
            let mut w = vec![0.0f64; d * d];
            for col in 0..d {
                for i in col..d {
                    let e = if i == col { 1.0 } else { 0.0 };
                    let s: f64 = e - (col..i).map(|m| c.chol[i * d + m] * w[m * d + col]).sum::<f64>();
                    w[i * d + col] = s / c.chol[i * d + i];
                }
            }
            out.log_scale.extend((0..d).map(|i| c.chol[i * d + i].ln() as f32));
            out.lower.extend((0..d).flat_map(|i| (0..i).map(move |j| (i, j))).map(|(i, j)| w[i * d + j] as f32));
        }
        out
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.comps.len()
    }

    /// Anomaly scores `-log p(x)` of rows.
    pub fn scores(&self, x: &[f64]) -> Vec<f64> {
        (0..x.len() / self.d).map(|i| -self.log_pdf(row(x, self.d, i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::blob;
    use super::*;

    #[test]
    fn gmm_finds_two_clusters_and_scores_outliers_high() {
        let mut x = blob(300, [-5.0, 0.0], 1);
        x.extend(blob(300, [5.0, 0.0], 2));
        let g = Gmm::fit_bic(&x, 2, &[1, 2, 3, 4], 0);
        assert!(g.k() >= 2, "BIC chose {} components", g.k());
        let s = g.scores(&[-5.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 8.0]);
        assert!(s[2] > s[0] + 5.0 && s[3] > s[1] + 5.0, "{s:?}");
    }

    #[test]
    fn cholesky_reproduces_the_matrix() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let l = cholesky(&a, 2).unwrap();
        let back = [l[0] * l[0], l[0] * l[2], l[2] * l[0], l[2] * l[2] + l[3] * l[3]];
        assert!(back.iter().zip(a).all(|(p, q)| (p - q).abs() < 1e-12));
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
