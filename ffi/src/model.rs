//! Model calls: load, facts, log-density (row and batch), forward and
//! inverse, seeded samples, anomaly scores.

use floe_runtime::{Model, Rng};

use crate::handle::*;
use crate::*;

/// The ABI version this library implements (`FLOE_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn floe_abi_version() -> u32 {
    FLOE_ABI_VERSION
}

/// Validate the `len` bytes at `bytes` (a floe file, 4-byte aligned) and fill
/// `model`. On failure `model` is marked uninitialized.
///
/// # Safety
/// `model` points to a `FloeModel`; `bytes` to `len` readable bytes that stay
/// alive and unchanged while `model` (or anything made from it) is used.
#[no_mangle]
pub unsafe extern "C" fn floe_model_load(model: *mut FloeModel, bytes: *const u8, len: usize) -> FloeStatus {
    // SAFETY: the caller's contract; the bytes outlive every use of the model,
    // which is what the `'static` we give them stands for.
    let r = unsafe { slice::<u8>(bytes, len) }
        .and_then(|b| Ok(Model::load(b)?))
        // SAFETY: `model` is a FloeModel by the caller's contract.
        .and_then(|m| unsafe { put(model, TAG_MODEL, m) });
    if r.is_err() {
        // SAFETY: as above.
        unsafe { clear(model) };
    }
    status(r)
}

/// Facts about `model`: dimensions, scratch lengths, threshold, layouts.
///
/// # Safety
/// `model` points to a `FloeModel`, `info` to a writable `FloeModelInfo`.
#[no_mangle]
pub unsafe extern "C" fn floe_model_info(model: *const FloeModel, info: *mut FloeModelInfo) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let m: &ModelT = unsafe { get(model, TAG_MODEL) }?;
        let t = m.anomaly_threshold();
        let s = m.stream_layout();
        let tr = m.trajectory_layout();
        let i = FloeModelInfo {
            dim: m.dim(),
            context_dim: m.context_dim(),
            n_layers: m.n_layers(),
            scratch_len: m.scratch_len(),
            batch_scratch_len: m.batch_scratch_len(),
            file_len: m.file_len(),
            has_threshold: t.is_some(),
            threshold: t.map_or(0.0, |t| t.threshold),
            stream_window: s.map_or(0, |s| usize::from(s.window)),
            stream_channels: s.map_or(0, |s| usize::from(s.channels)),
            trajectory_horizon: tr.map_or(0, |t| usize::from(t.horizon)),
            trajectory_observed: tr.map_or(0, |t| usize::from(t.observed)),
        };
        // SAFETY: the caller's contract.
        unsafe { out(info, i) }
    })())
}

/// The body of the single-row calls: `f(model, x, context, scratch)` with
/// the C buffers checked.
///
/// # Safety
/// As `floe_log_prob`.
#[allow(clippy::too_many_arguments)] // the C functions' arguments, plus `f`
unsafe fn row_call(
    model: *const FloeModel,
    x: *const f32,
    x_len: usize,
    context: *const f32,
    context_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    f: impl FnOnce(&ModelT, &[f32], &[f32], &mut [f32]) -> R<()>,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract, for each argument.
        let (m, x, c, s) = unsafe {
            (
                get::<_, ModelT>(model, TAG_MODEL)?,
                slice(x, x_len)?,
                slice(context, context_len)?,
                slice_mut(scratch, scratch_len)?,
            )
        };
        f(m, x, c, s)
    })())
}

/// `log p(x | context)` in nats into `*log_p`. `x` has `dim` values, `context`
/// `context_dim` (0 and any pointer for an unconditional model), `scratch` at
/// least `scratch_len` floats.
///
/// # Safety
/// Each pointer is valid for its length (reads for `x`/`context`, writes for
/// `scratch` and `log_p`); `scratch` overlaps nothing else.
#[no_mangle]
pub unsafe extern "C" fn floe_log_prob(
    model: *const FloeModel,
    x: *const f32,
    x_len: usize,
    context: *const f32,
    context_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_p: *mut f32,
) -> FloeStatus {
    if log_p.is_null() {
        return status(Err(Fail::Null));
    }
    let f = |m: &ModelT, x: &[f32], c: &[f32], s: &mut [f32]| {
        let lp = m.log_prob(x, c, s)?;
        // SAFETY: the caller's contract; non-null (checked above).
        unsafe { out(log_p, lp) }
    };
    // SAFETY: the caller's contract.
    unsafe { row_call(model, x, x_len, context, context_len, scratch, scratch_len, f) }
}

/// `log p` of `rows` rows at once (`x`: `rows · dim` values, row after row;
/// `context`: `rows · context_dim`) into `log_p[0 .. rows]`, with `scratch` of
/// at least `batch_scratch_len` floats: the same bits as `floe_log_prob` row
/// by row, several rows in SIMD lanes on the host and on phones.
///
/// # Safety
/// As `floe_log_prob`; `log_p` holds `rows` floats and overlaps nothing else.
#[no_mangle]
pub unsafe extern "C" fn floe_log_prob_batch(
    model: *const FloeModel,
    x: *const f32,
    x_len: usize,
    context: *const f32,
    context_len: usize,
    log_p: *mut f32,
    rows: usize,
    scratch: *mut f32,
    scratch_len: usize,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract, for each argument.
        let (m, x, c, o, s) = unsafe {
            (
                get::<_, ModelT>(model, TAG_MODEL)?,
                slice(x, x_len)?,
                slice(context, context_len)?,
                slice_mut(log_p, rows)?,
                slice_mut(scratch, scratch_len)?,
            )
        };
        Ok(m.log_prob_batch(x, c, o, s)?)
    })())
}

/// `Model::forward` or `Model::inverse`.
type MapFn = fn(&ModelT, &[f32], &[f32], &mut [f32], &mut [f32]) -> floe_runtime::Result<f32>;

/// The body of [`floe_forward`] and [`floe_inverse`]: `map` from `input` to
/// `output`, its log-determinant to `*log_det`.
///
/// # Safety
/// As [`floe_forward`].
#[allow(clippy::too_many_arguments)] // the C functions' arguments, plus `map`
unsafe fn map(
    map: MapFn,
    model: *const FloeModel,
    input: *const f32,
    input_len: usize,
    context: *const f32,
    context_len: usize,
    output: *mut f32,
    output_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_det: *mut f32,
) -> FloeStatus {
    status((|| {
        if log_det.is_null() {
            return Err(Fail::Null);
        }
        // SAFETY: the caller's contract, for each argument.
        let (m, a, c, o, s) = unsafe {
            (
                get::<_, ModelT>(model, TAG_MODEL)?,
                slice(input, input_len)?,
                slice(context, context_len)?,
                slice_mut(output, output_len)?,
                slice_mut(scratch, scratch_len)?,
            )
        };
        let ld = map(m, a, c, o, s)?;
        // SAFETY: the caller's contract.
        unsafe { out(log_det, ld) }
    })())
}

/// The flow's map to the base: `z = f(x)` into `z[0 .. dim]` and
/// `log |det ∂f/∂x|` into `*log_det`.
///
/// # Safety
/// As `floe_log_prob`; `z` holds `z_len` floats and overlaps nothing else.
#[no_mangle]
pub unsafe extern "C" fn floe_forward(
    model: *const FloeModel,
    x: *const f32,
    x_len: usize,
    context: *const f32,
    context_len: usize,
    z: *mut f32,
    z_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_det: *mut f32,
) -> FloeStatus {
    // SAFETY: the caller's contract.
    unsafe {
        map(
            |m, x, c, z, s| m.forward(x, c, z, s),
            model,
            x,
            x_len,
            context,
            context_len,
            z,
            z_len,
            scratch,
            scratch_len,
            log_det,
        )
    }
}

/// The inverse map: `x = f⁻¹(z)` into `x[0 .. dim]` and `log |det ∂f⁻¹/∂z|`
/// into `*log_det`.
///
/// # Safety
/// As `floe_forward`.
#[no_mangle]
pub unsafe extern "C" fn floe_inverse(
    model: *const FloeModel,
    z: *const f32,
    z_len: usize,
    context: *const f32,
    context_len: usize,
    x: *mut f32,
    x_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_det: *mut f32,
) -> FloeStatus {
    // SAFETY: the caller's contract.
    unsafe {
        map(
            |m, z, c, x, s| m.inverse(z, c, x, s),
            model,
            z,
            z_len,
            context,
            context_len,
            x,
            x_len,
            scratch,
            scratch_len,
            log_det,
        )
    }
}

/// Seed a generator: equal seeds give equal draws on every target.
///
/// # Safety
/// `rng` points to a writable `FloeRng`.
#[no_mangle]
pub unsafe extern "C" fn floe_rng_init(rng: *mut FloeRng, seed: u64) -> FloeStatus {
    // SAFETY: the caller's contract.
    status(unsafe { put(rng, TAG_RNG, Rng::new(seed)) })
}

/// Draw `x ~ p(x | context)` into `x[0 .. dim]` and its `log p` into `*log_p`.
///
/// # Safety
/// As `floe_log_prob`; `rng` points to an initialized `FloeRng`.
#[no_mangle]
pub unsafe extern "C" fn floe_sample(
    model: *const FloeModel,
    rng: *mut FloeRng,
    context: *const f32,
    context_len: usize,
    x: *mut f32,
    x_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_p: *mut f32,
) -> FloeStatus {
    status((|| {
        if log_p.is_null() {
            return Err(Fail::Null);
        }
        // SAFETY: the caller's contract, for each argument.
        let (m, g, c, x, s) = unsafe {
            (
                get::<_, ModelT>(model, TAG_MODEL)?,
                get_mut::<_, Rng>(rng, TAG_RNG)?,
                slice(context, context_len)?,
                slice_mut(x, x_len)?,
                slice_mut(scratch, scratch_len)?,
            )
        };
        let lp = m.sample(g, c, x, s)?;
        // SAFETY: the caller's contract.
        unsafe { out(log_p, lp) }
    })())
}

/// The anomaly score of a row: `-log p`, per dimension, and the verdict
/// against the model's threshold.
///
/// # Safety
/// As `floe_log_prob`; `score` points to a writable `FloeScore`.
#[no_mangle]
pub unsafe extern "C" fn floe_score(
    model: *const FloeModel,
    x: *const f32,
    x_len: usize,
    context: *const f32,
    context_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    score: *mut FloeScore,
) -> FloeStatus {
    if score.is_null() {
        return status(Err(Fail::Null));
    }
    let f = |m: &ModelT, x: &[f32], c: &[f32], s: &mut [f32]| {
        let sc = m.score(x, c, s)?;
        // SAFETY: the caller's contract; non-null (checked above).
        unsafe { out(score, sc.into()) }
    };
    // SAFETY: the caller's contract.
    unsafe { row_call(model, x, x_len, context, context_len, scratch, scratch_len, f) }
}
