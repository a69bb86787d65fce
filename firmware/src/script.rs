//! What the firmware programs compute, written once.
//!
//! This file is compiled twice: into the firmware (where a [`Sink`] prints through
//! defmt) and into `cargo xtask qemu` on the host (where it prints to a string).
//! The host's lines are the expected output; the device's decoded lines must equal
//! them byte for byte, and every f32 is printed with its bit pattern, so the diff
//! is bit-exact. It depends on nothing but `floe_runtime` and `core`.

use floe_runtime::{Error, Model, Rng};

/// Seed of the samples the golden program draws.
pub const SAMPLE_SEED: u64 = 0x5EED_F10E;
/// Number of samples the golden program draws.
pub const N_SAMPLES: u32 = 16;
/// Repetitions of each timed call in the cost program.
pub const COST_REPEATS: u32 = 4;
/// Side of the square dense layer timed in the cost program.
pub const DENSE_N: usize = 32;

/// Where results go. Every line except [`Sink::cost`] is deterministic and diffed.
pub trait Sink {
    /// The start of a model's results.
    fn begin(&mut self, name: &str);
    /// The loaded model's shape.
    fn model(&mut self, bytes: u32, dim: u32, context_dim: u32, layers: u32, scratch_words: u32);
    /// A named f32 result with two indices (row / sample, coordinate).
    fn value(&mut self, what: &'static str, i: u32, j: u32, v: f32);
    /// A named integer result.
    fn int(&mut self, what: &'static str, i: u32, j: u32, v: i32);
    /// A call that returned an error (expected for the deliberately bad calls).
    fn error(&mut self, what: &'static str, i: u32, e: Error);
    /// A measurement: `ticks` of the board's counter spent on `calls` calls of
    /// `what` (device only; not diffed, since the host has no such counter).
    fn cost(&mut self, what: &'static str, calls: u32, ticks: u64);
    /// A measurement of one call (the bounds program): `ticks` of the board's
    /// counter and `stack` bytes of the call's own stack (device only; not
    /// diffed).
    fn bound(&mut self, what: &'static str, i: u32, ticks: u64, stack: u32);
}

/// A tick counter: SysTick on the core clock, so cycles on a real board and a
/// fixed number of instructions per tick under QEMU `-icount shift=0`.
///
/// A 24-bit SysTick wraps every 2^24 ticks; the Cortex-M clock counts the wraps
/// in the SysTick exception, so `now` is exact however long a timed call runs
/// (the RISC-V clock is the 64-bit `instret`).
pub trait Clock {
    /// Ticks so far (monotonic).
    fn now(&mut self) -> u64;
}

/// Decode row `row` of `inputs` (little-endian f32, `x.len() + ctx.len()` per row).
fn read_row(inputs: &[u8], row: usize, x: &mut [f32], ctx: &mut [f32]) -> bool {
    let width = 4 * (x.len() + ctx.len());
    let Some(bytes) = inputs.get(row * width..(row + 1) * width) else {
        return false;
    };
    let mut words = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    for v in x.iter_mut().chain(ctx.iter_mut()) {
        *v = words.next().unwrap_or(f32::NAN);
    }
    true
}

/// Load the model and check the row buffers fit it.
fn open<'a>(bytes: &'a [u8], x: &[f32], ctx: &[f32]) -> Result<Model<'a>, Error> {
    let model = Model::load(bytes)?;
    if x.len() != model.dim() {
        return Err(Error::DimMismatch { expected: model.dim() as u32, got: x.len() as u32 });
    }
    if ctx.len() != model.context_dim() {
        return Err(Error::ContextMismatch { expected: model.context_dim() as u32, got: ctx.len() as u32 });
    }
    Ok(model)
}

/// The model's shape, to the sink.
fn describe(sink: &mut impl Sink, model: &Model<'_>) {
    sink.model(
        model.file_len() as u32,
        model.dim() as u32,
        model.context_dim() as u32,
        model.n_layers() as u32,
        model.scratch_len() as u32,
    );
}

fn report(sink: &mut impl Sink, what: &'static str, i: u32, r: Result<f32, Error>) {
    match r {
        Ok(v) => sink.value(what, i, 0, v),
        Err(e) => sink.error(what, i, e),
    }
}

/// The golden program: load the model, evaluate `log_prob` on every input row,
/// check the typed errors of bad calls, and draw [`N_SAMPLES`] seeded samples
/// (each coordinate, its `log p`, and `log_prob` re-evaluated at the sample).
pub fn golden(
    bytes: &[u8],
    inputs: &[u8],
    x: &mut [f32],
    ctx: &mut [f32],
    scratch: &mut [f32],
    sink: &mut impl Sink,
) -> Result<(), Error> {
    let model = open(bytes, x, ctx)?;
    describe(sink, &model);
    let mut row = 0;
    while read_row(inputs, row, x, ctx) {
        let lp = model.log_prob(x, ctx, scratch)?;
        sink.value("logp", row as u32, 0, lp);
        row += 1;
    }
    // Bad calls give typed errors, on the device as on the host.
    if read_row(inputs, 0, x, ctx) {
        let d = x.len();
        report(sink, "short-input", 0, model.log_prob(&x[..d - 1], ctx, scratch));
        report(sink, "small-scratch", 0, model.log_prob(x, ctx, &mut scratch[..1]));
        x[d / 2] = f32::NAN;
        report(sink, "nan-input", 0, model.log_prob(x, ctx, scratch));
        x[d / 2] = f32::INFINITY;
        report(sink, "inf-input", 0, model.log_prob(x, ctx, scratch));
    }
    // Seeded samples; the unconditional model ignores `ctx` (empty), a conditional
    // one samples at the first row's context.
    let mut rng = Rng::new(SAMPLE_SEED);
    for i in 0..N_SAMPLES {
        let lp = model.sample(&mut rng, ctx, x, scratch)?;
        for (j, v) in x.iter().enumerate() {
            sink.value("sample", i, j as u32, *v);
        }
        sink.value("sample-logp", i, 0, lp);
        report(sink, "sample-logp-eval", i, model.log_prob(x, ctx, scratch));
    }
    Ok(())
}

/// The cost program, per model: ticks per `Model::load`, per `log_prob` (over
/// all input rows) and per `sample` (`kernel_cost.rs` times the dense kernels).
/// Each timed call's result goes to the sink too, so the timed work is also
/// checked against the host.
pub fn cost(
    bytes: &[u8],
    inputs: &[u8],
    x: &mut [f32],
    ctx: &mut [f32],
    scratch: &mut [f32],
    sink: &mut impl Sink,
    clock: &mut impl Clock,
) -> Result<(), Error> {
    // Opaque to the optimizer: everything here is known at compile time on the
    // device, and folded-away work would not be measured.
    let bytes = core::hint::black_box(bytes);
    let inputs = core::hint::black_box(inputs);
    let model = open(bytes, x, ctx)?;
    // The clock's own overhead, to subtract.
    let t0 = clock.now();
    let t1 = clock.now();
    let overhead = t1.saturating_sub(t0);

    // Model::load (validation, CRC over the whole file).
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        Model::load(bytes)?;
        clock.now();
    }
    let t1 = clock.now();
    sink.cost("load", COST_REPEATS, t1.saturating_sub(t0).saturating_sub(overhead));

    // log_prob over every input row, COST_REPEATS times.
    let mut acc = 0.0f32;
    let mut calls = 0u32;
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        let mut row = 0;
        while read_row(inputs, row, x, ctx) {
            acc += model.log_prob(x, ctx, scratch)?;
            row += 1;
            calls += 1;
            clock.now();
        }
    }
    let t1 = clock.now();
    sink.cost("log_prob", calls, t1.saturating_sub(t0).saturating_sub(overhead));
    sink.value("log_prob-sum", calls, 0, acc);

    // sample (includes the base draw and the inverse pass).
    let mut rng = Rng::new(SAMPLE_SEED);
    let mut acc = 0.0f32;
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        acc += model.sample(&mut rng, ctx, x, scratch)?;
        clock.now();
    }
    let t1 = clock.now();
    sink.cost("sample", COST_REPEATS, t1.saturating_sub(t0).saturating_sub(overhead));
    sink.value("sample-logp-sum", COST_REPEATS, 0, acc);

    Ok(())
}

/// A model to run: its name, bytes (16-byte aligned) and input rows.
pub type ModelRef<'a> = (&'a str, &'a [u8], &'a [u8]);

/// A program run on one model: `(model bytes, inputs, x, context, scratch, sink)`.
pub type Program<'p, S> = dyn FnMut(&[u8], &[u8], &mut [f32], &mut [f32], &mut [f32], &mut S) -> Result<(), Error> + 'p;

/// Run `program` on every model: a `begin` line, then its results. `row` must hold
/// the largest `dim + context_dim`, `scratch` the largest scratch.
pub fn each_model<S: Sink>(
    models: &[ModelRef<'_>],
    row: &mut [f32],
    scratch: &mut [f32],
    sink: &mut S,
    program: &mut Program<'_, S>,
) -> Result<(), Error> {
    for &(name, bytes, inputs) in models {
        sink.begin(name);
        let model = Model::load(bytes)?;
        let (d, c) = (model.dim(), model.context_dim());
        let Some(buf) = row.get_mut(..d + c) else {
            return Err(Error::DimMismatch { expected: (d + c) as u32, got: row.len() as u32 });
        };
        let (x, ctx) = buf.split_at_mut(d);
        program(bytes, inputs, x, ctx, scratch, sink)?;
    }
    Ok(())
}

/// Capacity (values) of the `stream` program's history ring: at least the
/// model's window × channels.
pub const STREAM_CAPACITY: usize = 256;
/// Most channels the `stream` program handles.
pub const STREAM_MAX_CHANNELS: usize = 8;

/// The stream program: push every sample of `series` (raw little-endian f32,
/// `channels` per sample) through `floe_runtime::Stream`, report each window above
/// the model's threshold, each alarm the file's rule raises and clears, the
/// top-scoring window, the counts, the ticks per window, and the typed errors of
/// rejected samples.
pub fn stream(
    bytes: &[u8],
    series: &[u8],
    scratch: &mut [f32],
    sink: &mut impl Sink,
    clock: &mut impl Clock,
) -> Result<(), Error> {
    use floe_runtime::Stream;
    let model = Model::load(core::hint::black_box(bytes))?;
    let layout = model.stream_layout().ok_or(Error::NotAStreamModel)?;
    let c = layout.channels as usize;
    let mut sample = [0.0f32; STREAM_MAX_CHANNELS];
    let sample =
        sample.get_mut(..c).ok_or(Error::DimMismatch { expected: c as u32, got: STREAM_MAX_CHANNELS as u32 })?;
    let mut st = Stream::<STREAM_CAPACITY>::new(model)?;
    let (mut top_t, mut top) = (0u32, f32::NEG_INFINITY);
    let (mut windows, mut above, mut raised) = (0u32, 0i32, 0i32);
    if let Some(r) = st.alarm_rule() {
        sink.int("alarm-rule", u32::from(r.window), u32::from(r.raise), i32::from(r.clear));
    }
    let t0 = clock.now();
    for (t, chunk) in series.chunks_exact(4 * c).enumerate() {
        for (v, b) in sample.iter_mut().zip(chunk.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let pushed = st.push(sample, scratch)?;
        clock.now();
        if let Some(s) = pushed {
            windows += 1;
            if s.nats > top {
                top = s.nats;
                top_t = t as u32;
            }
            if s.anomaly == Some(true) {
                above += 1;
                sink.value("above", t as u32, 0, s.nats);
            }
            match st.alarm() {
                Some(a) if a.raised => {
                    raised += 1;
                    sink.int("raised", t as u32, 0, i32::from(a.above));
                }
                Some(a) if a.cleared => sink.int("cleared", t as u32, 0, i32::from(a.above)),
                _ => {}
            }
        }
    }
    let t1 = clock.now();
    sink.cost("stream-window", windows, t1.saturating_sub(t0));
    sink.value("top", top_t, 0, top);
    sink.int("windows", 0, 0, windows as i32);
    sink.int("above-total", 0, 0, above);
    sink.int("alarms", 0, 0, raised);
    // Rejected samples: typed errors, and the stream carries on unchanged.
    let mut st = Stream::<STREAM_CAPACITY>::new(model)?;
    sample.fill(f32::NAN);
    report(sink, "stream-nan", 0, st.push(sample, scratch).map(|_| 0.0));
    sample.fill(0.5);
    report(sink, "stream-seq", 0, st.push_seq(7, sample, scratch).map(|_| 0.0));
    report(sink, "stream-seq", 1, st.push_seq(9, sample, scratch).map(|_| 0.0));
    report(sink, "stream-width", 0, st.push(&[], scratch).map(|_| 0.0));
    Ok(())
}

/// Particles of the trajectory program's tracker.
pub const TRAJ_PARTICLES: usize = 64;
/// Steps the trajectory program's model predicts.
pub const TRAJ_HORIZON: usize = 12;
/// Positions per stored window: the model's observed history and the future.
pub const TRAJ_WINDOW: usize = 20;
/// Sensor noise of the updates, metres.
pub const TRAJ_SIGMA: f32 = 0.05;
/// Updates applied along each real track.
pub const TRAJ_UPDATES: usize = 4;

/// The tracker the trajectory program runs.
pub type TrajTracker<'m> = floe_runtime::trajectory::Tracker<'m, TRAJ_PARTICLES, TRAJ_HORIZON>;

/// Window `k` of `windows` (raw little-endian f32, `TRAJ_WINDOW` positions of
/// `x, y` each), or `None` past the end.
fn read_window(windows: &[u8], k: usize, out: &mut [[f32; 2]; TRAJ_WINDOW]) -> bool {
    let n = 8 * TRAJ_WINDOW;
    let Some(bytes) = windows.get(k * n..(k + 1) * n) else {
        return false;
    };
    for (p, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *p = [f32::from_le_bytes([b[0], b[1], b[2], b[3]]), f32::from_le_bytes([b[4], b[5], b[6], b[7]])];
    }
    true
}

/// The trajectory program: for every stored real window, predict from its
/// observed history (`TRAJ_PARTICLES` sampled futures), report sampled
/// positions, the exact joint log-density of the true future, the density of
/// the next position and of a later one (particle mixture), then apply
/// `TRAJ_UPDATES` updates along the true track (effective sample sizes) and the
/// next-step density after them; finally the typed errors of bad calls. Predict,
/// update and the queries are timed.
pub fn trajectory(
    windows: &[u8],
    tracker: &mut TrajTracker<'_>,
    scratch: &mut [f32],
    sink: &mut impl Sink,
    clock: &mut impl Clock,
) -> Result<(), Error> {
    let model = *tracker.model();
    let observed = model.trajectory_layout().ok_or(Error::NotATrajectoryModel)?.observed as usize;
    if observed + TRAJ_HORIZON != TRAJ_WINDOW {
        return Err(Error::DimMismatch { expected: TRAJ_WINDOW as u32, got: (observed + TRAJ_HORIZON) as u32 });
    }
    describe(sink, &model);
    let mut w = [[0.0f32; 2]; TRAJ_WINDOW];
    let (mut t_predict, mut t_update, mut t_next, mut t_mix) = (0u64, 0u64, 0u64, 0u64);
    let mut k = 0;
    while read_window(windows, k, &mut w) {
        let (history, future) = w.split_at(observed);
        let i = k as u32;
        let t0 = clock.now();
        tracker.predict(history, scratch)?;
        let t1 = clock.now();
        t_predict += t1.saturating_sub(t0);
        for p in [0usize, TRAJ_PARTICLES / 2, TRAJ_PARTICLES - 1] {
            for step in [1usize, 6, TRAJ_HORIZON] {
                let q = tracker.position(p, step).ok_or(Error::Internal)?;
                sink.value("traj-pos", i, (p * 100 + step) as u32, q[0]);
                sink.value("traj-pos", i, (p * 100 + step) as u32 + 50, q[1]);
            }
        }
        sink.value("traj-joint", i, 0, tracker.log_prob_future(future, scratch)?);
        let t0 = clock.now();
        let next = tracker.log_density(1, future[0], scratch)?;
        let t1 = clock.now();
        let mix = tracker.log_density(6, future[5], scratch)?;
        let t2 = clock.now();
        t_next += t1.saturating_sub(t0);
        t_mix += t2.saturating_sub(t1);
        sink.value("traj-next", i, 0, next);
        sink.value("traj-step6", i, 0, mix);
        for (u, &y) in future[..TRAJ_UPDATES].iter().enumerate() {
            let t0 = clock.now();
            let up = tracker.update(y, TRAJ_SIGMA)?;
            let t1 = clock.now();
            t_update += t1.saturating_sub(t0);
            sink.value("traj-ess", i, u as u32, up.ess);
        }
        sink.value("traj-after", i, 0, tracker.log_density(1, future[TRAJ_UPDATES], scratch)?);
        k += 1;
    }
    let n = k as u32;
    sink.cost("traj-predict", n, t_predict);
    sink.cost("traj-update", n * TRAJ_UPDATES as u32, t_update);
    sink.cost("traj-query-next", n, t_next);
    sink.cost("traj-query-step6", n, t_mix);
    sink.int("traj-windows", 0, 0, n as i32);
    // Bad calls: typed errors, and the tracker is unchanged.
    if read_window(windows, 0, &mut w) {
        let (history, future) = w.split_at_mut(observed);
        report(sink, "traj-short-history", 0, tracker.predict(&history[1..], scratch).map(|_| 0.0));
        history[0][0] = f32::NAN;
        report(sink, "traj-nan-history", 0, tracker.predict(history, scratch).map(|_| 0.0));
        report(sink, "traj-bad-sigma", 0, tracker.update(future[0], 0.0).map(|u| u.ess));
        report(sink, "traj-step-range", 0, tracker.log_density(0, future[0], scratch));
        report(sink, "traj-small-scratch", 0, tracker.log_density(1, future[0], &mut scratch[..1]));
    }
    Ok(())
}
