//! Quantized models: the exporter's int8 / w8 files load, match the reference
//! arithmetic bit for bit (checked inside `quantize`), batch with the single-row
//! bits, stay close to f32, and malformed quantized files get typed errors.

use floe_exporter::data::Rows;
use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::{AlignedBytes, FrozenModel, LoadedModel, Payload};
use floe_exporter::quant::{quantize, QuantConfig, Quantized};
use floe_runtime::format::{crc32, layout, Precision, FLAG_INT8_ROW_PAIRS, FLAG_W8, HEADER_LEN, LAYER_RECORD_LEN};
use floe_runtime::{Error, Model};
use floe_tests::{config, random_flow, rows};

fn frozen(transform: TransformKind, residual: bool, tanh: bool, cdim: usize) -> FrozenModel {
    let mut cfg = config(transform, 4, cdim);
    cfg.hidden = 16;
    cfg.residual = residual;
    cfg.tanh = tanh;
    let (flow, xs, cs) = random_flow(&cfg, 7);
    flow.frozen(&xs, &cs).expect("freeze")
}

fn run(model: &FrozenModel, mode: Precision, budget: f64) -> Quantized {
    let (d, c) = (model.dim, model.context_dim);
    let set = |n, seed| Rows { dim: d, context_dim: c, x: rows(n, d, 1.0, seed), c: rows(n, c, 1.0, seed + 1) };
    quantize(model, QuantConfig { precision: mode, max_layer_cost: budget }, &set(400, 1), &set(200, 3), &set(200, 5))
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"))
}

fn log_probs(bytes: &[u8], x: &[f32], c: &[f32], d: usize, cd: usize) -> Vec<f32> {
    let buf = AlignedBytes::new(bytes);
    let m = Model::load(&buf).expect("loads");
    let mut scratch = vec![0.0f32; m.scratch_len()];
    (0..x.len() / d)
        .map(|i| m.log_prob(&x[i * d..(i + 1) * d], &c[i * cd..(i + 1) * cd], &mut scratch).expect("log_prob"))
        .collect()
}

/// `log_prob_batch` of every row (int8 conditioners on its lanes, w8 ones row
/// by row inside its lane pass; the splines on the lanes).
fn batch_log_probs(bytes: &[u8], x: &[f32], c: &[f32]) -> Vec<f32> {
    let buf = AlignedBytes::new(bytes);
    let m = Model::load(&buf).expect("loads");
    let mut out = vec![f32::NAN; x.len() / m.dim()];
    let mut scratch = vec![0.0f32; m.batch_scratch_len()];
    m.log_prob_batch(x, c, &mut out, &mut scratch).expect("log_prob_batch");
    out
}

#[test]
fn int8_and_w8_models_load_and_stay_close_to_f32() {
    for (transform, residual, tanh, cdim) in [
        (TransformKind::SplineCoupling, false, false, 0),
        (TransformKind::AffineCoupling, false, false, 2),
        (TransformKind::MadeSpline, false, false, 0),
        (TransformKind::SplineCoupling, true, false, 0),
        (TransformKind::AffineCoupling, false, true, 0),
    ] {
        let model = frozen(transform, residual, tanh, cdim);
        let f32_bytes = model.to_bytes().expect("f32 bytes");
        for mode in [Precision::Int8, Precision::W8] {
            let q = run(&model, mode, f64::INFINITY);
            let what = format!("{transform:?} residual={residual} tanh={tanh} {mode:?}");
            assert!(q.verified.values > 0, "{what}: nothing compared bit for bit");
            assert_eq!(q.verified.rows, 200, "{what}: every check row simulated");
            assert!(q.loaded.bytes().len() < f32_bytes.len(), "{what}: not smaller");
            for ch in &q.choices {
                let expect_int8 = mode == Precision::Int8 && !residual && !tanh;
                let got = ch.precision;
                assert!(got.is_quantized(), "{what}: unlimited budget quantizes every layer");
                assert_eq!(got == Precision::Int8, expect_int8, "{what}: layer {} is {got:?}", ch.layer);
                // The file stores an int8 layer's requantization words (and
                // `verified` above compared it bit for bit with the exporter's
                // own arithmetic from the scales).
                let rec = q.loaded.model().layer_info(ch.layer).unwrap().record;
                assert_eq!(rec.requant_words(), expect_int8, "{what}: layer {} words", ch.layer);
                if mode == Precision::Int8 && !expect_int8 {
                    assert!(!ch.note.is_empty(), "{what}: fallback without a reason");
                }
            }
            let (x, c) = (rows(100, 4, 1.0, 11), rows(100, cdim, 1.0, 12));
            let a = log_probs(&f32_bytes, &x, &c, 4, cdim);
            let b = log_probs(q.loaded.bytes(), &x, &c, 4, cdim);
            let batch = batch_log_probs(q.loaded.bytes(), &x, &c);
            for (r, (one, many)) in b.iter().zip(&batch).enumerate() {
                assert_eq!(one.to_bits(), many.to_bits(), "{what}: log_prob_batch row {r}: {many} vs {one}");
            }
            let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
            let mean = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
            // Measured (these seeds): mean 4e-3 to 3.9e-2 nats, worst 1.4e-2 to
            // 0.10 — 0.75 for the residual spline, whose rows near a knot of a
            // random (untrained) spline move most. The bounds sit at 1.3 to 2.5
            // times that; one int8 scale off by 5 % moves the mean by 0.10 to
            // 0.18 (`a_scale_off_by_five_percent_breaks_the_bound`), which the
            // old bound of 0.1 would have let through.
            let worst_bound = if residual { 1.0 } else { 0.25 };
            println!("{what}: mean {mean:.2e} worst {worst:.2e} nats");
            assert!(
                mean < MEAN_BOUND && worst < worst_bound,
                "{what}: log p moved by {mean} nats on average, {worst} at most"
            );
            for ch in &q.choices {
                assert!(ch.cost.abs() < 0.05, "{what}: layer {} costs {} nats/dim", ch.layer, ch.cost);
            }
        }
    }
}

/// The mean |Δ log p| an int8 or w8 model of the test flows may show.
const MEAN_BOUND: f32 = 0.05;

/// The quality bound catches the quantization errors it is there for: an int8
/// model with one of its scales off by 5 % (input, a requantization, output)
/// moves log p by more than [`MEAN_BOUND`] on average. (A zero point changed
/// consistently cancels by design: the kernels use `q − z`.)
#[test]
fn a_scale_off_by_five_percent_breaks_the_bound() {
    let model = frozen(TransformKind::SplineCoupling, false, false, 0);
    let f32_bytes = model.to_bytes().expect("f32 bytes");
    let q = run(&model, Precision::Int8, f64::INFINITY);
    let (x, c) = (rows(100, 4, 1.0, 11), rows(100, 0, 1.0, 12));
    let a = log_probs(&f32_bytes, &x, &c, 4, 0);
    let mean_moved = |m: &FrozenModel| {
        let b = log_probs(&m.to_bytes().expect("bytes"), &x, &c, 4, 0);
        a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32
    };
    assert!(mean_moved(&q.model) < MEAN_BOUND, "the genuine int8 model is within the bound");
    let li = first_quantized(&q.model);
    // The table `A` holds (1/s_0, z_0), then (s_l/s_{l+1}, z_{l+1}) per hidden
    // dense, then (s_L, 0): entries 0, 2 and the second to last.
    let n_table = match &q.model.layers[li].tensors[0].data {
        Payload::F32(t) => t.len(),
        _ => panic!("the int8 table is f32"),
    };
    for (what, at) in [("input scale", 0), ("first requantization scale", 2), ("output scale", n_table - 2)] {
        let mut m = q.model.clone();
        if let Payload::F32(table) = &mut m.layers[li].tensors[0].data {
            table[at] *= 1.05;
        }
        let moved = mean_moved(&m);
        println!("int8 with its {what} × 1.05: mean |Δ log p| {moved:.3} nats");
        assert!(moved > MEAN_BOUND, "{what}: log p moved by only {moved} nats: the bound would not catch it");
    }
}

#[test]
fn a_zero_budget_keeps_costly_layers_in_f32() {
    let model = frozen(TransformKind::SplineCoupling, false, false, 0);
    let q = run(&model, Precision::Int8, -1.0);
    assert!(q.choices.iter().all(|ch| ch.precision == Precision::F32 && ch.note.contains("kept f32")));
    assert_eq!(q.loaded.bytes(), model.to_bytes().expect("f32"), "nothing quantized: the f32 file");
}

/// Bytes of a quantized model with one tensor payload changed (CRC fixed by the writer).
fn mutate(q: &Quantized, edit: impl FnOnce(&mut FrozenModel)) -> Result<(), Error> {
    let mut m = q.model.clone();
    edit(&mut m);
    let bytes = m.to_bytes().expect("serialize");
    Model::load(&AlignedBytes::new(&bytes)).map(|_| ())
}

/// Recompute the CRC of an edited file.
fn recrc(b: &mut [u8]) {
    let n = b.len();
    let crc = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn first_quantized(m: &FrozenModel) -> usize {
    m.layers.iter().position(|l| l.precision.is_quantized()).expect("a quantized layer")
}

#[test]
fn malformed_quantized_layers_get_typed_errors() {
    let model = frozen(TransformKind::SplineCoupling, false, false, 0);
    let q = run(&model, Precision::Int8, f64::INFINITY);
    let li = first_quantized(&q.model);
    let layer = li as u16;
    assert_eq!(mutate(&q, |_| {}), Ok(()));
    // An int8 weight of -128 (weights are symmetric).
    let e = mutate(&q, |m| {
        if let Payload::I8(w) = &mut m.layers[li].tensors[1].data {
            w[0] = i8::MIN;
        }
    });
    assert_eq!(e, Err(Error::InvalidParameter(layer)));
    // A non-integral zero point.
    let e = mutate(&q, |m| {
        if let Payload::F32(a) = &mut m.layers[li].tensors[0].data {
            a[1] += 0.5;
        }
    });
    assert_eq!(e, Err(Error::InvalidParameter(layer)));
    // A negative scale.
    let e = mutate(&q, |m| {
        if let Payload::F32(a) = &mut m.layers[li].tensors[0].data {
            a[0] = -a[0];
        }
    });
    assert_eq!(e, Err(Error::InvalidParameter(layer)));
    // A bias beyond ±2^30.
    let e = mutate(&q, |m| {
        if let Payload::I32(b) = &mut m.layers[li].tensors[3].data {
            b[0] = i32::MAX;
        }
    });
    assert_eq!(e, Err(Error::InvalidParameter(layer)));
    // A NaN bf16 scale.
    let e = mutate(&q, |m| {
        if let Payload::BF16(s) = &mut m.layers[li].tensors[2].data {
            s[0] = 0x7FC0;
        }
    });
    assert!(matches!(e, Err(Error::NonFiniteWeight(_))), "{e:?}");
    // Both quantization flags, or int8 with a residual conditioner.
    // (`Precision` cannot say both, so the flag byte is edited in the file.)
    let mut both = q.loaded.bytes().to_vec();
    both[HEADER_LEN + li * LAYER_RECORD_LEN + layout::layer::FLAGS] |= FLAG_W8;
    recrc(&mut both);
    assert_eq!(Model::load(&AlignedBytes::new(&both)).map(|_| ()), Err(Error::BadLayer(layer)));
    assert_eq!(mutate(&q, |m| m.layers[li].residual = true), Err(Error::BadLayer(layer)));
    // In the row-pair layout a -128 is a stored 0x00 in a pair's first row
    // and 0x80 in its second row (the first pair's first two inputs here;
    // every dense of this model has an even row count, so the odd last row's
    // 0x80 is left to the runtime's `has_min` unit test).
    let (pairs, n) = q.loaded.relayout(true).expect("row pairs");
    assert!(n >= 1);
    let flag_at = HEADER_LEN + li * LAYER_RECORD_LEN + layout::layer::FLAGS;
    assert_ne!(pairs.bytes()[flag_at] & FLAG_INT8_ROW_PAIRS, 0);
    let first = pairs.model().layer_info(li).expect("layer").record.first_tensor;
    let t = floe_runtime::exporter_hooks::tensor_record(pairs.model(), first + 1).expect("the first weight tensor");
    for (at, v) in [(0, 0x00u8), (1, 0x80), (2, 0x00), (3, 0x80)] {
        let mut bad = pairs.bytes().to_vec();
        bad[t.offset as usize + at] = v;
        recrc(&mut bad);
        assert_eq!(Model::load(&AlignedBytes::new(&bad)).map(|_| ()), Err(Error::InvalidParameter(layer)), "byte {at}");
    }
    // The row-pair flag without int8.
    let w8 = run(&model, Precision::W8, f64::INFINITY);
    let wi = first_quantized(&w8.model);
    let mut pairs_w8 = w8.loaded.bytes().to_vec();
    pairs_w8[HEADER_LEN + wi * LAYER_RECORD_LEN + layout::layer::FLAGS] |= FLAG_INT8_ROW_PAIRS;
    recrc(&mut pairs_w8);
    assert_eq!(Model::load(&AlignedBytes::new(&pairs_w8)).map(|_| ()), Err(Error::BadLayer(wi as u16)));
    // A w8 flag on int8 tensors: the shapes and dtypes no longer fit.
    assert_eq!(mutate(&q, |m| m.layers[li].precision = Precision::W8), Err(Error::ShapeMismatch(layer)));
}

#[test]
fn made_masks_are_checked_on_int8_weights() {
    let model = frozen(TransformKind::MadeAffine, false, false, 0);
    let q = run(&model, Precision::Int8, f64::INFINITY);
    let li = first_quantized(&q.model);
    // Hidden unit 0 has degree 1; input x_1 has degree 2: the weight (0, 1) is masked.
    let e = mutate(&q, |m| {
        if let Payload::I8(w) = &mut m.layers[li].tensors[1].data {
            assert_eq!(w[1], 0);
            w[1] = 5;
        }
    });
    assert_eq!(e, Err(Error::InvalidParameter(li as u16)));
    // MADE weights stay row-major: the row-pair flag is refused on them, and
    // `floe repack` leaves them as they are.
    let mut flagged = q.loaded.bytes().to_vec();
    flagged[HEADER_LEN + li * LAYER_RECORD_LEN + layout::layer::FLAGS] |= FLAG_INT8_ROW_PAIRS;
    recrc(&mut flagged);
    assert_eq!(Model::load(&AlignedBytes::new(&flagged)).map(|_| ()), Err(Error::BadLayer(li as u16)));
    let (same, rewritten) = q.loaded.relayout(true).expect("relayout");
    assert_eq!((rewritten, same.bytes()), (0, q.loaded.bytes()));
}

#[test]
fn int8_files_change_layout_both_ways_with_the_same_bits() {
    // Two committed fuzz seeds, row-major: a coupling flow (rewritten) and a
    // MADE (kept row-major: nothing to do).
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    for (name, layers) in [("spline-coupling-int8", 1..usize::MAX), ("maf-int8", 0..1)] {
        let old = std::fs::read(seeds.join(format!("{name}.floe"))).expect("seed");
        let loaded = LoadedModel::from_bytes(&old).expect("a row-major int8 file loads");
        // `relayout` itself checks log p of sampled rows bit for bit.
        let (new, n) = loaded.relayout(true).expect("to row pairs");
        assert!(layers.contains(&n), "{name}: {n} int8 layers rewritten");
        assert_eq!(new.bytes().len(), old.len());
        assert_eq!(new.bytes() == &old[..], n == 0);
        let (again, m) = new.relayout(true).expect("to row pairs twice");
        assert_eq!((m, again.bytes()), (0, new.bytes()), "{name}: a second pass changes nothing");
        let (back, k) = new.relayout(false).expect("back to row-major");
        assert_eq!((k, back.bytes()), (n, &old[..]), "{name}: back to the original bytes");
        // Both files on other rows, one at a time and in lanes.
        let (d, c) = (loaded.model().dim(), loaded.model().context_dim());
        let (x, cx) = (rows(37, d, 2.0, 11), rows(37, c, 1.0, 12));
        let want = log_probs(&old, &x, &cx, d, c);
        assert_eq!(bits(&log_probs(new.bytes(), &x, &cx, d, c)), bits(&want), "{name}");
        assert_eq!(bits(&batch_log_probs(new.bytes(), &x, &cx)), bits(&want), "{name}, batch");
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
