//! The runtime's fuzz targets as plain functions of a byte string.
//!
//! Each function panics when the runtime breaks one of its promises, and only
//! then; every other outcome (a typed error, an `Ok`) is a pass. libFuzzer runs
//! them from `fuzz/` (`cargo xtask fuzz`, nightly); `cargo test` runs them over
//! the committed corpus and every regression (`tests/corpus.rs`), on stable.
//!
//! The promises checked (README "Guarantees", docs/FORMAT.md "Validation"):
//! - no panic, whatever the bytes: [`Model::load`] answers `Ok` or a typed error;
//! - after a successful load, evaluation fails only on the caller's account:
//!   with buffers of the right length and finite inputs, `log_prob`, `forward`,
//!   `inverse`, `sample`, `score`, stream pushes and tracker calls return `Ok`;
//!   with non-finite inputs `NonFiniteInput`, with wrong lengths `DimMismatch`,
//!   with a short scratch `ScratchTooSmall`;
//! - an `Ok` log-density is never NaN (it may be −∞ far outside the data, or +∞
//!   when a weight drives the density to a point mass; both are documented);
//! - `inverse(forward(x)) ≈ x` for inputs within the data's range;
//! - one file, one encoding: a file that loads is byte for byte what the
//!   encoder writes from its own records and tensors ([`assert_canonical`]).
//!
//! Structure-aware inputs: [`load_mutated`] edits a bundled model and fixes its
//! CRC, so the fuzzer reaches the validation behind the checksum.

use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
use floe_runtime::format::{
    crc32, DType, Header, LayerRecord, TensorRecord, HEADER_LEN, LAYER_RECORD_LEN, TENSOR_RECORD_LEN,
};
use floe_runtime::trajectory::{Point, Refresh, Tracker};
use floe_runtime::{Error, Model, Rng, Stream};

/// A model the structure-aware targets start from.
pub struct Seed {
    /// Where it comes from.
    pub name: &'static str,
    /// The file.
    pub bytes: &'static [u8],
}

/// The bundled models (firmware/assets) and the small models of every layer
/// kind, base and precision in `fuzz/seeds` (`cargo xtask fuzz-seeds`).
pub const SEEDS: &[Seed] = &[
    Seed { name: "thyroid.floe", bytes: include_bytes!("../../firmware/assets/thyroid.floe") },
    Seed { name: "thyroid-int8.floe", bytes: include_bytes!("../../firmware/assets/thyroid-int8.floe") },
    Seed { name: "ucr-int8.floe", bytes: include_bytes!("../../firmware/assets/ucr-int8.floe") },
    Seed { name: "traj-int8.floe", bytes: include_bytes!("../../firmware/assets/traj-int8.floe") },
    Seed { name: "spline-coupling.floe", bytes: include_bytes!("../../fuzz/seeds/spline-coupling.floe") },
    Seed { name: "spline-coupling-int8.floe", bytes: include_bytes!("../../fuzz/seeds/spline-coupling-int8.floe") },
    Seed { name: "affine-coupling.floe", bytes: include_bytes!("../../fuzz/seeds/affine-coupling.floe") },
    Seed { name: "affine-coupling-w8.floe", bytes: include_bytes!("../../fuzz/seeds/affine-coupling-w8.floe") },
    Seed { name: "maf.floe", bytes: include_bytes!("../../fuzz/seeds/maf.floe") },
    Seed { name: "maf-int8.floe", bytes: include_bytes!("../../fuzz/seeds/maf-int8.floe") },
    Seed { name: "made-spline.floe", bytes: include_bytes!("../../fuzz/seeds/made-spline.floe") },
    Seed { name: "linear-mixture.floe", bytes: include_bytes!("../../fuzz/seeds/linear-mixture.floe") },
    Seed { name: "spline-full-mixture.floe", bytes: include_bytes!("../../fuzz/seeds/spline-full-mixture.floe") },
    Seed {
        name: "spline-full-mixture-int8.floe",
        bytes: include_bytes!("../../fuzz/seeds/spline-full-mixture-int8.floe"),
    },
    Seed { name: "daphnet-int8.floe", bytes: include_bytes!("../../firmware/assets/daphnet-int8.floe") },
    Seed { name: "zuko-nsf.floe", bytes: include_bytes!("../../fuzz/seeds/zuko-nsf.floe") },
    Seed { name: "zuko-maf.floe", bytes: include_bytes!("../../fuzz/seeds/zuko-maf.floe") },
    Seed { name: "zuko-cnsf.floe", bytes: include_bytes!("../../fuzz/seeds/zuko-cnsf.floe") },
];

/// A fuzz target: a function of the fuzzer's bytes.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus
/// folders).
pub const TARGETS: &[(&str, Target)] =
    &[("load", load), ("load_mutated", load_mutated), ("eval", eval), ("stream", stream), ("tracker", tracker)];

/// Arbitrary bytes as a model file: `Ok` or a typed error; an `Ok` model is then
/// evaluated on inputs read from the same bytes.
pub fn load(data: &[u8]) {
    let buf = Aligned::new(data);
    if let Ok(m) = Model::load(buf.bytes()) {
        assert_canonical(&buf.bytes()[..m.file_len()]);
        let mut cur = Cursor::new(data.get(HEADER_LEN.min(data.len())..).unwrap_or_default());
        exercise(&m, &mut cur, false);
    }
}

/// A bundled model with edits and its CRC fixed: the fuzzer's way past the
/// checksum to the structural checks. Byte 0 picks the seed, byte 1 how many
/// edits follow (3 bytes each: a position — in the first 1 KiB, where the header
/// and the records are, when its top bit is set — and the new byte); the rest
/// feeds the evaluation.
pub fn load_mutated(data: &[u8]) {
    let (file, rest) = mutated(data);
    let buf = Aligned::new(&file);
    if let Ok(m) = Model::load(buf.bytes()) {
        assert_canonical(&buf.bytes()[..m.file_len()]);
        exercise(&m, &mut Cursor::new(rest), false);
    }
}

/// The file [`load_mutated`] makes of `data` (the seed, edited, CRC fixed), and
/// the bytes left for the evaluation.
pub fn mutated(data: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut cur = Cursor::new(data);
    let seed = pick_seed(&mut cur);
    let mut file = seed.bytes.to_vec();
    let body = file.len().saturating_sub(4);
    let edits = cur.u8() % 16;
    for _ in 0..edits {
        let hi = cur.u8();
        let lo = cur.u8();
        let v = cur.u8();
        let pos = usize::from(hi & 0x7F) << 8 | usize::from(lo);
        let pos = if hi & 0x80 != 0 { pos % 1024 } else { pos * 64 + usize::from(v) % 64 };
        if let Some(b) = file.get_mut(pos % body.max(1)) {
            *b = v;
        }
    }
    if file.len() >= 4 {
        let crc = crc32(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
    }
    (file, cur.data)
}

/// A bundled model evaluated on arbitrary inputs: byte 0 picks the model, the
/// rest are the values (NaN, ±∞, subnormals and huge values included).
pub fn eval(data: &[u8]) {
    let mut cur = Cursor::new(data);
    let seed = pick_seed(&mut cur);
    let buf = Aligned::new(seed.bytes);
    let m = Model::load(buf.bytes()).unwrap_or_else(|e| panic!("{}: bundled model rejected: {e}", seed.name));
    // An int8 conditioner rounds its input to the int8 grid, so an int8 flow is
    // a step function of its input: where a coordinate lies within a rounding
    // error of a step, the inverse (whose input differs from the forward's by an
    // ulp, through ActNorm and LU) lands on the other side and misses x (the
    // fuzzer found x = [0.772, −0.044] on the trajectory model: 3e-2 std off; 2
    // of 65,600 grid points there miss by more than 1e-3). The round trip is a
    // promise of f32 and w8 flows.
    let int8 = (0..m.n_layers()).any(|i| m.layer_info(i).is_ok_and(|l| l.record.flags & 4 != 0));
    exercise(&m, &mut cur, !int8);
}

/// The bundled stream model fed a sequence of samples, with and without
/// sequence numbers.
pub fn stream(data: &[u8]) {
    let mut cur = Cursor::new(data);
    let buf = Aligned::new(seed_named("ucr-int8.floe"));
    let m = Model::load(buf.bytes()).unwrap_or_else(|e| panic!("stream model rejected: {e}"));
    exercise_stream(&m, &mut cur);
}

/// The bundled trajectory model's tracker driven by arbitrary observations.
pub fn tracker(data: &[u8]) {
    let mut cur = Cursor::new(data);
    let buf = Aligned::new(seed_named("traj-int8.floe"));
    let m = Model::load(buf.bytes()).unwrap_or_else(|e| panic!("trajectory model rejected: {e}"));
    exercise_tracker(&m, &mut cur);
}

fn seed_named(name: &str) -> &'static [u8] {
    SEEDS.iter().find(|s| s.name == name).map(|s| s.bytes).unwrap_or_else(|| panic!("no seed {name}"))
}

fn pick_seed(cur: &mut Cursor) -> &'static Seed {
    &SEEDS[usize::from(cur.u8()) % SEEDS.len()]
}

/// Every evaluation entry point of a loaded model, with right and wrong calls;
/// with `round_trip`, also `inverse(forward(x)) ≈ x`.
///
/// The round trip is a promise of trained models only. A file may hold any
/// finite weights, and a mutated one can make a layer so flat (a spline whose
/// derivative is e^-70 at x, found by the fuzzer) or so ill-conditioned (an LU
/// factor of 1e18) that no f32 inverse recovers x; such files only promise no
/// panic, typed errors and no NaN, which every target checks.
fn exercise(m: &Model, cur: &mut Cursor, round_trip: bool) {
    let d = m.dim();
    let c = m.context_dim();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let x: Vec<f32> = (0..d).map(|_| cur.f32()).collect();
    let ctx: Vec<f32> = (0..c).map(|_| cur.f32()).collect();
    let finite = x.iter().chain(&ctx).all(|v| v.is_finite());

    // The caller's mistakes are typed errors.
    if d > 0 {
        let r = m.log_prob(&x[..d - 1], &ctx, &mut scratch);
        assert!(matches!(r, Err(Error::DimMismatch { .. })), "short x: {r:?}");
    }
    if !scratch.is_empty() {
        let n = scratch.len() - 1;
        let r = m.log_prob(&x, &ctx, &mut scratch[..n]);
        assert!(matches!(r, Err(Error::ScratchTooSmall { .. }) | Err(Error::NonFiniteInput)), "short scratch: {r:?}");
    }

    let lp = m.log_prob(&x, &ctx, &mut scratch);
    let score = m.score(&x, &ctx, &mut scratch);
    let mut z = vec![0.0f32; d];
    let fwd = m.forward(&x, &ctx, &mut z, &mut scratch);
    if !finite {
        assert_eq!(lp, Err(Error::NonFiniteInput));
        assert!(matches!(score, Err(Error::NonFiniteInput)), "{score:?}");
        assert_eq!(fwd, Err(Error::NonFiniteInput));
        return;
    }
    let lp = lp.unwrap_or_else(|e| panic!("log_prob of a valid call failed: {e}"));
    assert!(!lp.is_nan(), "log_prob is NaN at {x:?}");
    let score = score.unwrap_or_else(|e| panic!("score of a valid call failed: {e}"));
    assert_eq!(score.nats.to_bits(), (-lp).to_bits(), "score disagrees with log_prob");
    // forward and inverse report what f32 computes: where it overflows inside
    // the flow (far outside the data, or weights that overflow `exp`), the
    // latent and the log-det may be ±∞ or NaN. Within the data's range of a
    // trained model they are finite (checked with the round trip).
    let ld = fwd.unwrap_or_else(|e| panic!("forward of a valid call failed: {e}"));

    // Round trip (trained models), for inputs and contexts within the data's
    // range (standardized |u| ≤ 8): a latent of moderate size, both log-dets finite
    // and equal, and x back.
    let (mean, std) = m.standardization();
    let (c_mean, c_std) = m.context_standardization();
    let within = |v: &[f32], mean: &[f32], std: &[f32]| {
        v.iter().zip(mean).zip(std).all(|((&v, &mu), &s)| ((v - mu) / s).abs() <= 8.0)
    };
    let inside = within(&x, mean, std) && within(&ctx, c_mean, c_std);
    if round_trip && inside {
        assert!(z.iter().all(|v| v.abs() <= 1e4), "x {x:?} within the data's range went to z {z:?}");
    }
    if z.iter().all(|v| v.is_finite()) {
        let mut back = vec![0.0f32; d];
        let ld_inv = m.inverse(&z, &ctx, &mut back, &mut scratch);
        let ld_inv = ld_inv.unwrap_or_else(|e| panic!("inverse of a finite latent failed: {e}"));
        // Where the model puts its mass (every |z_i| ≤ 4 under the base); further
        // out a flow fitted to data can bend steeply enough (the demo model's
        // log-det changes by 1e-3 per 1e-5 std of x at z = −6.3) that f32's
        // rounding of z, amplified, exceeds these tolerances.
        let bulk = z.iter().all(|v| v.abs() <= 4.0);
        if round_trip && inside && bulk {
            assert!(ld.is_finite() && ld_inv.is_finite(), "log-dets {ld} and {ld_inv} at {x:?}");
            let tol = 1e-3 * (1.0 + ld.abs());
            assert!((ld - ld_inv).abs() <= tol, "forward log-det {ld}, inverse {ld_inv}");
            for (i, ((&a, &b), &s)) in x.iter().zip(&back).zip(std).enumerate() {
                let err = ((a - b) / s).abs();
                let u = ((a - mean[i]) / s).abs();
                assert!(err <= 1e-3 * (1.0 + u), "round trip x[{i}] = {a} came back {b} (std {s})");
            }
        }
    }

    // Sampling with a seed from the input.
    let mut rng = Rng::new(cur.u64());
    let mut out = vec![0.0f32; d];
    let s = m.sample(&mut rng, &ctx, &mut out, &mut scratch);
    let s = s.unwrap_or_else(|e| panic!("sample of a valid call failed: {e}"));
    assert!(!s.is_nan(), "sample's log_prob is NaN");
}

/// Feeds a stream model `channels`-wide samples, some with sequence numbers.
fn exercise_stream(m: &Model, cur: &mut Cursor) {
    const N: usize = 1024;
    let Ok(mut st) = Stream::<N>::new(*m) else { return };
    let ch = st.layout().channels as usize;
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut seq = 0u32;
    while !cur.is_empty() {
        let op = cur.u8();
        let sample: Vec<f32> = (0..ch).map(|_| cur.f32()).collect();
        let r = match op % 8 {
            0 => {
                seq = seq.wrapping_add(u32::from(cur.u8() % 3)).wrapping_sub(1);
                st.push_seq(seq, &sample, &mut scratch)
            }
            1 => {
                st.reset();
                continue;
            }
            2 => st.push(&sample[..ch.saturating_sub(1)], &mut scratch),
            _ => st.push(&sample, &mut scratch),
        };
        match r {
            Ok(Some(score)) => assert!(!score.nats.is_nan(), "stream score is NaN"),
            Ok(None) => assert!(st.samples_needed() > 0, "a full window gave no score"),
            Err(Error::NonFiniteInput) => {}
            Err(Error::OutOfOrder { .. }) if op.is_multiple_of(8) => {}
            Err(Error::DimMismatch { .. }) if op % 8 == 2 => {}
            Err(e) => panic!("stream push of a finite sample failed: {e}"),
        }
    }
}

/// Drives a tracker of the trajectory model's horizon: predict, updates,
/// refreshes and density queries, valid and not.
fn exercise_tracker(m: &Model, cur: &mut Cursor) {
    const N: usize = 8;
    let Some(layout) = m.trajectory_layout() else { return };
    match layout.horizon {
        12 => drive::<N, 12>(m, cur),
        8 => drive::<N, 8>(m, cur),
        _ => {}
    }
}

fn drive<const N: usize, const T: usize>(m: &Model, cur: &mut Cursor) {
    let Ok(mut tr) = Tracker::<N, T>::new(*m, cur.u64()) else { return };
    let layout = m.trajectory_layout().unwrap_or_else(|| panic!("not a trajectory model"));
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let history: Vec<Point> = (0..layout.observed).map(|_| cur.point()).collect();
    // Usable: finite, and no displacement whose squared length overflows f32.
    let usable = history.iter().flatten().all(|v| v.is_finite())
        && history.windows(2).all(|w| {
            let (dx, dy) = (w[1][0] - w[0][0], w[1][1] - w[0][1]);
            (dx * dx + dy * dy).is_finite()
        });
    let mut predicted = match tr.predict(&history, &mut scratch) {
        Ok(()) => {
            assert!(usable, "predict accepted {history:?}");
            true
        }
        Err(Error::NonFiniteInput) => {
            // Also for finite steps beyond any track (the fuzzer's 1.6e19 m):
            // the encoder's activations overflow f32, and the prediction is
            // refused before anything changes.
            let far = history.windows(2).any(|w| (w[1][0] - w[0][0]).abs().max((w[1][1] - w[0][1]).abs()) > 1e6);
            assert!(!usable || far, "predict refused {history:?}");
            false
        }
        Err(e) => panic!("predict failed: {e}"),
    };
    let finite = predicted;
    while !cur.is_empty() {
        let op = cur.u8();
        let left = tr.steps_left();
        match op % 6 {
            0 => match tr.recompute(&mut scratch) {
                Ok(()) => assert!(predicted),
                Err(Error::NothingToUpdate) => assert!(!predicted),
                // The history, shifted by far-away observations, overflows: the
                // tracker is then unpredicted.
                Err(Error::NonFiniteInput) => predicted = false,
                Err(e) => panic!("recompute failed: {e}"),
            },
            1 | 2 => {
                let y = cur.point();
                let sigma = cur.f32();
                let ok_args = y.iter().all(|v| v.is_finite()) && sigma > 0.0 && sigma.is_finite();
                let r = if op % 6 == 1 {
                    tr.update(y, sigma)
                } else {
                    let refresh = if cur.u8().is_multiple_of(2) { Refresh::Resample } else { Refresh::Recompute };
                    tr.update_and_refresh(y, sigma, 0.5, refresh, &mut scratch)
                };
                match r {
                    Ok(u) => {
                        assert!(ok_args && left > 0);
                        assert!(u.ess >= 0.999 && u.ess <= N as f32 * 1.001, "ess {}", u.ess);
                    }
                    Err(Error::NothingToUpdate) => assert!(left == 0 || !predicted),
                    Err(Error::InvalidArgument) => assert!(!ok_args),
                    Err(Error::NonFiniteInput) if !ok_args => {}
                    // A recomputing refresh from an overflowing history.
                    Err(Error::NonFiniteInput) if op % 6 == 2 => predicted = false,
                    Err(e) => panic!("update failed: {e}"),
                }
                let total: f32 = (0..N).filter_map(|i| tr.weight(i)).sum();
                if finite && predicted {
                    assert!((total - 1.0).abs() < 1e-3, "weights sum to {total}");
                }
            }
            3 => {
                let step = usize::from(cur.u8() % (T as u8 + 2));
                let q = cur.point();
                match tr.log_density(step, q, &mut scratch) {
                    Ok(v) => assert!(!v.is_nan(), "log_density is NaN"),
                    Err(Error::StepOutOfRange { .. }) => assert!(step == 0 || step > left),
                    Err(Error::NonFiniteInput) => assert!(!q.iter().all(|v| v.is_finite())),
                    Err(Error::NothingToUpdate) => assert!(!predicted),
                    Err(e) => panic!("log_density failed: {e}"),
                }
            }
            4 => {
                let future: Vec<Point> = (0..left).map(|_| cur.point()).collect();
                match tr.log_prob_future(&future, &mut scratch) {
                    Ok(v) => assert!(!v.is_nan(), "log_prob_future is NaN"),
                    Err(Error::NonFiniteInput) => assert!(!future.iter().flatten().all(|v| v.is_finite())),
                    Err(Error::NothingToUpdate) => assert!(!predicted),
                    Err(e) => panic!("log_prob_future failed: {e}"),
                }
            }
            _ => {
                let r = tr.resample();
                assert!(r.is_ok() || (!predicted && r == Err(Error::NothingToUpdate)), "resample: {r:?}");
            }
        }
    }
}

/// Panics unless `file` (a file `Model::load` accepted, 8-byte aligned, cut to
/// its length) is exactly what [`encode::Contents::encode`] writes from the
/// file's own decoded records and tensors: the runtime accepts the canonical
/// layout only (docs/FORMAT.md "Canonical layout").
pub fn assert_canonical(file: &[u8]) {
    let h = Header::decode(file).expect("a loaded file's header decodes");
    let layers: Vec<LayerRecord> = (0..h.n_layers)
        .map(|i| {
            let at = h.layer_table as usize + usize::from(i) * LAYER_RECORD_LEN;
            LayerRecord::decode(&file[at..at + LAYER_RECORD_LEN], i).expect("a loaded file's layer decodes")
        })
        .collect();
    let tensors: Vec<TensorRef<'_>> = (0..h.n_tensors)
        .map(|i| {
            let at = h.tensor_table as usize + i as usize * TENSOR_RECORD_LEN;
            let t = TensorRecord::decode(&file[at..at + TENSOR_RECORD_LEN], i).expect("a loaded file's tensor decodes");
            let bytes = &file[t.offset as usize..t.offset as usize + t.n_bytes()];
            let data = match t.dtype {
                DType::F32 => TensorData::F32(bytemuck::cast_slice(bytes)),
                DType::U16 => TensorData::U16(bytemuck::cast_slice(bytes)),
                DType::BF16 => TensorData::BF16(bytemuck::cast_slice(bytes)),
                DType::I8 => TensorData::I8(bytemuck::cast_slice(bytes)),
                DType::I32 => TensorData::I32(bytemuck::cast_slice(bytes)),
            };
            TensorRef { rows: t.rows, cols: t.cols, data }
        })
        .collect();
    let contents = Contents {
        dim: h.dim,
        context_dim: h.context_dim,
        base: h.base,
        scratch_len: h.scratch_len,
        anomaly: h.anomaly,
        stream: h.stream,
        alarm: h.alarm,
        trajectory: h.trajectory,
        layers: &layers,
        tensors: &tensors,
    };
    let mut out = vec![0u8; file.len()];
    let n = contents.encode(&mut out).expect("a loaded file re-encodes");
    assert!(n == file.len() && out == file, "a file that loads is not in the canonical layout");
}

/// A byte string as a copy that starts at an aligned address (as a model in
/// flash or in a `#[repr(align)]` static does).
pub struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> Aligned {
        let mut words = vec![0u64; b.len().div_ceil(8)];
        for (w, chunk) in words.iter_mut().zip(b.chunks(8)) {
            let mut a = [0u8; 8];
            a[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(a);
        }
        Aligned { words, len: b.len() }
    }

    /// The bytes, 8-byte aligned.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// Reads values off the fuzzer's bytes; zeros once they run out.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes<const K: usize>(&mut self) -> [u8; K] {
        let mut a = [0u8; K];
        for b in &mut a {
            *b = self.u8();
        }
        a
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes::<8>())
    }

    /// A value: one tag byte, then either four raw bytes (any f32: NaN, ±∞,
    /// subnormal, huge) or two bytes of a moderate value at one of four scales.
    fn f32(&mut self) -> f32 {
        let tag = self.u8();
        if tag.is_multiple_of(4) {
            f32::from_le_bytes(self.bytes::<4>())
        } else {
            let v = i16::from_le_bytes(self.bytes::<2>());
            f32::from(v) * [0.0, 1.0 / 8192.0, 1.0 / 512.0, 1.0 / 32.0][usize::from(tag % 4)]
        }
    }

    fn point(&mut self) -> Point {
        [self.f32(), self.f32()]
    }
}
