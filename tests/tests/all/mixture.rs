//! The mixture-of-normals base: the runtime's log-density equals the formula in
//! float64, sampling draws from it (component shares, means, spreads), malformed
//! parameters are refused at load, and trained flows with it match Burn.

use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::AlignedBytes;
use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
use floe_runtime::format::{BaseKind, MAX_COMPONENTS};
use floe_runtime::{Error, Model, Rng};

/// A tensor and its shape.
pub(crate) type T<'a> = (&'a [f32], u32, u32);

/// A file of a base alone (no layers, identity standardization) over `d` dims:
/// the given base tensors, in order, under `kind`.
pub(crate) fn base_file(kind: BaseKind, base: &[T], d: usize) -> Vec<u8> {
    let zeros = vec![0.0f32; d];
    let ones = vec![1.0f32; d];
    fn t<'a>((v, rows, cols): T<'a>) -> TensorRef<'a> {
        TensorRef { rows, cols, data: TensorData::F32(v) }
    }
    let mut tensors = vec![t((&zeros, d as u32, 1)), t((&ones, d as u32, 1)), t((&[], 0, 1)), t((&[], 0, 1))];
    tensors.extend(base.iter().map(|&b| t(b)));
    let contents = Contents {
        dim: d as u16,
        context_dim: 0,
        base: kind,
        scratch_len: 2 * d as u32,
        anomaly: None,
        stream: None,
        alarm: None,
        trajectory: None,
        layers: &[],
        tensors: &tensors,
    };
    let mut out = vec![0u8; contents.encoded_len().expect("plan")];
    contents.encode(&mut out).expect("encode");
    out
}

/// A file of a diagonal mixture base alone over `d` dims.
fn mixture_file(logits: T, loc: T, log_scale: T, d: usize) -> Vec<u8> {
    base_file(BaseKind::Mixture, &[logits, loc, log_scale], d)
}

/// log Σ e^v in float64 (the references' log-sum-exp).
pub(crate) fn lse(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
}

/// The mixture density in float64, straight from docs/FORMAT.md.
fn reference(x: &[f32], logits: &[f32], loc: &[f32], log_scale: &[f32]) -> f64 {
    let d = x.len();
    let w: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let norm = lse(&w);
    let comps: Vec<f64> = (0..logits.len())
        .map(|k| {
            let mut c = w[k] - norm;
            for j in 0..d {
                let (m, l) = (loc[k * d + j] as f64, log_scale[k * d + j] as f64);
                let u = (x[j] as f64 - m) / l.exp();
                c += -0.5 * u * u - l - 0.5 * (2.0 * std::f64::consts::PI).ln();
            }
            c
        })
        .collect();
    lse(&comps)
}

const LOGITS: [f32; 3] = [0.0, 0.847_298, -0.5]; // weights ≈ 0.27, 0.63, 0.10
const LOC: [f32; 6] = [-4.0, 0.0, 3.0, 1.0, 0.5, 6.0];
const LOG_SCALE: [f32; 6] = [0.0, -0.5, 0.3, 0.0, -1.0, 0.2];

fn good() -> Vec<u8> {
    mixture_file((&LOGITS, 3, 1), (&LOC, 3, 2), (&LOG_SCALE, 3, 2), 2)
}

#[test]
fn mixture_log_density_equals_the_formula() {
    let b = AlignedBytes::new(&good());
    let m = Model::load(&b).expect("loads");
    assert_eq!(m.base_kind(), BaseKind::Mixture);
    let mut s = vec![0.0f32; m.scratch_len()];
    let mut worst = 0.0f64;
    for i in -20..=20 {
        for j in -20..=20 {
            let x = [i as f32 * 0.6, j as f32 * 0.45];
            let got = m.log_prob(&x, &[], &mut s).unwrap() as f64;
            let want = reference(&x, &LOGITS, &LOC, &LOG_SCALE);
            worst = worst.max((got - want).abs() / (1.0 + want.abs()));
        }
    }
    assert!(worst < 2e-6, "relative error {worst:.2e}");
    // Far from every component: no overflow to NaN, a finite (very low) density.
    let far = m.log_prob(&[1e6, -1e6], &[], &mut s).unwrap();
    assert!(far.is_finite() && far < -1e11, "{far}");
}

#[test]
fn mixture_samples_follow_the_mixture() {
    let b = AlignedBytes::new(&good());
    let m = Model::load(&b).unwrap();
    let mut s = vec![0.0f32; m.scratch_len()];
    let mut rng = Rng::new(11);
    let n = 30_000usize;
    let w: Vec<f64> = {
        let e: Vec<f64> = LOGITS.iter().map(|&v| (v as f64).exp()).collect();
        let t: f64 = e.iter().sum();
        e.iter().map(|v| v / t).collect()
    };
    // Assign each draw to the component whose mean is nearest in units of its
    // scale (the components are far apart): shares, means and spreads.
    let mut count = [0usize; 3];
    let mut sum = [[0.0f64; 2]; 3];
    let mut sq = [[0.0f64; 2]; 3];
    for _ in 0..n {
        let mut x = [0.0f32; 2];
        let lp = m.sample(&mut rng, &[], &mut x, &mut s).unwrap();
        let again = m.log_prob(&x, &[], &mut s).unwrap();
        assert!((lp - again).abs() <= 1e-5 * (1.0 + lp.abs()), "{lp} vs {again}");
        let k = (0..3)
            .min_by(|&a, &b| {
                let dist = |k: usize| {
                    (0..2).map(|j| ((x[j] - LOC[k * 2 + j]) / LOG_SCALE[k * 2 + j].exp()).powi(2)).sum::<f32>()
                };
                dist(a).total_cmp(&dist(b))
            })
            .unwrap();
        count[k] += 1;
        for j in 0..2 {
            sum[k][j] += x[j] as f64;
            sq[k][j] += (x[j] as f64).powi(2);
        }
    }
    for k in 0..3 {
        let p = count[k] as f64 / n as f64;
        let se = (w[k] * (1.0 - w[k]) / n as f64).sqrt();
        assert!((p - w[k]).abs() < 4.0 * se, "component {k}: share {p:.4} vs {:.4}", w[k]);
        for j in 0..2 {
            let mean = sum[k][j] / count[k] as f64;
            let sd = (sq[k][j] / count[k] as f64 - mean * mean).sqrt();
            let want_sd = (LOG_SCALE[k * 2 + j] as f64).exp();
            let se_mean = want_sd / (count[k] as f64).sqrt();
            assert!((mean - LOC[k * 2 + j] as f64).abs() < 5.0 * se_mean, "component {k} dim {j}: mean {mean}");
            assert!((sd / want_sd - 1.0).abs() < 0.05, "component {k} dim {j}: sd {sd} vs {want_sd}");
        }
    }
    // Seeded: the same seed, the same draws.
    let draw = |seed| {
        let mut r = Rng::new(seed);
        let mut x = [0.0f32; 2];
        let mut s = vec![0.0f32; m.scratch_len()];
        m.sample(&mut r, &[], &mut x, &mut s).unwrap();
        x
    };
    assert_eq!(draw(3), draw(3));
}

#[test]
fn malformed_mixture_parameters_are_refused() {
    let many = vec![0.0f32; (MAX_COMPONENTS + 1) * 2];
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        ("no component", mixture_file((&[], 0, 1), (&[], 0, 2), (&[], 0, 2), 2), Error::InvalidBase),
        (
            "65 components",
            mixture_file((&many[..MAX_COMPONENTS + 1], 65, 1), (&many, 65, 2), (&many, 65, 2), 2),
            Error::InvalidBase,
        ),
        ("logits as a matrix", mixture_file((&LOC, 3, 2), (&LOC, 3, 2), (&LOG_SCALE, 3, 2), 2), Error::BadTensor(4)),
        (
            "means for two components",
            mixture_file((&LOGITS, 3, 1), (&LOC[..4], 2, 2), (&LOG_SCALE, 3, 2), 2),
            Error::BadTensor(5),
        ),
        (
            "scales of the wrong width",
            mixture_file((&LOGITS, 3, 1), (&LOC, 3, 2), (&LOG_SCALE, 2, 3), 2),
            Error::BadTensor(6),
        ),
    ];
    for (what, file, want) in cases {
        assert_eq!(Model::load(&AlignedBytes::new(&file)).err(), Some(want), "{what}");
    }
    // A non-finite mean: every f32 in a file is finite, the base's too.
    let mut loc = LOC;
    loc[3] = f32::NAN;
    let file = mixture_file((&LOGITS, 3, 1), (&loc, 3, 2), (&LOG_SCALE, 3, 2), 2);
    let got = Model::load(&AlignedBytes::new(&file)).err();
    assert_eq!(got, Some(Error::NonFiniteWeight(5)));
}

#[test]
fn an_int8_flow_keeps_its_mixture_base() {
    use floe_exporter::quant::{quantize, QuantConfig};
    use floe_runtime::format::Precision;
    for base in [BaseKind::Mixture, BaseKind::FullMixture] {
        let mut cfg = floe_tests::config(TransformKind::SplineCoupling, 3, 0);
        cfg.base = base;
        cfg.components = 4;
        let (flow, xs, cs) = floe_tests::random_flow(&cfg, 13);
        let frozen = flow.frozen(&xs, &cs).unwrap();
        let u = floe_tests::rows(256, 3, 1.0, 14);
        let x: Vec<f32> = u.iter().enumerate().map(|(k, v)| v * xs.std[k % 3] + xs.mean[k % 3]).collect();
        let rows = floe_exporter::data::Rows::new(3, x);
        let q = quantize(&frozen, QuantConfig { precision: Precision::Int8, max_layer_cost: 1.0 }, &rows, &rows, &rows)
            .expect("quantize");
        let file = AlignedBytes::new(&q.model.to_bytes().unwrap());
        let m = Model::load(&file).unwrap();
        assert_eq!(m.base_kind(), base);
        let f32_file = AlignedBytes::new(&frozen.to_bytes().unwrap());
        let mf = Model::load(&f32_file).unwrap();
        let mut s = vec![0.0f32; mf.scratch_len().max(m.scratch_len())];
        let mut worst = 0.0f32;
        for r in 0..rows.n() {
            let a = m.log_prob(rows.x_row(r), &[], &mut s).unwrap();
            let b = mf.log_prob(rows.x_row(r), &[], &mut s).unwrap();
            worst = worst.max((a - b).abs());
        }
        assert!(worst < 0.5, "{base:?}: int8 vs f32: max |Δ log p| {worst}");
    }
}
