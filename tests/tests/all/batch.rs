//! `Model::log_prob_batch` gives every row the bits `Model::log_prob` gives it:
//! every transform, plain and residual conditioners, with and without context,
//! row counts around the lane width; bad rows and short scratch are typed errors.

use floe_exporter::flow::TransformKind;
use floe_runtime::kernels::LANES;
use floe_runtime::{Error, Model};
use floe_tests::{config, model_bytes, rows};

fn batch_equals_single(m: &Model<'_>, x: &[f32], c: &[f32], what: &str) {
    let (d, cd) = (m.dim(), m.context_dim());
    let n = x.len() / d;
    let mut scratch = vec![0.0f32; m.batch_scratch_len()];
    let mut out = vec![f32::NAN; n];
    m.log_prob_batch(x, c, &mut out, &mut scratch).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let mut one = vec![0.0f32; m.scratch_len()];
    for r in 0..n {
        let want = m.log_prob(&x[r * d..(r + 1) * d], &c[r * cd..(r + 1) * cd], &mut one).unwrap();
        assert_eq!(out[r].to_bits(), want.to_bits(), "{what}: row {r} of {n}: {} vs {want}", out[r]);
    }
}

#[test]
fn the_batch_path_gives_every_row_its_single_row_bits() {
    for t in [
        TransformKind::SplineCoupling,
        TransformKind::AffineCoupling,
        TransformKind::MadeAffine,
        TransformKind::MadeSpline,
    ] {
        for (residual, cdim) in [(false, 0), (true, 0), (false, 2), (true, 3)] {
            let mut cfg = config(t, 4, cdim);
            cfg.residual = residual;
            cfg.tanh = cdim == 3;
            let bytes = model_bytes(&cfg, 21);
            let m = Model::load(&bytes).unwrap();
            for n in [1, LANES - 1, LANES, 3 * LANES + 5] {
                // Rows near the data and far out (past the splines' tails).
                let mut x = rows(n, 4, 1.0, 30 + n as u64);
                for v in x.iter_mut().skip(2 * 4) {
                    *v *= 4.0;
                }
                let c = rows(n, cdim, 1.0, 40 + n as u64);
                batch_equals_single(&m, &x, &c, &format!("{t:?} residual={residual} context={cdim} rows={n}"));
            }
        }
    }
}

#[test]
fn the_bundled_models_batch_bit_for_bit() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/");
    let inputs = std::fs::read(format!("{dir}thyroid.f32")).unwrap();
    let x: Vec<f32> = inputs.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    for name in ["thyroid.floe", "thyroid-int8.floe"] {
        let file = std::fs::read(format!("{dir}{name}")).unwrap();
        let bytes = floe_exporter::freeze::AlignedBytes::new(&file);
        let m = Model::load(&bytes).unwrap();
        let n = x.len() / m.dim();
        batch_equals_single(&m, &x[..n * m.dim()], &[], name);
    }
}

#[test]
fn bad_batches_are_typed_errors_and_write_nothing() {
    let bytes = model_bytes(&config(TransformKind::SplineCoupling, 3, 1), 4);
    let m = Model::load(&bytes).unwrap();
    let n = 2 * LANES;
    let mut x = rows(n, 3, 1.0, 5);
    let c = rows(n, 1, 1.0, 6);
    let mut scratch = vec![0.0f32; m.batch_scratch_len()];
    let mut out = vec![7.0f32; n];
    x[3 * LANES / 2] = f32::NAN;
    assert_eq!(m.log_prob_batch(&x, &c, &mut out, &mut scratch), Err(Error::NonFiniteInput));
    assert!(out.iter().all(|&v| v == 7.0), "nothing written");
    x[3 * LANES / 2] = 0.5;
    assert!(matches!(m.log_prob_batch(&x[1..], &c, &mut out, &mut scratch), Err(Error::DimMismatch { .. })));
    assert!(matches!(m.log_prob_batch(&x, &c[1..], &mut out, &mut scratch), Err(Error::ContextMismatch { .. })));
    let short = m.batch_scratch_len() - 1;
    assert!(matches!(m.log_prob_batch(&x, &c, &mut out, &mut scratch[..short]), Err(Error::ScratchTooSmall { .. })));
    m.log_prob_batch(&x, &c, &mut out, &mut scratch).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}
