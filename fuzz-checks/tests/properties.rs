//! Property tests (proptest): the format's encoder and decoder against each
//! other and against independent float64 implementations of docs/FORMAT.md, and
//! the integer kernels against exact arithmetic. Each case is a model built
//! from random records and values through `floe_runtime::format::encode` — the
//! exporter's path — loaded back by `Model::load`.

use floe_fuzz_checks::{assert_canonical, Aligned};
use floe_runtime::exporter_hooks::scratch_len;
use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
use floe_runtime::format::{Activation, BaseKind, LayerKind, LayerRecord};
use floe_runtime::kernels::{dense_f32, quant};
use floe_runtime::Model;
use proptest::prelude::*;

/// A layer of a random linear model, with its values.
#[derive(Debug, Clone)]
enum Lin {
    /// Packed `lu` (D × D, zero diagonal), `log_diag`, `bias`.
    Lu(Vec<f32>, Vec<f32>, Vec<f32>),
    Permute(Vec<u16>),
    Reverse,
    /// `log_scale`, `shift`.
    ActNorm(Vec<f32>, Vec<f32>),
}

fn vals(n: usize, lo: f32, hi: f32) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(lo..hi, n)
}

fn layer(d: usize) -> impl Strategy<Value = Lin> {
    prop_oneof![
        (vals(d * d, -0.8, 0.8), vals(d, -0.7, 0.7), vals(d, -1.0, 1.0)).prop_map(move |(mut lu, ld, b)| {
            for k in 0..d {
                lu[k * d + k] = 0.0;
            }
            Lin::Lu(lu, ld, b)
        }),
        Just((0..d as u16).collect::<Vec<u16>>()).prop_shuffle().prop_map(Lin::Permute),
        Just(Lin::Reverse),
        (vals(d, -1.0, 1.0), vals(d, -1.0, 1.0)).prop_map(|(s, t)| Lin::ActNorm(s, t)),
    ]
}

/// A random linear model: D, standardization, a diagonal-normal base (or the
/// standard normal), layers, and an input.
#[derive(Debug, Clone)]
struct LinModel {
    d: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    base: Option<(Vec<f32>, Vec<f32>)>,
    layers: Vec<Lin>,
    x: Vec<f32>,
}

fn lin_model() -> impl Strategy<Value = LinModel> {
    (1usize..=8).prop_flat_map(|d| {
        (
            vals(d, -5.0, 5.0),
            vals(d, 0.2, 5.0),
            proptest::option::of((vals(d, -1.0, 1.0), vals(d, -1.0, 1.0))),
            proptest::collection::vec(layer(d), 0..=5),
            vals(d, -3.0, 3.0),
        )
            .prop_map(move |(mean, std, base, layers, u)| {
                let x = u.iter().zip(&mean).zip(&std).map(|((u, m), s)| m + u * s).collect();
                LinModel { d, mean, std, base, layers, x }
            })
    })
}

fn vector(v: &[f32]) -> TensorRef<'_> {
    TensorRef { rows: v.len() as u32, cols: 1, data: TensorData::F32(v) }
}

/// A file of these records and tensors (no context, no trailer layouts),
/// encoded as the exporter encodes.
fn encode(d: usize, base: BaseKind, records: &[LayerRecord], tensors: &[TensorRef<'_>]) -> Vec<u8> {
    let contents = Contents {
        dim: d as u16,
        context_dim: 0,
        base,
        scratch_len: scratch_len(d, 0, None, records) as u32,
        anomaly: None,
        stream: None,
        trajectory: None,
        layers: records,
        tensors,
    };
    let mut out = vec![0u8; contents.encoded_len().expect("plan")];
    contents.encode(&mut out).expect("encode");
    out
}

/// The file of a linear model, encoded as the exporter encodes.
fn encode_lin(m: &LinModel) -> Vec<u8> {
    let d = m.d;
    let mut tensors = vec![vector(&m.mean), vector(&m.std), vector(&[]), vector(&[])];
    let base = match &m.base {
        Some((loc, ls)) => {
            tensors.push(vector(loc));
            tensors.push(vector(ls));
            BaseKind::DiagNormal
        }
        None => BaseKind::StdNormal,
    };
    let mut records = Vec::new();
    for l in &m.layers {
        let first = tensors.len() as u32;
        let (kind, n) = match l {
            Lin::Lu(lu, ld, b) => {
                tensors.push(TensorRef { rows: d as u32, cols: d as u32, data: TensorData::F32(lu) });
                tensors.push(vector(ld));
                tensors.push(vector(b));
                (LayerKind::LuLinear, 3)
            }
            Lin::Permute(p) => {
                tensors.push(TensorRef { rows: d as u32, cols: 1, data: TensorData::U16(p) });
                (LayerKind::Permute, 1)
            }
            Lin::Reverse => (LayerKind::Reverse, 0),
            Lin::ActNorm(s, t) => {
                tensors.push(vector(s));
                tensors.push(vector(t));
                (LayerKind::ActNorm, 2)
            }
        };
        records.push(LayerRecord::plain(kind, first, n));
    }
    encode(d, base, &records, &tensors)
}

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// docs/FORMAT.md in float64: the latent and log p(x).
fn reference_lin(m: &LinModel) -> (Vec<f64>, f64) {
    let d = m.d;
    let mut z: Vec<f64> =
        m.x.iter().zip(&m.mean).zip(&m.std).map(|((x, mu), s)| (*x as f64 - *mu as f64) / *s as f64).collect();
    let mut logdet: f64 = -m.std.iter().map(|s| (*s as f64).ln()).sum::<f64>();
    for l in &m.layers {
        z = match l {
            Lin::Lu(lu, ld, b) => {
                // y = (U + diag(e^ld)) z, then L y (unit lower) + bias.
                let y: Vec<f64> = (0..d)
                    .map(|i| {
                        (ld[i] as f64).exp() * z[i] + ((i + 1)..d).map(|j| lu[i * d + j] as f64 * z[j]).sum::<f64>()
                    })
                    .collect();
                logdet += ld.iter().map(|v| *v as f64).sum::<f64>();
                (0..d).map(|i| y[i] + (0..i).map(|j| lu[i * d + j] as f64 * y[j]).sum::<f64>() + b[i] as f64).collect()
            }
            Lin::Permute(p) => p.iter().map(|&k| z[k as usize]).collect(),
            Lin::Reverse => (0..d).map(|i| z[d - 1 - i]).collect(),
            Lin::ActNorm(s, t) => {
                logdet += s.iter().map(|v| *v as f64).sum::<f64>();
                z.iter().zip(s).zip(t).map(|((z, s), t)| z * (*s as f64).exp() + *t as f64).collect()
            }
        };
    }
    let base: f64 = match &m.base {
        None => z.iter().map(|z| -0.5 * z * z - HALF_LN_2PI).sum(),
        Some((loc, ls)) => z
            .iter()
            .zip(loc)
            .zip(ls)
            .map(|((z, l), s)| {
                let e = (z - *l as f64) * (-(*s as f64)).exp();
                -0.5 * e * e - *s as f64 - HALF_LN_2PI
            })
            .sum(),
    };
    (z, base + logdet)
}

/// docs/FORMAT.md's rational-quadratic spline in float64, read from the spec
/// alone: `(y, ln dy/dx)` of `x` for raw parameters `raw` (3K − 1), bound `b`.
fn reference_spline(raw: &[f32], k: usize, b: f64, x: f64) -> (f64, f64) {
    if !(x >= -b && x <= b) {
        return (x, 0.0);
    }
    let knots = |r: &[f32]| -> Vec<f64> {
        let m = r.iter().map(|v| *v as f64).fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = r.iter().map(|v| (*v as f64 - m).exp()).sum();
        let w: Vec<f64> = r.iter().map(|v| 1e-3 + (1.0 - 1e-3 * k as f64) * (*v as f64 - m).exp() / sum).collect();
        let mut out = vec![-b];
        let mut cum = 0.0;
        for wi in w.iter().take(k - 1) {
            cum += wi;
            out.push(2.0 * b * cum - b);
        }
        out.push(b);
        out
    };
    let xs = knots(&raw[..k]);
    let ys = knots(&raw[k..2 * k]);
    let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
    let mut dv = vec![1.0];
    dv.extend(raw[2 * k..].iter().map(|r| 1e-3 + softplus(*r as f64 + 0.539_742_4)));
    dv.push(1.0);
    let bin = (0..k).rev().find(|&i| xs[i] <= x).unwrap_or(0);
    let (w, h) = (xs[bin + 1] - xs[bin], ys[bin + 1] - ys[bin]);
    let delta = h / w;
    let (dk, dk1) = (dv[bin], dv[bin + 1]);
    let s = dk1 + dk - 2.0 * delta;
    let th = (x - xs[bin]) / w;
    let t1m = th * (1.0 - th);
    let y = ys[bin] + h * (delta * th * th + dk * t1m) / (delta + s * t1m);
    let ld = (delta * delta * (dk1 * th * th + 2.0 * delta * t1m + dk * (1.0 - th) * (1.0 - th))).ln()
        - 2.0 * (delta + s * t1m).ln();
    (y, ld)
}

/// A spline coupling model whose conditioner outputs the constant `raw`
/// (zero weights, `raw` as the final bias): every transformed coordinate goes
/// through the spline of `raw`'s slice.
fn encode_spline(d: usize, split: usize, k: usize, bound: f32, raw: &[f32]) -> Vec<u8> {
    let p = 3 * k - 1;
    let n_out = p * (d - split);
    let (mean, std) = (vec![0.0f32; d], vec![1.0f32; d]);
    let (w0, b0, wf) = (vec![0.0f32; split], vec![0.0f32; 1], vec![0.0f32; n_out]);
    let tensors = vec![
        vector(&mean),
        vector(&std),
        vector(&[]),
        vector(&[]),
        TensorRef { rows: 1, cols: split as u32, data: TensorData::F32(&w0) },
        vector(&b0),
        TensorRef { rows: n_out as u32, cols: 1, data: TensorData::F32(&wf) },
        vector(&raw[..n_out]),
    ];
    let rec = LayerRecord {
        kind: LayerKind::SplineCoupling,
        activation: Activation::Relu,
        flags: 0,
        split: split as u16,
        bins: k as u16,
        hidden: 1,
        blocks: 1,
        param: bound,
        first_tensor: 4,
        n_tensors: 4,
    };
    encode(d, BaseKind::StdNormal, &[rec], &tensors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Encode → load → re-encode is the identity, and the runtime's latent and
    /// log-density equal docs/FORMAT.md's, computed in float64.
    #[test]
    fn linear_models_round_trip_and_match_the_spec(m in lin_model()) {
        let file = encode_lin(&m);
        let buf = Aligned::new(&file);
        let model = Model::load(buf.bytes()).expect("an encoded model loads");
        assert_canonical(buf.bytes());
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let lp = model.log_prob(&m.x, &[], &mut scratch).expect("log_prob") as f64;
        let (z_ref, lp_ref) = reference_lin(&m);
        prop_assert!((lp - lp_ref).abs() <= 1e-4 * (1.0 + lp_ref.abs()), "log p {lp} vs {lp_ref}");
        let mut z = vec![0.0f32; m.d];
        model.forward(&m.x, &[], &mut z, &mut scratch).expect("forward");
        for (a, b) in z.iter().zip(&z_ref) {
            prop_assert!((*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()), "z {z:?} vs {z_ref:?}");
        }
        let mut back = vec![0.0f32; m.d];
        model.inverse(&z, &[], &mut back, &mut scratch).expect("inverse");
        for ((a, b), s) in back.iter().zip(&m.x).zip(&m.std) {
            prop_assert!((a - b).abs() <= 1e-3 * s, "inverse {back:?} vs {:?}", m.x);
        }
    }

    /// A spline coupling layer maps each transformed coordinate through
    /// docs/FORMAT.md's spline (float64 from the spec's equations), passes the
    /// others through, is increasing, and its inverse undoes it.
    #[test]
    fn spline_couplings_follow_the_spec(
        d in 2usize..=5,
        split_frac in 0.0f64..1.0,
        k in 1usize..=12,
        bound in 0.5f32..5.0,
        raw in vals(4 * 35, -3.0, 3.0),
        u in vals(5, -1.3, 1.3),
    ) {
        let split = 1 + ((d - 1) as f64 * split_frac) as usize % (d - 1);
        let p = 3 * k - 1;
        let file = encode_spline(d, split, k, bound, &raw);
        let buf = Aligned::new(&file);
        let model = Model::load(buf.bytes()).expect("loads");
        let mut scratch = vec![0.0f32; model.scratch_len()];
        // Inputs inside and (|u| > 1) outside the bound.
        let x: Vec<f32> = u[..d].iter().map(|v| v * bound).collect();
        let mut z = vec![0.0f32; d];
        let logdet = model.forward(&x, &[], &mut z, &mut scratch).expect("forward") as f64;
        let mut ld_ref = 0.0;
        // Each coordinate's slope ds/dx, for the inverse's conditioning.
        let mut slope = vec![1.0f64; d];
        for j in 0..d {
            if j < split {
                prop_assert_eq!(z[j], x[j]);
                continue;
            }
            let r = &raw[(j - split) * p..(j - split + 1) * p];
            let (y, ld) = reference_spline(r, k, bound as f64, x[j] as f64);
            ld_ref += ld;
            slope[j] = ld.exp();
            prop_assert!((z[j] as f64 - y).abs() <= 2e-5 * bound as f64, "coordinate {j}: {} vs {y}", z[j]);
            // Increasing: a slightly larger input maps no lower.
            let mut x2 = x.clone();
            x2[j] += 1e-2 * bound;
            let mut z2 = vec![0.0f32; d];
            model.forward(&x2, &[], &mut z2, &mut scratch).expect("forward");
            prop_assert!(z2[j] >= z[j], "not increasing at coordinate {j}");
        }
        prop_assert!((logdet - ld_ref).abs() <= 1e-3 * (1.0 + ld_ref.abs()), "log det {logdet} vs {ld_ref}");
        let mut back = vec![0.0f32; d];
        model.inverse(&z, &[], &mut back, &mut scratch).expect("inverse");
        // The inverse recovers x to f32 rounding of z amplified by the slope:
        // where the spline is flat (a slope of 1e-3 at most bins' minimum),
        // a rounding step of z is a long step of x.
        for ((a, b), s) in back.iter().zip(&x).zip(&slope) {
            let tol = 1e-5 * bound as f64 * (1.0 + 1.0 / s);
            prop_assert!(((a - b).abs() as f64) <= tol, "inverse {back:?} vs {x:?} (slope {s})");
        }
    }

    /// The int8 dense kernel is exact: `b + Σ w·x` in i64, for weights in
    /// ±127, centred activations in ±255 (the paired layout `quantize` writes)
    /// and biases in ±2^30.
    #[test]
    fn int8_dense_is_exact(
        rows in 1usize..6,
        cols in 1usize..40,
        seed_w in proptest::collection::vec(-127i8..=127, 240),
        seed_x in proptest::collection::vec(-255i16..=255, 40),
        seed_b in proptest::collection::vec(-(1i32 << 30)..=(1 << 30), 6),
    ) {
        let w = &seed_w[..rows * cols];
        let x = &seed_x[..cols];
        let b = &seed_b[..rows];
        // Paired layout: each whole group of four holds elements 0, 2, 1, 3.
        let mut paired = x.to_vec();
        for g in paired.chunks_exact_mut(4) {
            g.swap(1, 2);
        }
        let mut acc = vec![0i32; rows];
        quant::dense_i8(w, b, &paired, &mut acc).expect("shapes");
        for i in 0..rows {
            let want = i64::from(b[i]) + (0..cols).map(|j| i64::from(w[i * cols + j]) * i64::from(x[j])).sum::<i64>();
            prop_assert_eq!(i64::from(acc[i]), want);
        }
    }

    /// Requantization rounds once: `round_half_up(acc · real)` computed
    /// exactly, with `real` from its fixed-point form (exact by construction).
    #[test]
    fn requantize_rounds_once(acc in any::<i32>(), real in 1e-6f32..4.0) {
        let (m, shift) = quant::multiplier(real);
        // real = m · 2^(shift − 31) exactly.
        prop_assert_eq!(m as f64 * 2f64.powi(shift - 31), real as f64);
        let got = quant::requantize(acc, m, shift);
        let t = 31 - shift;
        let prod = i128::from(acc) * i128::from(m);
        let want = if t > 0 { (prod + (1i128 << (t - 1))) >> t } else { prod << (-t) };
        let want = want.clamp(i128::from(i32::MIN), i128::from(i32::MAX));
        prop_assert_eq!(i128::from(got), want);
    }

    /// The f32 dense kernel sums left to right: within the standard rounding
    /// bound of the exact float64 result.
    #[test]
    fn f32_dense_is_within_its_rounding_bound(
        rows in 1usize..5,
        cols in 1usize..50,
        w in vals(250, -2.0, 2.0),
        x in vals(50, -3.0, 3.0),
        b in vals(5, -1.0, 1.0),
    ) {
        let mut y = vec![0.0f32; rows];
        dense_f32(&w[..rows * cols], &b[..rows], &x[..cols], &mut y).expect("shapes");
        for i in 0..rows {
            let terms = (0..cols).map(|j| w[i * cols + j] as f64 * x[j] as f64);
            let exact: f64 = terms.clone().sum::<f64>() + b[i] as f64;
            let mag: f64 = terms.map(f64::abs).sum::<f64>() + (b[i] as f64).abs();
            let bound = (cols + 1) as f64 * f32::EPSILON as f64 * mag + 1e-30;
            prop_assert!((y[i] as f64 - exact).abs() <= bound, "row {i}: {} vs {exact}", y[i]);
        }
    }
}

// ---- Samples in distribution -------------------------------------------------

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
