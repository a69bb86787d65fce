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

/// Time `f` and measure its own stack; report both as `measure bound`.
fn measured<T>(
    what: &'static str,
    i: u32,
    sink: &mut impl Sink,
    clock: &mut impl Clock,
    stack: &mut impl Stack,
    f: impl FnOnce() -> T,
) -> T {
    stack.paint();
    let depth = stack.depth();
    let t0 = clock.now();
    let r = core::hint::black_box(call(f));
    let t1 = clock.now();
    let used = stack.high_water().saturating_sub(depth);
    sink.bound(what, i, t1.saturating_sub(t0), used);
    r
}

/// Calls `f` in a frame of its own, below the stack depth [`measured`] read:
/// inlined into `measured`, the call's locals would sit in its frame and escape
/// the measurement.
#[inline(never)]
fn call<T>(f: impl FnOnce() -> T) -> T {
    f()
}

fn report(sink: &mut impl Sink, what: &'static str, i: u32, r: Result<f32, Error>) {
    match r {
        Ok(v) => sink.value(what, i, 0, v),
        Err(e) => sink.error(what, i, e),
    }
}

/// The bounds program on one model: `Model::load`; `log_prob` on every case;
/// `score`, `forward` and `inverse` (of that latent) at case 1; [`SAMPLES`]
/// seeded samples. `row` holds at least `2 · dim + context_dim` values.
pub fn bounds(
    bytes: &[u8],
    row: &mut [f32],
    scratch: &mut [f32],
    sink: &mut impl Sink,
    clock: &mut impl Clock,
    stack: &mut impl Stack,
) -> Result<(), Error> {
    let bytes = core::hint::black_box(bytes);
    let model = measured("load", 0, sink, clock, stack, || Model::load(bytes))?;
    let (d, c) = (model.dim(), model.context_dim());
    let Some(buf) = row.get_mut(..2 * d + c) else {
        return Err(Error::DimMismatch { expected: (2 * d + c) as u32, got: row.len() as u32 });
    };
    let (x, rest) = buf.split_at_mut(d);
    let (ctx, z) = rest.split_at_mut(c);
    for k in 0..CASES {
        fill(&model, k, x, ctx);
        let lp = measured("log_prob", k, sink, clock, stack, || model.log_prob(x, ctx, scratch));
        report(sink, "bound-logp", k, lp);
    }
    fill(&model, 1, x, ctx);
    let s = measured("score", 1, sink, clock, stack, || model.score(x, ctx, scratch));
    report(sink, "bound-score", 1, s.map(|s| s.nats));
    let ld = measured("forward", 1, sink, clock, stack, || model.forward(x, ctx, z, scratch));
    report(sink, "bound-forward-logdet", 1, ld);
    for (j, v) in z.iter().enumerate() {
        sink.value("bound-z", 1, j as u32, *v);
    }
    let ld = measured("inverse", 1, sink, clock, stack, || model.inverse(z, ctx, x, scratch));
    report(sink, "bound-inverse-logdet", 1, ld);
    for (j, v) in x.iter().enumerate() {
        sink.value("bound-x", 1, j as u32, *v);
    }
    let mut rng = Rng::new(SAMPLE_SEED);
    for i in 0..SAMPLES {
        let lp = measured("sample", i, sink, clock, stack, || model.sample(&mut rng, ctx, x, scratch));
        report(sink, "bound-sample-logp", i, lp);
        for (j, v) in x.iter().enumerate() {
            sink.value("bound-sample", i, j as u32, *v);
        }
    }
    Ok(())
}
