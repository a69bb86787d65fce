//! The bounds program, written once: each public runtime call on each model,
//! timed and with its own stack measured (painted before the call), over
//! adversarial inputs. Compiled into the firmware and into `cargo xtask qemu`
//! like `script.rs`: every result line is diffed bit for bit against the host;
//! the `measure bound` lines (device only) become the README's bounds table.

use floe_runtime::format::LayerKind;
use floe_runtime::{Error, Model, Rng};

use super::script::{Clock, Sink, SAMPLE_SEED};

/// The board's stack, for per-call high-water marks.
pub trait Stack {
    /// Fill the unused stack (below the caller's frame) with the paint pattern.
    fn paint(&mut self);
    /// Bytes from the top of the stack to the current stack pointer.
    fn depth(&mut self) -> u32;
    /// Bytes from the top of the stack to the deepest word written since
    /// [`Stack::paint`].
    fn high_water(&mut self) -> u32;
}

/// Inputs each model's `log_prob` is measured on (see [`case_value`]).
pub const CASES: u32 = 10;
/// Seeded samples drawn per model.
pub const SAMPLES: u32 = 4;

/// Coordinate `j` (of `n`) of case `k`, in standard deviations from the mean:
/// 0 the mean; 1 ±0.5; 2 and 3 just inside the first spline's tail bound `b`
/// (its last bin, then its first); 4 ±3.5 (the tails); 6 ±40 (far outside
/// every spline: identity tails); 7 ±1e30 (overflows inside the flow); 8 NaN in
/// the last coordinate and 9 +∞ in the first (rejected on entry), the others
/// ±0.5. Case 5 is not relative to the mean: [`fill`] sets the input itself to
/// ±1e-39 (subnormal data values; relative to a non-zero mean they would round
/// to the mean).
pub fn case_value(k: u32, j: usize, n: usize, b: f32) -> f32 {
    let alt = if j.is_multiple_of(2) { 1.0 } else { -1.0 };
    match k {
        0 => 0.0,
        2 => 0.999 * b,
        3 => -0.999 * b,
        4 => 3.5 * alt,
        5 => 1e-39 * alt,
        6 => 40.0 * alt,
        7 => 1e30 * alt,
        8 if j + 1 == n => f32::NAN,
        9 if j == 0 => f32::INFINITY,
        _ => 0.5 * alt,
    }
}

/// The tail bound of the model's first spline layer (3 if it has none).
fn first_spline_bound(model: &Model<'_>) -> f32 {
    (0..model.n_layers())
        .filter_map(|i| model.layer_info(i).ok())
        .find(|l| matches!(l.record.kind, LayerKind::SplineCoupling | LayerKind::MadeSpline))
        .map_or(3.0, |l| l.record.param)
}

/// `x = mean + s·std` with `s` from [`case_value`] (case 5: `x = s`); the
/// context at case 1.
fn fill(model: &Model<'_>, k: u32, x: &mut [f32], ctx: &mut [f32]) {
    let b = first_spline_bound(model);
    let (mean, std) = model.standardization();
    let n = x.len();
    for (j, ((v, m), s)) in x.iter_mut().zip(mean).zip(std).enumerate() {
        *v = if k == 5 { case_value(k, j, n, b) } else { m + case_value(k, j, n, b) * s };
    }
    let (mean, std) = model.context_standardization();
    let n = ctx.len();
    for (j, ((v, m), s)) in ctx.iter_mut().zip(mean).zip(std).enumerate() {
        *v = m + case_value(1, j, n, b) * s;
    }
}

/// The board's counter and stack, and where results go: what every measured
/// call needs.
pub struct Probe<'a, S: Sink, C: Clock, K: Stack> {
    /// Results and measurements.
    pub sink: &'a mut S,
    /// The instruction counter.
    pub clock: &'a mut C,
    /// The stack probe.
    pub stack: &'a mut K,
}

impl<S: Sink, C: Clock, K: Stack> Probe<'_, S, C, K> {
    /// Time `f` and measure its own stack; report both as `measure bound`.
    fn measured<T>(&mut self, what: &'static str, i: u32, f: impl FnOnce() -> T) -> T {
        self.stack.paint();
        let depth = self.stack.depth();
        let t0 = self.clock.now();
        let r = core::hint::black_box(call(f));
        let t1 = self.clock.now();
        let used = self.stack.high_water().saturating_sub(depth);
        self.sink.bound(what, i, t1.saturating_sub(t0), used);
        r
    }

    fn report(&mut self, what: &'static str, i: u32, r: Result<f32, Error>) {
        match r {
            Ok(v) => self.sink.value(what, i, 0, v),
            Err(e) => self.sink.error(what, i, e),
        }
    }
}

/// Calls `f` in a frame of its own, below the stack depth `measured` read:
/// inlined into `measured`, the call's locals would sit in its frame and escape
/// the measurement.
#[inline(never)]
fn call<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// The bounds program on one model: `Model::load`; `log_prob` on every case;
/// `score`, `forward` and `inverse` (of that latent) at case 1; [`SAMPLES`]
/// seeded samples; a stream model's pushes; a trajectory model's tracker calls.
/// `row` holds at least `2 · dim + context_dim` values.
pub fn bounds<S: Sink, C: Clock, K: Stack>(
    bytes: &[u8],
    row: &mut [f32],
    scratch: &mut [f32],
    p: &mut Probe<'_, S, C, K>,
) -> Result<(), Error> {
    let bytes = core::hint::black_box(bytes);
    let model = p.measured("load", 0, || Model::load(bytes))?;
    let (d, c) = (model.dim(), model.context_dim());
    let Some(buf) = row.get_mut(..2 * d + c) else {
        return Err(Error::DimMismatch { expected: (2 * d + c) as u32, got: row.len() as u32 });
    };
    let (x, rest) = buf.split_at_mut(d);
    let (ctx, z) = rest.split_at_mut(c);
    for k in 0..CASES {
        fill(&model, k, x, ctx);
        let lp = p.measured("log_prob", k, || model.log_prob(x, ctx, scratch));
        p.report("bound-logp", k, lp);
    }
    fill(&model, 1, x, ctx);
    let s = p.measured("score", 1, || model.score(x, ctx, scratch));
    p.report("bound-score", 1, s.map(|s| s.nats));
    let ld = p.measured("forward", 1, || model.forward(x, ctx, z, scratch));
    p.report("bound-forward-logdet", 1, ld);
    for (j, v) in z.iter().enumerate() {
        p.sink.value("bound-z", 1, j as u32, *v);
    }
    let ld = p.measured("inverse", 1, || model.inverse(z, ctx, x, scratch));
    p.report("bound-inverse-logdet", 1, ld);
    for (j, v) in x.iter().enumerate() {
        p.sink.value("bound-x", 1, j as u32, *v);
    }
    let mut rng = Rng::new(SAMPLE_SEED);
    for i in 0..SAMPLES {
        let lp = p.measured("sample", i, || model.sample(&mut rng, ctx, x, scratch));
        p.report("bound-sample-logp", i, lp);
        for (j, v) in x.iter().enumerate() {
            p.sink.value("bound-sample", i, j as u32, *v);
        }
    }
    if model.stream_layout().is_some() {
        stream_calls(model, scratch, p)?;
    }
    if model.trajectory_layout().is_some() {
        tracker_calls(model, scratch, p)?;
    }
    Ok(())
}

/// A stream model's `Stream::push`, each push measured, over a deterministic
/// series long enough to fill the window and score [`STREAM_SCORES`] windows.
#[inline(never)]
fn stream_calls<S: Sink, C: Clock, K: Stack>(
    model: Model<'_>,
    scratch: &mut [f32],
    p: &mut Probe<'_, S, C, K>,
) -> Result<(), Error> {
    use super::script::{STREAM_CAPACITY, STREAM_MAX_CHANNELS};
    let layout = model.stream_layout().ok_or(Error::NotAStreamModel)?;
    let c = layout.channels as usize;
    let mut st = floe_runtime::Stream::<STREAM_CAPACITY>::new(model)?;
    let mut buf = [0.0f32; STREAM_MAX_CHANNELS];
    let sample = buf.get_mut(..c).ok_or(Error::DimMismatch { expected: c as u32, got: STREAM_MAX_CHANNELS as u32 })?;
    let pushes = layout.window as u32 + STREAM_SCORES;
    for t in 0..pushes {
        for (ch, v) in sample.iter_mut().enumerate() {
            *v = ((t as usize * 37 + ch * 11) % 17) as f32 / 8.0 - 1.0;
        }
        let r = p.measured("stream-push", t, || st.push(sample, scratch))?;
        if let Some(score) = r {
            p.sink.value("bound-stream-score", t, 0, score.nats);
        }
    }
    Ok(())
}

/// Windows a stream model scores in [`stream_calls`].
pub const STREAM_SCORES: u32 = 4;

/// A trajectory model's tracker calls, each measured: `predict` from a straight
/// walk, `log_prob_future`, `log_density` one and six steps ahead, `update`.
/// The tracker itself lives in this function's frame (its size is the
/// trajectory program's `tracker` figure), not in the calls' own stack.
#[inline(never)]
fn tracker_calls<S: Sink, C: Clock, K: Stack>(
    model: Model<'_>,
    scratch: &mut [f32],
    p: &mut Probe<'_, S, C, K>,
) -> Result<(), Error> {
    use super::script::{TrajTracker, TRAJ_HORIZON, TRAJ_SIGMA, TRAJ_WINDOW};
    let observed = model.trajectory_layout().ok_or(Error::NotATrajectoryModel)?.observed as usize;
    let mut walk = [[0.0f32; 2]; TRAJ_WINDOW];
    for (i, p) in walk.iter_mut().enumerate() {
        *p = [0.4 * i as f32, 0.1 * i as f32 + 0.02 * (i % 3) as f32];
    }
    let (history, future) = walk.split_at(observed.min(TRAJ_WINDOW));
    let future = future
        .get(..TRAJ_HORIZON)
        .ok_or(Error::HorizonMismatch { expected: TRAJ_HORIZON as u32, got: future.len() as u32 })?;
    let mut tracker = TrajTracker::new(model, SAMPLE_SEED)?;
    p.measured("predict", 0, || tracker.predict(history, scratch))?;
    let joint = p.measured("log_prob_future", 0, || tracker.log_prob_future(future, scratch));
    p.report("bound-traj-joint", 0, joint);
    for (i, step) in [1usize, 6].into_iter().enumerate() {
        let q = future.get(step - 1).copied().unwrap_or([0.0; 2]);
        let d = p.measured("log_density", i as u32, || tracker.log_density(step, q, scratch));
        p.report("bound-traj-density", i as u32, d);
    }
    let y = future.first().copied().unwrap_or([0.0; 2]);
    let up = p.measured("update", 0, || tracker.update(y, TRAJ_SIGMA))?;
    p.sink.value("bound-traj-ess", 0, 0, up.ess);
    Ok(())
}
