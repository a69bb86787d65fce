//! The samplers in distribution: the diagonal-normal base's location and
//! scale, the Student-t base's degrees of freedom, and a model's samples mapped
//! to the latent by the float64 reference of docs/FORMAT.md (not by the
//! runtime) — each against its distribution with a 4-standard-error tolerance.

mod common;

use common::{encode, encode_lin, reference_lin, vector, Lin, LinModel};
use floe_fuzz_checks::Aligned;
use floe_runtime::format::BaseKind;
use floe_runtime::Model;

/// `n` samples of a model (row-major).
fn draw(file: &[u8], n: usize, seed: u64) -> Vec<f32> {
    let buf = Aligned::new(file);
    let model = Model::load(buf.bytes()).expect("loads");
    let d = model.dim();
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut rng = floe_runtime::Rng::new(seed);
    let mut out = vec![0.0f32; n * d];
    for row in out.chunks_exact_mut(d) {
        let lp = model.sample(&mut rng, &[], row, &mut scratch).expect("sample");
        assert!(lp.is_finite());
    }
    out
}

fn column(x: &[f32], d: usize, j: usize) -> Vec<f64> {
    x.chunks_exact(d).map(|r| r[j] as f64).collect()
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0))
}

/// The diagonal-normal base samples at its location and scale: each
/// coordinate's mean within 4 standard errors of `loc`, its standard deviation
/// within 4 standard errors of `e^log_scale`.
#[test]
fn diagonal_normal_samples_have_the_base_location_and_scale() {
    let m = LinModel {
        d: 3,
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        base: Some((vec![-1.5, 0.0, 2.0], vec![-1.0, 0.0, 0.7])),
        layers: vec![],
        x: vec![0.0; 3],
    };
    let n = 20_000;
    let x = draw(&encode_lin(&m), n, 11);
    let (loc, ls) = m.base.as_ref().expect("base");
    for j in 0..3 {
        let (mean, var) = mean_var(&column(&x, 3, j));
        let sigma = (ls[j] as f64).exp();
        let se = sigma / (n as f64).sqrt();
        assert!((mean - loc[j] as f64).abs() <= 4.0 * se, "coordinate {j}: mean {mean}, loc {}", loc[j]);
        assert!(
            (var.sqrt() - sigma).abs() <= 4.0 * sigma / (2.0 * n as f64).sqrt(),
            "coordinate {j}: std {} vs {sigma}",
            var.sqrt()
        );
    }
}

/// `P(|T| ≤ a)` of a Student-t with `nu` degrees of freedom, by Simpson's rule
/// on `t = √ν tan θ` (density ∝ cos^(ν−1) θ), no special functions needed.
fn student_t_central(nu: f64, a: f64) -> f64 {
    let integral = |hi: f64| {
        let n = 20_000;
        let h = hi / n as f64;
        let f = |t: f64| t.cos().powf(nu - 1.0);
        (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                w * f(i as f64 * h)
            })
            .sum::<f64>()
            * h
            / 3.0
    };
    integral((a / nu.sqrt()).atan()) / integral(std::f64::consts::FRAC_PI_2)
}

/// The Student-t base draws with its degrees of freedom: the share of samples
/// within ±1 and ±3 matches the distribution's, within 4 standard errors, for
/// heavy (ν = 2.5) to near-normal (ν = 30) tails.
#[test]
fn student_t_samples_have_the_base_degrees_of_freedom() {
    let df = [2.5f32, 6.0, 30.0];
    let (mean, std) = (vec![0.0f32; 3], vec![1.0f32; 3]);
    let tensors = [vector(&mean), vector(&std), vector(&[]), vector(&[]), vector(&df)];
    let file = encode(3, BaseKind::StudentT, &[], &tensors);
    let n = 20_000;
    let x = draw(&file, n, 5);
    for (j, nu) in df.iter().enumerate() {
        let col = column(&x, 3, j);
        for a in [1.0, 3.0] {
            let p = student_t_central(*nu as f64, a);
            let got = col.iter().filter(|v| v.abs() <= a).count() as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((got - p).abs() <= 4.0 * se, "ν = {nu}, |t| ≤ {a}: {got:.4} of the samples, {p:.4} expected");
        }
    }
    // The check tells degrees of freedom apart: ν = 2.5 and ν = 30 differ by
    // far more than the tolerance within ±1.
    assert!((student_t_central(2.5, 1.0) - student_t_central(30.0, 1.0)).abs() > 0.05);
}

/// A model's samples, mapped to the latent by the float64 reference of the
/// spec (not by the runtime), are standard normal: zero mean, unit variance,
/// uncorrelated — for a chain of LU, permutation, reversal and ActNorm layers
/// with a standardization.
#[test]
fn linear_model_samples_map_to_a_standard_normal_latent() {
    let d = 3;
    let m = LinModel {
        d,
        mean: vec![1.0, -2.0, 0.5],
        std: vec![0.5, 2.0, 1.5],
        base: None,
        layers: vec![
            Lin::Lu(vec![0.0, 0.4, -0.3, 0.5, 0.0, 0.2, -0.6, 0.3, 0.0], vec![0.3, -0.2, 0.1], vec![0.5, -0.5, 0.2]),
            Lin::Permute(vec![2, 0, 1]),
            Lin::ActNorm(vec![0.2, -0.4, 0.1], vec![-0.3, 0.1, 0.6]),
            Lin::Reverse,
        ],
        x: vec![0.0; d],
    };
    let n = 20_000;
    let x = draw(&encode_lin(&m), n, 23);
    let z: Vec<Vec<f64>> =
        x.chunks_exact(d).map(|row| reference_lin(&LinModel { x: row.to_vec(), ..m.clone() }).0).collect();
    let se = 1.0 / (n as f64).sqrt();
    for j in 0..d {
        let col: Vec<f64> = z.iter().map(|r| r[j]).collect();
        let (mean, var) = mean_var(&col);
        assert!(mean.abs() <= 4.0 * se, "latent {j}: mean {mean}");
        assert!((var - 1.0).abs() <= 4.0 * (2.0f64).sqrt() * se, "latent {j}: variance {var}");
        for k in 0..j {
            let cov = z.iter().map(|r| r[j] * r[k]).sum::<f64>() / n as f64;
            assert!(cov.abs() <= 4.0 * se, "latents {k}, {j}: covariance {cov}");
        }
    }
}
