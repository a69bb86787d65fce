//! The trajectory tracker: predict, positions, densities, updates.

use floe_runtime::Error;

use crate::handle::*;
use crate::*;

/// Start a tracker over `model` (a trajectory model of horizon
/// `FLOE_TRACKER_HORIZON`), its generator seeded with `seed`.
///
/// # Safety
/// `tracker` points to a writable `FloeTracker`, `model` to a loaded `FloeModel`.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_init(
    tracker: *mut FloeTracker,
    model: *const FloeModel,
    seed: u64,
) -> FloeStatus {
    // SAFETY: the caller's contract.
    let r = unsafe { get::<_, ModelT>(model, TAG_MODEL) }
        .and_then(|m| Ok(TrackerT::new(*m, seed)?))
        // SAFETY: the caller's contract.
        .and_then(|t| unsafe { put(tracker, TAG_TRACKER, t) });
    if r.is_err() {
        // SAFETY: the caller's contract.
        unsafe { clear(tracker) };
    }
    status(r)
}

/// Predict from the observed history (`n_points` positions `x, y`, oldest
/// first, world frame): `FLOE_TRACKER_PARTICLES` sampled futures.
///
/// # Safety
/// `tracker` points to an initialized `FloeTracker`; `history` holds
/// `2 · n_points` floats; `scratch` is valid for its length.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_predict(
    tracker: *mut FloeTracker,
    history: *const f32,
    n_points: usize,
    scratch: *mut f32,
    scratch_len: usize,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract, for each argument.
        let (t, h, s) = unsafe {
            (
                get_mut::<_, TrackerT>(tracker, TAG_TRACKER)?,
                points(history, n_points)?,
                slice_mut(scratch, scratch_len)?,
            )
        };
        Ok(t.predict(h, s)?)
    })())
}

/// Particle `particle`'s position `step` steps ahead (1-based), world frame,
/// into `xy[0..2]`.
///
/// # Safety
/// `tracker` points to an initialized `FloeTracker`; `xy` to two writable floats.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_position(
    tracker: *const FloeTracker,
    particle: usize,
    step: usize,
    xy: *mut f32,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let t: &TrackerT = unsafe { get(tracker, TAG_TRACKER) }?;
        let steps = t.steps_left();
        let p = t.position(particle, step).ok_or(if steps == 0 {
            Error::NothingToUpdate
        } else if particle >= FLOE_TRACKER_PARTICLES {
            Error::InvalidArgument
        } else {
            Error::StepOutOfRange { step: u32::try_from(step).unwrap_or(u32::MAX), steps: steps as u32 }
        })?;
        // SAFETY: the caller's contract: two floats.
        let o = unsafe { slice_mut(xy, 2) }?;
        o.copy_from_slice(&p);
        Ok(())
    })())
}

/// Steps of the prediction still ahead.
///
/// # Safety
/// `tracker` points to an initialized `FloeTracker`, `steps` is writable.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_steps_left(tracker: *const FloeTracker, steps: *mut usize) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let t: &TrackerT = unsafe { get(tracker, TAG_TRACKER) }?;
        // SAFETY: the caller's contract.
        unsafe { out(steps, t.steps_left()) }
    })())
}

/// The exact joint log-density of a whole future (`n_points` positions, the
/// steps left) under the model, given the history of the last prediction.
///
/// # Safety
/// As `floe_tracker_predict`; `log_p` is writable.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_log_prob_future(
    tracker: *const FloeTracker,
    future: *const f32,
    n_points: usize,
    scratch: *mut f32,
    scratch_len: usize,
    log_p: *mut f32,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract, for each argument.
        let (t, f, s) = unsafe {
            (get::<_, TrackerT>(tracker, TAG_TRACKER)?, points(future, n_points)?, slice_mut(scratch, scratch_len)?)
        };
        let lp = t.log_prob_future(f, s)?;
        // SAFETY: the caller's contract.
        unsafe { out(log_p, lp) }
    })())
}

/// The log-density of being at `(x, y)` `step` steps ahead (1-based): exact at
/// step 1, the particle mixture later.
///
/// # Safety
/// `tracker` points to an initialized `FloeTracker`; `scratch` is valid for its
/// length; `log_p` is writable.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_log_density(
    tracker: *const FloeTracker,
    step: usize,
    x: f32,
    y: f32,
    scratch: *mut f32,
    scratch_len: usize,
    log_p: *mut f32,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract, for each argument.
        let (t, s) = unsafe { (get::<_, TrackerT>(tracker, TAG_TRACKER)?, slice_mut(scratch, scratch_len)?) };
        let lp = t.log_density(step, [x, y], s)?;
        // SAFETY: the caller's contract.
        unsafe { out(log_p, lp) }
    })())
}

/// An observed position `(x, y)` with sensor noise `sigma` (metres): reweight
/// the particles, shift the horizon by one step, and write the effective
/// sample size to `*ess`.
///
/// # Safety
/// `tracker` points to an initialized `FloeTracker`; `ess` is writable.
#[no_mangle]
pub unsafe extern "C" fn floe_tracker_update(
    tracker: *mut FloeTracker,
    x: f32,
    y: f32,
    sigma: f32,
    ess: *mut f32,
) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let t: &mut TrackerT = unsafe { get_mut(tracker, TAG_TRACKER) }?;
        if ess.is_null() {
            return Err(Fail::Null);
        }
        let u = t.update([x, y], sigma)?;
        // SAFETY: the caller's contract; non-null (checked above).
        unsafe { out(ess, u.ess) }
    })())
}
