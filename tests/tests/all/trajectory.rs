//! Trajectory models end to end on real ETH/UCY windows: a model trained in Burn
//! is frozen into a file whose runtime tracker reproduces Burn's exact joint
//! log-densities; its int8 version matches the reference arithmetic bit for
//! bit; the evaluation's figures are finite and the tracker's queries agree
//! with each other.

use std::path::Path;

use floe_exporter::trajectory::data::{read_scene, Window};
use floe_exporter::trajectory::{eval, freeze, quant, train, TrajectoryConfig, HORIZON};
use floe_runtime::format::Precision;
use floe_runtime::trajectory::Tracker;

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/eth_ucy")
}

/// A small shared-step model trained briefly on hotel (train) and checked on
/// zara1 windows (test).
fn trained(per_step: bool) -> (TrajectoryConfig, floe_exporter::trajectory::TrajectoryFlow, train::Stats, Vec<Window>) {
    let hotel = read_scene(&data_dir(), "hotel").expect("hotel");
    let mut cfg = if per_step { TrajectoryConfig::per_step() } else { TrajectoryConfig::shared() };
    cfg.encoding = 8;
    cfg.encoder_hidden = 16;
    cfg.flow.hidden = 16;
    cfg.flow.steps = 2;
    cfg.flow.context_dim = cfg.encoding + 2 + cfg.embedding;
    let (tr, val) = train::examples(std::slice::from_ref(&hotel), true, true, 0).expect("examples");
    let tr: Vec<_> = tr.into_iter().step_by(4).take(600).collect();
    let val: Vec<_> = val.into_iter().take(100).collect();
    let mut tc = train::default_train_config();
    tc.epochs = 2;
    tc.batch_size = 64;
    let (model, stats, hist) =
        train::train(&cfg, &tc, &tr, &val, &floe_exporter::train::cpu(), false).expect("training");
    assert!(hist.val_nll.iter().all(|v| v.is_finite()));
    assert!(hist.val_nll.len() == 2, "{:?}", hist.val_nll);
    let zara = read_scene(&data_dir(), "zara1").expect("zara1");
    let windows: Vec<Window> = zara.windows().into_iter().step_by(97).take(24).collect();
    (cfg, model, stats, windows)
}

#[test]
fn shared_model_freezes_with_parity_quantizes_bit_exact_and_evaluates() {
    let (cfg, model, stats, windows) = trained(false);
    let frozen = freeze::fold_trajectory(&model, &cfg, &stats).expect("fold");
    let loaded = frozen.load().expect("the runtime loads it");
    let m = loaded.model();
    let layout = m.trajectory_layout().expect("a trajectory file");
    assert_eq!((layout.horizon as usize, layout.observed, layout.per_step), (HORIZON, 8, false));
    // Burn and the runtime's tracker agree on the exact joint density.
    let ex = train::examples_of(&windows, true).expect("examples");
    let p = freeze::check_parity(&model, &stats, m, &windows, &ex).expect("parity");
    assert!(p.max_abs < freeze::TOL_ABS && p.nll.0.is_finite(), "{p:?}");
    // The joint density is the sum of the step conditionals the tracker's
    // next-step query gives, one update at a time.
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut t = Tracker::<8, HORIZON>::new(*m, 1).expect("tracker");
    let w = &windows[3];
    t.predict(w.history(), &mut scratch).expect("predict");
    let joint = t.log_prob_future(w.future(), &mut scratch).expect("joint");
    let mut sum = 0.0f32;
    for &y in w.future() {
        sum += t.log_density(1, y, &mut scratch).expect("next");
        t.update(y, 0.05).expect("update");
    }
    assert!((joint - sum).abs() < 1e-3 * (1.0 + joint.abs()), "joint {joint} vs chained {sum}");
    // int8: every conditioner output and every step's log p bit-exact with the
    // reference; the file is smaller.
    let calib: Vec<Window> = windows[..12].to_vec();
    let cfg = quant::TrajectoryQuantConfig {
        precision: Precision::Int8,
        max_layer_cost: 100.0,
        max_total_cost: 100.0,
        clip: 1e-3,
    };
    let q = quant::quantize_trajectory(&frozen, &cfg, &calib, &windows[12..], &windows[..6]).expect("quantize");
    assert!(q.verified.values > 0 && q.verified.rows == 6 * HORIZON, "{:?}", q.verified);
    assert!(q.encoder_values > 0, "the encoder was quantized and checked");
    assert!(
        q.loaded.bytes().len() * 2 < loaded.bytes().len(),
        "{} vs {}",
        q.loaded.bytes().len(),
        loaded.bytes().len()
    );
    assert!(q.choices.iter().any(|c| c.precision == Precision::Int8), "{:?}", q.choices);
    // A total budget of zero: layers step down (int8 → w8 → f32) until the
    // whole model costs nothing on the validation windows.
    let strict = quant::TrajectoryQuantConfig { max_total_cost: 0.0, ..cfg };
    let q0 = quant::quantize_trajectory(&frozen, &strict, &calib, &windows[12..], &windows[..6]).expect("quantize");
    assert!(q0.val_nll.1 - q0.val_nll.0 <= 1e-9, "{:?} {:?}", q0.val_nll, q0.choices);
    // The evaluation's figures are finite, and errors grow with the horizon.
    let e = eval::evaluate(q.loaded.model(), &windows[..6], 2, 0).expect("eval");
    for v in [e.ade, e.fde, e.nll, e.pos_nll, e.fast_nll, e.recompute_nll, e.ess] {
        assert!(v.is_finite(), "{e:?}");
    }
    assert!(e.ade < e.fde && e.ade < 3.0 && e.ess >= 1.0 && e.ess <= 64.0, "{e:?}");
    // The constant-velocity baseline, by hand on one window.
    let w = &windows[0];
    let (last, prev) = (w.history()[7], w.history()[6]);
    let mut ade = 0.0;
    for (k, q) in w.future().iter().enumerate() {
        let s = (k + 1) as f32;
        let p = [last[0] + s * (last[0] - prev[0]), last[1] + s * (last[1] - prev[1])];
        ade += (((p[0] - q[0]) as f64).powi(2) + ((p[1] - q[1]) as f64).powi(2)).sqrt() / HORIZON as f64;
    }
    let b = eval::baselines(std::slice::from_ref(w), 0);
    assert!((b.cv.0 - ade).abs() < 1e-9, "{b:?} vs {ade}");
    assert!(b.cv_sampled.0.is_finite() && b.cv_sampled.1 >= 0.0);
}

#[test]
fn per_step_model_has_one_flow_per_step_and_parity() {
    let (cfg, model, stats, windows) = trained(true);
    let frozen = freeze::fold_trajectory(&model, &cfg, &stats).expect("fold");
    let loaded = frozen.load().expect("loads");
    let shared_layers = 1 + (frozen.layers.len() - 1) / HORIZON;
    assert_eq!((frozen.layers.len() - 1) % HORIZON, 0);
    assert!(shared_layers > 1);
    let ex = train::examples_of(&windows, true).expect("examples");
    let p = freeze::check_parity(&model, &stats, loaded.model(), &windows, &ex).expect("parity");
    assert!(p.max_abs < freeze::TOL_ABS, "{p:?}");
    // A wrong horizon is a typed error, not a panic.
    assert!(matches!(
        Tracker::<4, 6>::new(*loaded.model(), 0),
        Err(floe_runtime::Error::HorizonMismatch { expected: 12, got: 6 })
    ));
}
