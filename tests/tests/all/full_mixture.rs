//! The full-covariance mixture base (`BaseKind::FullMixture`): the runtime's
//! log-density equals the Gaussian mixture's in float64 (precision matrices
//! built from the packed whitening matrices, determinants by Cholesky),
//! sampling draws each component's covariance, malformed parameters are refused
//! at load, an EM-fitted GMM is carried into a file exactly, and flows with it
//! match Burn (int8: `mixture::an_int8_flow_keeps_its_mixture_base`).

use floe_exporter::anomaly::baselines::Gmm;
use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::AlignedBytes;
use floe_runtime::format::BaseKind;
use floe_runtime::{Error, Model, Rng};

use crate::mixture::{base_file, lse, T};

// Two components in 4-D with strong correlations, far apart. Four dimensions,
// so that the packing order matters: row after row, (1,0), (2,0), (2,1), (3,0),
// (3,1), (3,2), is not column after column, (1,0), (2,0), (3,0), (2,1), …
const LOGITS: [f32; 2] = [0.0, core::f32::consts::LN_2]; // weights 1/3, 2/3
const LOC: [f32; 8] = [-6.0, 0.0, 2.0, 1.0, 5.0, 1.0, -3.0, -1.0];
const LOG_SCALE: [f32; 8] = [0.0, -0.4, 0.3, 0.1, 0.2, 0.0, -0.7, 0.4];
const LOWER: [f32; 12] = [0.9, -0.5, 1.2, 0.4, -0.8, 0.7, -1.1, 0.3, 0.6, 0.5, -0.2, 1.0];
const D: usize = 4;

fn good() -> Vec<u8> {
    base_file(BaseKind::FullMixture, &[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4), (&LOWER, 2, 6)], D)
}

/// Component k's whitening matrix W (row-major d × d, float64), read as
/// docs/FORMAT.md defines it: diagonal e^{−log_scale}, row i's entries j < i
/// from `lower`, packed row after row.
fn whitening(k: usize, d: usize, log_scale: &[f32], lower: &[f32]) -> Vec<f64> {
    let tri = d * (d - 1) / 2;
    let mut w = vec![0.0f64; d * d];
    let mut at = k * tri;
    for i in 0..d {
        w[i * d + i] = (-(log_scale[k * d + i] as f64)).exp();
        for j in 0..i {
            w[i * d + j] = lower[at] as f64;
            at += 1;
        }
    }
    w
}

/// `P = WᵀW`.
fn precision(w: &[f64], d: usize) -> Vec<f64> {
    let mut p = vec![0.0; d * d];
    for a in 0..d {
        for b in 0..d {
            p[a * d + b] = (0..d).map(|i| w[i * d + a] * w[i * d + b]).sum();
        }
    }
    p
}

/// `ln det` of a symmetric positive-definite matrix, by Cholesky.
fn log_det_spd(a: &[f64], d: usize) -> f64 {
    let mut l = vec![0.0f64; d * d];
    let mut ld = 0.0;
    for i in 0..d {
        for j in 0..=i {
            let s = a[i * d + j] - (0..j).map(|m| l[i * d + m] * l[j * d + m]).sum::<f64>();
            if i == j {
                assert!(s > 0.0, "not positive definite");
                l[i * d + i] = s.sqrt();
                ld += 2.0 * l[i * d + i].ln();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    ld
}

/// The covariance `(WᵀW)⁻¹ = V Vᵀ` with `V = W⁻¹` (lower triangular, column by
/// column: `W v = e_c` by forward substitution).
fn covariance(w: &[f64], d: usize) -> Vec<f64> {
    let mut v = vec![0.0f64; d * d];
    for c in 0..d {
        for i in c..d {
            let e = if i == c { 1.0 } else { 0.0 };
            v[i * d + c] = (e - (c..i).map(|m| w[i * d + m] * v[m * d + c]).sum::<f64>()) / w[i * d + i];
        }
    }
    let mut s = vec![0.0f64; d * d];
    for a in 0..d {
        for b in 0..d {
            s[a * d + b] = (0..d).map(|m| v[a * d + m] * v[b * d + m]).sum();
        }
    }
    s
}

/// The mixture density in float64: Σ_k softmax(w)_k N(x; μ_k, P_k⁻¹), with
/// `N = ½ ln det P − ½ (x−μ)ᵀP(x−μ) − D/2 ln 2π`.
fn reference(x: &[f32], logits: &[f32], loc: &[f32], log_scale: &[f32], lower: &[f32]) -> f64 {
    let d = x.len();
    let w: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let norm = lse(&w);
    let comps: Vec<f64> = (0..logits.len())
        .map(|k| {
            let p = precision(&whitening(k, d, log_scale, lower), d);
            let r: Vec<f64> = (0..d).map(|j| x[j] as f64 - loc[k * d + j] as f64).collect();
            let q: f64 = (0..d).map(|a| (0..d).map(|b| r[a] * p[a * d + b] * r[b]).sum::<f64>()).sum();
            w[k] - norm + 0.5 * log_det_spd(&p, d) - 0.5 * q - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
        })
        .collect();
    lse(&comps)
}

#[test]
fn full_mixture_log_density_equals_the_formula() {
    let b = AlignedBytes::new(&good());
    let m = Model::load(&b).expect("loads");
    assert_eq!(m.base_kind(), BaseKind::FullMixture);
    let mut s = vec![0.0f32; m.scratch_len()];
    let mut worst = 0.0f64;
    for i in -8..=8 {
        for j in -6..=6 {
            for l in -4..=4 {
                for q in -3..=3 {
                    let x = [i as f32 * 1.2, j as f32 * 0.7, l as f32 * 1.1, q as f32 * 0.9];
                    let got = m.log_prob(&x, &[], &mut s).unwrap() as f64;
                    let want = reference(&x, &LOGITS, &LOC, &LOG_SCALE, &LOWER);
                    worst = worst.max((got - want).abs() / (1.0 + want.abs()));
                }
            }
        }
    }
    assert!(worst < 2e-6, "relative error {worst:.2e}");
    let far = m.log_prob(&[1e6, -1e6, 3e5, 2e5], &[], &mut s).unwrap();
    assert!(far.is_finite() && far < -1e11, "{far}");
    // With L = 0 it is the diagonal mixture, bit for bit.
    let zero = [0.0f32; 12];
    let full0 = AlignedBytes::new(&base_file(
        BaseKind::FullMixture,
        &[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4), (&zero, 2, 6)],
        D,
    ));
    let diag =
        AlignedBytes::new(&base_file(BaseKind::Mixture, &[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4)], D));
    let (a, b) = (Model::load(&full0).unwrap(), Model::load(&diag).unwrap());
    for x in [[0.0f32, 0.0, 0.0, 0.0], [-6.5, 0.3, 2.2, 0.7], [5.0, 1.5, -2.0, -1.2]] {
        assert_eq!(a.log_prob(&x, &[], &mut s).unwrap().to_bits(), b.log_prob(&x, &[], &mut s).unwrap().to_bits());
    }
}

#[test]
fn full_mixture_samples_have_each_components_covariance() {
    let b = AlignedBytes::new(&good());
    let m = Model::load(&b).unwrap();
    let mut s = vec![0.0f32; m.scratch_len()];
    let (d, n) = (D, 40_000usize);
    let mut rng = Rng::new(5);
    let covs: Vec<Vec<f64>> = (0..2).map(|k| covariance(&whitening(k, d, &LOG_SCALE, &LOWER), d)).collect();
    let mut draws: [Vec<[f64; D]>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..n {
        let mut x = [0.0f32; D];
        let lp = m.sample(&mut rng, &[], &mut x, &mut s).unwrap();
        let again = m.log_prob(&x, &[], &mut s).unwrap();
        assert!((lp - again).abs() <= 1e-5 * (1.0 + lp.abs()), "{lp} vs {again}");
        // The components are far apart along the first axis.
        let k = usize::from(x[0] > -0.5);
        draws[k].push(x.map(f64::from));
    }
    let share = draws[1].len() as f64 / n as f64;
    let se = (2.0 / 9.0 / n as f64).sqrt();
    assert!((share - 2.0 / 3.0).abs() < 4.0 * se, "share {share}");
    for k in 0..2 {
        let c = draws[k].len() as f64;
        let mean: Vec<f64> = (0..d).map(|j| draws[k].iter().map(|x| x[j]).sum::<f64>() / c).collect();
        for j in 0..d {
            let se = (covs[k][j * d + j] / c).sqrt();
            assert!((mean[j] - LOC[k * d + j] as f64).abs() < 5.0 * se, "component {k} mean {j}: {}", mean[j]);
        }
        for a in 0..d {
            for bb in 0..d {
                let got = draws[k].iter().map(|x| (x[a] - mean[a]) * (x[bb] - mean[bb])).sum::<f64>() / (c - 1.0);
                let want = covs[k][a * d + bb];
                let scale = (covs[k][a * d + a] * covs[k][bb * d + bb]).sqrt();
                assert!((got - want).abs() < 0.05 * scale, "component {k} cov[{a}][{bb}]: {got:.4} vs {want:.4}");
            }
        }
    }
    let draw = |seed| {
        let mut r = Rng::new(seed);
        let mut x = [0.0f32; D];
        let mut s = vec![0.0f32; m.scratch_len()];
        m.sample(&mut r, &[], &mut x, &mut s).unwrap();
        x
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn malformed_full_mixture_parameters_are_refused() {
    let full = |ts: &[T], d| base_file(BaseKind::FullMixture, ts, d);
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        (
            "one dimension",
            full(&[(&LOGITS, 2, 1), (&LOC[..2], 2, 1), (&LOG_SCALE[..2], 2, 1), (&[], 0, 1)], 1),
            Error::InvalidBase,
        ),
        ("no component", full(&[(&[], 0, 1), (&[], 0, 1), (&[], 0, 1), (&[], 0, 1)], D), Error::InvalidBase),
        (
            "lower of the wrong width",
            full(&[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4), (&LOC, 4, 2)], D),
            Error::BadTensor(7),
        ),
        (
            "lower for one component",
            full(&[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4), (&LOWER[..6], 1, 6)], D),
            Error::BadTensor(7),
        ),
    ];
    for (what, file, want) in cases {
        assert_eq!(Model::load(&AlignedBytes::new(&file)).err(), Some(want), "{what}");
    }
    // The lower triangle missing: a diagonal mixture's file relabelled as a full
    // one (CRC fixed); the header's tensor count is not the base's.
    let mut short = base_file(BaseKind::Mixture, &[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4)], D);
    short[22..24].copy_from_slice(&(BaseKind::FullMixture as u16).to_le_bytes());
    let n = short.len();
    let crc = floe_runtime::format::crc32(&short[..n - 4]);
    short[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Model::load(&AlignedBytes::new(&short)).err(), Some(Error::BadHeader), "three tensors");
    let mut lower = LOWER;
    lower[4] = f32::INFINITY;
    let file = full(&[(&LOGITS, 2, 1), (&LOC, 2, 4), (&LOG_SCALE, 2, 4), (&lower, 2, 6)], D);
    assert_eq!(Model::load(&AlignedBytes::new(&file)).err(), Some(Error::NonFiniteWeight(7)));
}

#[test]
fn an_em_fitted_gmm_is_carried_into_a_file_exactly() {
    // Three correlated clusters in 4-D; EM with K = 3, full covariances.
    let d = 4;
    let mut rng = Rng::new(17);
    let mut x = Vec::new();
    for (c, centre) in [[-4.0, 0.0, 1.0, 2.0], [3.0, 3.0, -1.0, 0.0], [0.0, -4.0, 2.0, -2.0]].iter().enumerate() {
        for _ in 0..400 {
            let e: Vec<f64> = (0..d).map(|_| rng.normal() as f64).collect();
            // A different shear per cluster.
            let s = 0.5 + 0.4 * c as f64;
            x.extend([
                centre[0] + e[0],
                centre[1] + s * e[0] + 0.5 * e[1],
                centre[2] - s * e[1] + 0.3 * e[2],
                centre[3] + 0.7 * e[2] - s * e[0] + 0.4 * e[3],
            ]);
        }
    }
    let g = Gmm::fit(&x, d, 3, 1e-6, 2);
    let w = g.whitened();
    let k = g.k() as u32;
    let tri = (d * (d - 1) / 2) as u32;
    let file = AlignedBytes::new(&base_file(
        BaseKind::FullMixture,
        &[(&w.logits, k, 1), (&w.loc, k, d as u32), (&w.log_scale, k, d as u32), (&w.lower, k, tri)],
        d,
    ));
    let m = Model::load(&file).expect("the GMM as a file");
    let mut s = vec![0.0f32; m.scratch_len()];
    let mut worst = 0.0f64;
    for row in x.chunks(d).step_by(7) {
        let xf: Vec<f32> = row.iter().map(|&v| v as f32).collect();
        let xr: Vec<f64> = xf.iter().map(|&v| v as f64).collect();
        let got = m.log_prob(&xf, &[], &mut s).unwrap() as f64;
        worst = worst.max((got - g.log_pdf(&xr)).abs());
    }
    assert!(worst < 1e-4, "runtime vs EM's log p: max |diff| {worst:.2e}");
}

#[test]
fn full_mixture_flows_match_burn() {
    // Burn ↔ runtime on perturbed (so L ≠ 0) flows: several K, D, with context.
    for (t, components, dim, cdim) in [
        (TransformKind::AffineCoupling, 1, 3, 0),
        (TransformKind::SplineCoupling, 6, 5, 0),
        (TransformKind::Linear, 3, 4, 0),
        (TransformKind::AffineCoupling, 4, 3, 2),
    ] {
        let mut cfg = floe_tests::config(t, dim, cdim);
        cfg.base = BaseKind::FullMixture;
        cfg.components = components;
        let e = crate::parity::check(&cfg, 21);
        println!("full mixture of {components} in {dim} dims, {t:?}, context {cdim}: max |diff| {e:.2e}");
    }
}
