//! The lines `ffi/examples/check.c` must print, computed with the Rust runtime
//! directly (not through the C ABI): the reference the C program's output is
//! diffed against, every float by its bits.

use floe_ffi::{
    FLOE_ABI_VERSION, FLOE_MODEL_WORDS, FLOE_STREAM_CAPACITY, FLOE_STREAM_WORDS, FLOE_TRACKER_HORIZON,
    FLOE_TRACKER_PARTICLES, FLOE_TRACKER_WORDS,
};
use floe_runtime::trajectory::{Point, Tracker};
use floe_runtime::{Error, Model, Rng, Stream};

use crate::host::aligned;

/// The files the check runs on (`firmware/assets/`), by name.
pub const FILES: [&str; 7] = [
    "thyroid.floe",
    "thyroid-int8.floe",
    "thyroid.f32",
    "ucr-int8.floe",
    "ucr-test.f32",
    "traj-int8.floe",
    "traj-windows.f32",
];

/// The C program's message buffer: messages are cut to one byte less.
const MESSAGE_BUF: usize = 96;
/// The C program's scratch buffer, floats.
const SCRATCH: usize = 16384;
const C_NULL: i32 = 100;
const C_UNINITIALIZED: i32 = 101;

struct Out {
    lines: Vec<String>,
}

fn hex(v: f32) -> String {
    format!("{:#010x}", v.to_bits())
}

impl Out {
    fn value(&mut self, what: &str, i: usize, j: usize, v: f32) {
        self.lines.push(format!("{what} {i} {j} {}", hex(v)));
    }

    /// What check.c's `error()` prints for a status (code, numbers, message).
    fn status(&mut self, what: &str, i: usize, code: i32, detail: (u32, u32), msg: &str) {
        let mut m = msg.to_owned();
        m.truncate(MESSAGE_BUF - 1);
        self.lines.push(format!("{what} {i} 0 error {code} {} {} {m}", detail.0, detail.1));
    }

    fn result<T>(&mut self, what: &str, i: usize, r: Result<T, Error>) {
        match r {
            Ok(_) => self.status(what, i, 0, (0, 0), "ok"),
            Err(e) => self.status(what, i, i32::from(e.code()), e.details(), &e.to_string()),
        }
    }

    fn null(&mut self, what: &str, i: usize) {
        self.status(what, i, C_NULL, (0, 0), "a required pointer argument is null");
    }
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// `bytes` in 4-byte aligned storage, and its view.
fn view(words: &[u128], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u128, u8>(words)[..len]
}

fn model_lines(o: &mut Out, name: &str, file: &[u8], rows: &[u8]) -> Result<(), Error> {
    let w = aligned(file);
    let m = Model::load(view(&w, file.len()))?;
    o.lines.push(format!(
        "model {name} dim={} context={} layers={} scratch={} batch-scratch={} bytes={}",
        m.dim(),
        m.context_dim(),
        m.n_layers(),
        m.scratch_len(),
        m.batch_scratch_len(),
        m.file_len()
    ));
    let d = m.dim();
    let all = floats(rows);
    let n = all.len() / d;
    let all = &all[..n * d];
    let mut s = vec![0.0f32; SCRATCH];
    for (r, x) in all.chunks_exact(d).enumerate() {
        o.value("logp", r, 0, m.log_prob(x, &[], &mut s)?);
    }
    let mut batch = vec![0.0f32; n];
    m.log_prob_batch(all, &[], &mut batch, &mut s)?;
    for (r, v) in batch.iter().enumerate() {
        o.value("batch", r, 0, *v);
    }
    for (r, x) in all.chunks_exact(d).take(4).enumerate() {
        let sc = m.score(x, &[], &mut s)?;
        let verdict = sc.anomaly.map_or(-1, i32::from);
        o.lines.push(format!("score {r} 0 {} {} {verdict}", hex(sc.nats), hex(sc.per_dim)));
        let mut z = vec![0.0f32; d];
        let ld = m.forward(x, &[], &mut z, &mut s)?;
        for (j, v) in z.iter().enumerate() {
            o.value("z", r, j, *v);
        }
        o.value("forward-logdet", r, 0, ld);
        let mut back = vec![0.0f32; d];
        let ld = m.inverse(&z, &[], &mut back, &mut s)?;
        for (j, v) in back.iter().enumerate() {
            o.value("x", r, j, *v);
        }
        o.value("inverse-logdet", r, 0, ld);
    }
    let mut rng = Rng::new(7);
    for i in 0..3 {
        let mut x = vec![0.0f32; d];
        let lp = m.sample(&mut rng, &[], &mut x, &mut s)?;
        for (j, v) in x.iter().enumerate() {
            o.value("sample", i, j, *v);
        }
        o.value("sample-logp", i, 0, lp);
    }
    let mut x = all[..d].to_vec();
    o.result("short-input", 0, m.log_prob(&x[..d - 1], &[], &mut s));
    o.result("small-scratch", 0, m.log_prob(&x, &[], &mut s[..1]));
    let ctx = [x[0], x[1]];
    o.result("context", 0, m.log_prob(&x, &ctx, &mut s));
    x[d / 2] = f32::NAN;
    o.result("nan-input", 0, m.log_prob(&x, &[], &mut s));
    o.null("null-input", 0);
    o.null("null-output", 0);
    o.value("untouched", 0, 0, 12345.0);
    o.result("batch-rows", 0, m.log_prob_batch(&all[..n * d - 1], &[], &mut batch, &mut s));
    Ok(())
}

fn stream_lines(o: &mut Out, file: &[u8], series: &[u8]) -> Result<(), Error> {
    let w = aligned(file);
    let m = Model::load(view(&w, file.len()))?;
    let mut st = Stream::<FLOE_STREAM_CAPACITY>::new(m)?;
    let layout = m.stream_layout().ok_or(Error::NotAStreamModel)?;
    let c = usize::from(layout.channels);
    let thr = m.anomaly_threshold().map_or(0.0, |t| t.threshold);
    o.lines.push(format!("stream {} {c} {}", layout.window, hex(thr)));
    let xs = floats(series);
    let mut s = vec![0.0f32; SCRATCH];
    let (mut windows, mut raised, mut top_t, mut top) = (0u32, 0u32, 0usize, f32::NEG_INFINITY);
    for (t, x) in xs.chunks_exact(c).enumerate() {
        let Some(sc) = st.push_seq(t as u32, x, &mut s)? else { continue };
        windows += 1;
        if sc.nats > top {
            top = sc.nats;
            top_t = t;
        }
        if sc.anomaly == Some(true) {
            o.value("above", t, 0, sc.nats);
        }
        if let Some(a) = st.alarm() {
            if a.raised || a.cleared {
                o.lines.push(format!("{} {t} {}", if a.raised { "raised" } else { "cleared" }, a.above));
                raised += u32::from(a.raised);
            }
        }
    }
    o.value("top", top_t, 0, top);
    o.lines.push(format!("windows {windows} {raised}"));
    let mut sample = vec![0.5f32; c];
    o.result("stream-seq", 0, st.push_seq(3, &sample, &mut s));
    sample.push(0.5);
    o.result("stream-width", 0, st.push(&sample, &mut s));
    sample.pop();
    sample[0] = f32::INFINITY;
    o.result("stream-inf", 0, st.push(&sample, &mut s));
    st.reset();
    o.lines.push(format!("needed {} 0", st.samples_needed()));
    Ok(())
}

/// What `floe_tracker_position` reports for a position the tracker does not have.
fn position_error(steps_left: usize, particle: usize, step: usize) -> Error {
    if steps_left == 0 {
        Error::NothingToUpdate
    } else if particle >= FLOE_TRACKER_PARTICLES {
        Error::InvalidArgument
    } else {
        Error::StepOutOfRange { step: step as u32, steps: steps_left as u32 }
    }
}

fn tracker_lines(o: &mut Out, file: &[u8], windows: &[u8]) -> Result<(), Error> {
    const T: usize = FLOE_TRACKER_HORIZON;
    let w = aligned(file);
    let m = Model::load(view(&w, file.len()))?;
    let mut tr = Tracker::<FLOE_TRACKER_PARTICLES, T>::new(m, 2024)?;
    let obs = usize::from(m.trajectory_layout().ok_or(Error::NotATrajectoryModel)?.observed);
    let per = 2 * (obs + T);
    let all = floats(windows);
    let mut s = vec![0.0f32; SCRATCH];
    let pts = |v: &[f32]| -> Vec<Point> { v.chunks_exact(2).map(|p| [p[0], p[1]]).collect() };
    let mut hist = Vec::new();
    for (i, wnd) in all.chunks_exact(per).enumerate() {
        hist = pts(&wnd[..2 * obs]);
        let fut = pts(&wnd[2 * obs..]);
        tr.predict(&hist, &mut s)?;
        for p in [0, FLOE_TRACKER_PARTICLES / 2, FLOE_TRACKER_PARTICLES - 1] {
            for st in [1, 6, T] {
                let q = tr.position(p, st).ok_or(position_error(tr.steps_left(), p, st))?;
                o.lines.push(format!("pos {i} {} {} {}", p * 100 + st, hex(q[0]), hex(q[1])));
            }
        }
        o.value("joint", i, 0, tr.log_prob_future(&fut, &mut s)?);
        o.value("next", i, 0, tr.log_density(1, fut[0], &mut s)?);
        o.value("step6", i, 0, tr.log_density(6, fut[5], &mut s)?);
        for (u, y) in fut.iter().take(4).enumerate() {
            o.value("ess", i, u, tr.update(*y, 0.05)?.ess);
        }
        o.value("after", i, 0, tr.log_density(1, fut[4], &mut s)?);
    }
    o.result("traj-sigma", 0, tr.update([0.0, 0.0], 0.0));
    o.result("traj-step", 0, tr.log_density(0, [0.0, 0.0], &mut s));
    o.result("traj-short", 0, tr.predict(&hist[..1], &mut s));
    let (p, st) = (FLOE_TRACKER_PARTICLES, 1);
    o.result("traj-particle", 0, tr.position(p, st).ok_or(position_error(tr.steps_left(), p, st)));
    Ok(())
}

fn refusal_lines(o: &mut Out, file: &[u8]) {
    let len = file.len().min(4096);
    let w = aligned(file);
    o.result("truncated", 0, Model::load(&view(&w, file.len())[..len - 1]));
    o.status(
        "uninitialized",
        0,
        C_UNINITIALIZED,
        (0, 0),
        "the handle was not initialized (or its initialization failed)",
    );
    let mut copy = aligned(&file[..len]);
    o.result("bad-magic", 0, Model::load(&view(&copy, len)[1..]));
    bytemuck::cast_slice_mut::<u128, u8>(&mut copy)[0] ^= 1;
    o.result("bad-magic", 1, Model::load(view(&copy, len)));
    o.null("null-model", 0);
    let m = Model::load(view(&w, file.len()));
    o.result("no-stream", 0, m);
    o.result("no-stream", 1, m.and_then(Stream::<FLOE_STREAM_CAPACITY>::new));
    o.result("no-tracker", 0, m.and_then(|m| Tracker::<FLOE_TRACKER_PARTICLES, FLOE_TRACKER_HORIZON>::new(m, 1)));
}

/// The check's lines for the files of [`FILES`], in that order.
pub fn lines(files: &[Vec<u8>; 7]) -> Result<Vec<String>, Error> {
    let [f32m, i8m, rows, ucr, ucr_s, traj, traj_w] = files;
    let mut o = Out { lines: vec![format!("abi {FLOE_ABI_VERSION} 0")] };
    o.lines.push(format!("sizes {} {} {}", 8 * FLOE_MODEL_WORDS, 8 * FLOE_STREAM_WORDS, 8 * FLOE_TRACKER_WORDS));
    model_lines(&mut o, "thyroid-f32", f32m, rows)?;
    model_lines(&mut o, "thyroid-int8", i8m, rows)?;
    stream_lines(&mut o, ucr, ucr_s)?;
    tracker_lines(&mut o, traj, traj_w)?;
    refusal_lines(&mut o, i8m);
    o.lines.push("done".into());
    Ok(o.lines)
}
