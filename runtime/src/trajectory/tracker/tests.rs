//! The tracker on small synthetic trajectory models written with the format's
//! encoder: densities normalize, the chain rule holds across an update, the
//! heading frame makes densities rotation invariant, updates and resampling keep
//! their invariants, and malformed trajectory files are typed errors.

use std::vec;
use std::vec::Vec;

use crate::error::Error;
use crate::exporter_hooks::scratch_len;
use crate::format::encode::{Contents, TensorData, TensorRef};
use crate::format::layout::header as hdr;
use crate::format::{
    crc32, Activation, BaseKind, LayerKind, LayerRecord, TrajectoryLayout, FLAG_RESIDUAL, HEADER_LEN, LAYER_RECORD_LEN,
};
use crate::model::Model;
use crate::trajectory::{Frame, Point, Refresh, Tracker};

const H: usize = 3;
const E: usize = 2;
const T: usize = 4;
const OBS: usize = 3;

/// Seeded values in [-scale, scale].
fn fill(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

struct Built {
    words: Vec<u32>,
    len: usize,
}

impl Built {
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }
}

/// A trajectory model: encoder (hidden 5, plain ReLU) then, per step group,
/// spline coupling · reverse · affine coupling. `per_step` gives each of the T
/// steps its own group (and no embedding).
fn build(per_step: bool, heading: bool, seed: u32) -> Built {
    let e = if per_step { 0 } else { E };
    let layout = TrajectoryLayout {
        horizon: T as u8,
        observed: OBS as u8,
        per_step,
        heading_frame: heading,
        embedding: e as u8,
    };
    let c = layout.context_dim(H);
    let f = layout.features();
    let mut data: Vec<(u32, u32, Vec<f32>)> = vec![
        (2, 1, vec![0.1, -0.05]),
        (2, 1, vec![0.3, 0.25]),
        (c as u32, 1, vec![0.0; c]),
        (c as u32, 1, vec![1.0; c]),
    ];
    let mut layers = Vec::new();
    let mut first = 4u32;
    let mut push = |kind: LayerKind,
                    act: Activation,
                    split: u16,
                    bins: u16,
                    hidden: u16,
                    param: f32,
                    ts: Vec<(u32, u32, Vec<f32>)>,
                    data: &mut Vec<(u32, u32, Vec<f32>)>| {
        layers.push(LayerRecord {
            kind,
            activation: act,
            flags: 0,
            split,
            bins,
            hidden,
            blocks: if hidden > 0 { 1 } else { 0 },
            param,
            first_tensor: first,
            n_tensors: ts.len() as u32,
        });
        first += ts.len() as u32;
        data.extend(ts);
    };
    let mlp = |n_in: usize, hid: usize, n_out: usize, s: u32, scale: f32| {
        vec![
            (hid as u32, n_in as u32, fill(hid * n_in, s, scale)),
            (hid as u32, 1, fill(hid, s + 1, 0.3)),
            (n_out as u32, hid as u32, fill(n_out * hid, s + 2, scale)),
            (n_out as u32, 1, fill(n_out, s + 3, 0.2)),
        ]
    };
    let mut enc = vec![(f as u32, 1, fill(f, seed, 0.1)), (f as u32, 1, vec![0.4; f])];
    enc.extend(mlp(f, 5, H, seed + 10, 0.6));
    if e > 0 {
        enc.push((T as u32, e as u32, fill(T * e, seed + 20, 1.0)));
    }
    push(LayerKind::Encoder, Activation::Relu, H as u16, 0, 5, 0.0, enc, &mut data);
    let groups = if per_step { T } else { 1 };
    for g in 0..groups as u32 {
        let k = 4usize;
        push(
            LayerKind::SplineCoupling,
            Activation::Relu,
            1,
            k as u16,
            6,
            3.0,
            mlp(1 + c, 6, 3 * k - 1, seed + 100 + g * 7, 0.3),
            &mut data,
        );
        push(LayerKind::Reverse, Activation::None, 0, 0, 0, 0.0, vec![], &mut data);
        push(
            LayerKind::AffineCoupling,
            Activation::Relu,
            1,
            0,
            4,
            1.0,
            mlp(1 + c, 4, 2, seed + 200 + g * 7, 0.3),
            &mut data,
        );
    }
    let tensors: Vec<TensorRef<'_>> =
        data.iter().map(|(r, cc, v)| TensorRef { rows: *r, cols: *cc, data: TensorData::F32(v) }).collect();
    let contents = Contents {
        dim: 2,
        context_dim: c as u16,
        base: BaseKind::StdNormal,
        scratch_len: scratch_len(2, c, Some(layout), &layers) as u32,
        anomaly: None,
        stream: None,
        alarm: None,
        trajectory: Some(layout),
        layers: &layers,
        tensors: &tensors,
    };
    let len = contents.encoded_len().unwrap();
    let mut words = vec![0u32; len.div_ceil(4)];
    let n = contents.encode(bytemuck::cast_slice_mut(&mut words)).unwrap();
    Built { words, len: n }
}

/// A plain 2-D flow (one ActNorm).
fn plain() -> Built {
    let v = |d: &'static [f32]| TensorRef { rows: d.len() as u32, cols: 1, data: TensorData::F32(d) };
    let tensors = [v(&[0.0, 0.0]), v(&[1.0, 1.0]), v(&[]), v(&[]), v(&[0.5, -0.5]), v(&[0.0, 1.0])];
    let layers = [LayerRecord::plain(LayerKind::ActNorm, 4, 2)];
    let contents = Contents {
        dim: 2,
        context_dim: 0,
        base: BaseKind::StdNormal,
        scratch_len: 4,
        anomaly: None,
        stream: None,
        alarm: None,
        trajectory: None,
        layers: &layers,
        tensors: &tensors,
    };
    let len = contents.encoded_len().unwrap();
    let mut words = vec![0u32; len.div_ceil(4)];
    let n = contents.encode(bytemuck::cast_slice_mut(&mut words)).unwrap();
    Built { words, len: n }
}

fn history() -> [Point; OBS] {
    [[1.0, 2.0], [1.3, 2.1], [1.7, 2.3]]
}

fn rotate(p: Point, a: f32, o: Point) -> Point {
    let (c, s) = (a.cos(), a.sin());
    [c * p[0] - s * p[1] + o[0], s * p[0] + c * p[1] + o[1]]
}

/// The grid of [`integral`]: `n × n` cells of side `cell`, centred on the last
/// position, and the first cell's centre.
const GRID: usize = 150;
const CELL: f32 = 0.06;

fn grid_origin() -> Point {
    let c = history()[OBS - 1];
    let half = GRID as f32 * CELL / 2.0;
    [c[0] - half + CELL / 2.0, c[1] - half + CELL / 2.0]
}

/// `(∫ p, ∫ p·q)` of a step's density over the grid, by the midpoint rule.
fn moments<const N: usize>(tr: &Tracker<'_, N, T>, step: usize, scratch: &mut [f32]) -> (f32, Point) {
    let mut grid = vec![0.0f32; GRID * GRID];
    let o = grid_origin();
    tr.log_density_grid(step, o, CELL, GRID, GRID, &mut grid, scratch).unwrap();
    let (mut mass, mut mean) = (0.0f32, [0.0f32; 2]);
    for (k, lp) in grid.iter().enumerate() {
        let p = lp.exp() * CELL * CELL;
        let q = [o[0] + (k % GRID) as f32 * CELL, o[1] + (k / GRID) as f32 * CELL];
        mass += p;
        mean = [mean[0] + p * q[0], mean[1] + p * q[1]];
    }
    (mass, mean)
}

#[test]
#[cfg_attr(miri, ignore = "statistical: thousands of flow evaluations, hours under Miri")]
fn step_densities_integrate_to_one_shared_and_per_step() {
    for per_step in [false, true] {
        let b = build(per_step, true, 3);
        let m = Model::load(b.bytes()).unwrap();
        let mut scratch = vec![0.0f32; m.scratch_len()];
        let mut tr = Tracker::<16, T>::new(m, 7).unwrap();
        tr.predict(&history(), &mut scratch).unwrap();
        for step in [1, 2, 4] {
            let (z, _) = moments(&tr, step, &mut scratch);
            assert!((z - 1.0).abs() < 0.02, "per_step={per_step} step {step}: ∫p = {z}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "statistical: thousands of flow evaluations, hours under Miri")]
fn the_chain_rule_holds_across_an_update() {
    let b = build(false, true, 5);
    let m = Model::load(b.bytes()).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut tr = Tracker::<64, T>::new(m, 1).unwrap();
    tr.predict(&history(), &mut scratch).unwrap();
    let future: Vec<Point> = (1..=T).map(|k| [1.7 + 0.35 * k as f32, 2.3 + 0.1 * k as f32]).collect();
    let joint = tr.log_prob_future(&future, &mut scratch).unwrap();
    let first = tr.log_density(1, future[0], &mut scratch).unwrap();
    tr.update(future[0], 0.1).unwrap();
    assert_eq!(tr.steps_left(), T - 1);
    let rest = tr.log_prob_future(&future[1..], &mut scratch).unwrap();
    // log p(x1..xT) = log p(x1) + log p(x2..xT | x1), exactly up to f32 rounding.
    assert!((joint - (first + rest)).abs() < 1e-4 * (1.0 + joint.abs()), "{joint} vs {first} + {rest}");
    // The next step's density after the update is the exact conditional.
    let next = tr.log_density(1, future[1], &mut scratch).unwrap();
    let two = tr.log_prob_future(&future[1..], &mut scratch).unwrap();
    assert!(next.is_finite() && two.is_finite());
}

#[test]
#[cfg_attr(miri, ignore = "statistical: thousands of flow evaluations, hours under Miri")]
fn the_heading_frame_makes_densities_rotation_invariant() {
    let b = build(false, true, 9);
    let m = Model::load(b.bytes()).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let future: Vec<Point> = (1..=T).map(|k| [1.7 + 0.4 * k as f32, 2.3 + 0.15 * k as f32 * k as f32]).collect();
    let mut values = Vec::new();
    for (a, o) in [(0.0f32, [0.0, 0.0]), (1.1, [3.0, -2.0]), (-2.5, [-7.0, 0.5])] {
        let h: Vec<Point> = history().iter().map(|&p| rotate(p, a, o)).collect();
        let f: Vec<Point> = future.iter().map(|&p| rotate(p, a, o)).collect();
        let mut tr = Tracker::<64, T>::new(m, 2).unwrap();
        tr.predict(&h, &mut scratch).unwrap();
        values.push((tr.log_prob_future(&f, &mut scratch).unwrap(), tr.log_density(1, f[0], &mut scratch).unwrap()));
    }
    for v in &values[1..] {
        assert!((v.0 - values[0].0).abs() < 1e-3 && (v.1 - values[0].1).abs() < 1e-3, "{values:?}");
    }
    // Without the heading frame, a rotation changes the density.
    let b = build(false, false, 9);
    let m = Model::load(b.bytes()).unwrap();
    let mut a = Tracker::<64, T>::new(m, 2).unwrap();
    let mut r = Tracker::<64, T>::new(m, 2).unwrap();
    a.predict(&history(), &mut scratch).unwrap();
    let h: Vec<Point> = history().iter().map(|&p| rotate(p, 1.1, [0.0; 2])).collect();
    r.predict(&h, &mut scratch).unwrap();
    let f: Vec<Point> = future.iter().map(|&p| rotate(p, 1.1, [0.0; 2])).collect();
    let (x, y) = (a.log_prob_future(&future, &mut scratch).unwrap(), r.log_prob_future(&f, &mut scratch).unwrap());
    assert!((x - y).abs() > 1e-3, "{x} {y}");
}

#[test]
#[cfg_attr(miri, ignore = "statistical: thousands of flow evaluations, hours under Miri")]
fn particles_follow_the_step_densities() {
    let b = build(false, true, 11);
    let m = Model::load(b.bytes()).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut tr = Tracker::<64, T>::new(m, 4).unwrap();
    tr.predict(&history(), &mut scratch).unwrap();
    // The mean of the density of step 1 against the particles' mean (64 draws).
    let (mass, m1) = moments(&tr, 1, &mut scratch);
    let mean = [m1[0] / mass, m1[1] / mass];
    let mut sample_mean = [0.0f32; 2];
    for i in 0..64 {
        let p = tr.position(i, 1).unwrap();
        sample_mean = [sample_mean[0] + p[0] / 64.0, sample_mean[1] + p[1] / 64.0];
    }
    let d = (mean[0] - sample_mean[0]).hypot(mean[1] - sample_mean[1]);
    assert!(d < 0.35, "density mean {mean:?}, particle mean {sample_mean:?}");
}

#[test]
#[cfg_attr(miri, ignore = "statistical: thousands of flow evaluations, hours under Miri")]
fn updates_reweight_resample_and_recompute() {
    let b = build(false, true, 13);
    let m = Model::load(b.bytes()).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut tr = Tracker::<64, T>::new(m, 3).unwrap();
    assert_eq!(tr.update([0.0, 0.0], 0.1), Err(Error::NothingToUpdate));
    tr.predict(&history(), &mut scratch).unwrap();
    assert!((tr.ess() - 64.0).abs() < 1e-3);
    let y = tr.position(5, 1).unwrap();
    let up = tr.update(y, 0.05).unwrap();
    assert!(up.ess >= 1.0 && up.ess < 64.0, "{up:?}");
    let total: f32 = (0..64).map(|i| tr.weight(i).unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);
    // The particle that sat on the observation weighs the most.
    let best = (0..64).max_by(|&a, &b| tr.weight(a).unwrap().total_cmp(&tr.weight(b).unwrap())).unwrap();
    assert_eq!(tr.weight(best), tr.weight(5));
    let best = 5;
    tr.resample().unwrap();
    assert!((tr.ess() - 64.0).abs() < 1e-3);
    // Resampling copied particles in proportion to their weights: the heaviest
    // one's future now appears several times.
    let copies = (0..64).filter(|&i| tr.position(i, 1) == tr.position(best, 1)).count();
    assert!(copies > 1, "{copies}");
    // A far observation with a tight sensor on a fresh prediction: the ESS
    // collapses, and a refresh follows.
    tr.predict(&history(), &mut scratch).unwrap();
    let far = [y[0] + 5.0, y[1] - 5.0];
    let up = tr.update_and_refresh(far, 0.01, 0.5, Refresh::Recompute, &mut scratch).unwrap();
    assert_eq!(up.refreshed, Some(Refresh::Recompute));
    assert_eq!(tr.steps_left(), T);
    // The recomputation predicted from the latest positions: its frame starts at `far`.
    assert_eq!(tr.frame().origin, far);
    for _ in 0..T {
        tr.update(far, 0.2).unwrap();
    }
    assert_eq!(tr.update(far, 0.2), Err(Error::NothingToUpdate));
}

#[test]
fn bad_calls_are_typed_errors() {
    let b = build(false, true, 17);
    let m = Model::load(b.bytes()).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    assert!(matches!(Tracker::<8, 5>::new(m, 0), Err(Error::HorizonMismatch { expected: 4, got: 5 })));
    let mut tr = Tracker::<8, T>::new(m, 0).unwrap();
    assert_eq!(tr.log_density(1, [0.0; 2], &mut scratch), Err(Error::NothingToUpdate));
    assert!(matches!(tr.predict(&history()[..2], &mut scratch), Err(Error::DimMismatch { .. })));
    assert_eq!(tr.predict(&[[0.0, f32::NAN], [0.0; 2], [1.0; 2]], &mut scratch), Err(Error::NonFiniteInput));
    assert!(matches!(tr.predict(&history(), &mut scratch[..3]), Err(Error::ScratchTooSmall { .. })));
    tr.predict(&history(), &mut scratch).unwrap();
    assert!(matches!(tr.log_density(0, [0.0; 2], &mut scratch), Err(Error::StepOutOfRange { step: 0, steps: 4 })));
    assert!(matches!(tr.log_density(5, [0.0; 2], &mut scratch), Err(Error::StepOutOfRange { .. })));
    assert_eq!(tr.update([0.0; 2], 0.0), Err(Error::InvalidArgument));
    assert_eq!(tr.update([f32::INFINITY, 0.0], 1.0), Err(Error::NonFiniteInput));
    assert!(matches!(tr.log_prob_future(&[[0.0; 2]; 3], &mut scratch), Err(Error::DimMismatch { .. })));
    // A plain model is no trajectory model.
    let b = plain();
    let plain = Model::load(b.bytes()).unwrap();
    assert!(matches!(Tracker::<8, T>::new(plain, 0), Err(Error::NotATrajectoryModel)));
    let _ = Frame::of(&history(), true).unwrap();
}

fn recrc(b: &mut [u8]) {
    let n = b.len();
    let crc = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn load_edited(b: &Built, edit: impl FnOnce(&mut [u8])) -> Result<(), Error> {
    let mut words = b.words.clone();
    let bytes = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..b.len];
    edit(bytes);
    recrc(bytes);
    Model::load(bytes).map(|_| ())
}

#[test]
fn malformed_trajectory_files_are_typed_errors() {
    let b = build(false, true, 19);
    assert_eq!(load_edited(&b, |_| {}), Ok(()));
    // Trajectory bytes without the flag, or the flag without a sane layout.
    assert_eq!(load_edited(&b, |x| x[hdr::FLAGS] &= !4), Err(Error::BadHeader));
    assert_eq!(load_edited(&b, |x| x[hdr::HORIZON] = 0), Err(Error::BadHeader));
    assert_eq!(load_edited(&b, |x| x[hdr::OBSERVED] = 1), Err(Error::BadHeader));
    assert_eq!(load_edited(&b, |x| x[hdr::TRAJECTORY_FLAGS] |= 8), Err(Error::BadHeader));
    // Per-step flows need T groups of layers (and no embedding).
    assert_eq!(load_edited(&b, |x| x[hdr::TRAJECTORY_FLAGS] |= 1), Err(Error::BadHeader));
    // The encoder must be layer 0, with the encoding width the context implies.
    let split = HEADER_LEN + crate::format::layout::layer::SPLIT;
    assert_eq!(load_edited(&b, |x| x[split] = 4), Err(Error::BadLayer(0)));
    assert_eq!(
        load_edited(&b, |x| x[HEADER_LEN + LAYER_RECORD_LEN] = LayerKind::Encoder as u8),
        Err(Error::BadLayer(1))
    );
    assert_eq!(load_edited(&b, |x| x[HEADER_LEN] = LayerKind::ActNorm as u8), Err(Error::BadLayer(0)));
    let flags = HEADER_LEN + crate::format::layout::layer::FLAGS;
    assert_eq!(load_edited(&b, |x| x[flags] = FLAG_RESIDUAL), Err(Error::ShapeMismatch(0)));
}
