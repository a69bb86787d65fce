//! Streams: windows of a sensor stream, scored as they complete, with the
//! alarm state.

use crate::handle::*;
use crate::*;

/// Start a stream over `model` (a stream model, whose history fits
/// `FLOE_STREAM_CAPACITY`).
///
/// # Safety
/// `stream` points to a writable `FloeStream`, `model` to a loaded `FloeModel`
/// (copied: the stream borrows only the model bytes).
#[no_mangle]
pub unsafe extern "C" fn floe_stream_init(stream: *mut FloeStream, model: *const FloeModel) -> FloeStatus {
    // SAFETY: the caller's contract.
    let r = unsafe { get::<_, ModelT>(model, TAG_MODEL) }
        .and_then(|m| Ok(StreamT::new(*m)?))
        // SAFETY: the caller's contract.
        .and_then(|s| unsafe { put(stream, TAG_STREAM, s) });
    if r.is_err() {
        // SAFETY: the caller's contract.
        unsafe { clear(stream) };
    }
    status(r)
}

/// # Safety
/// As `floe_stream_push_seq`.
#[allow(clippy::too_many_arguments)] // the C functions' arguments, plus `seq`
unsafe fn push(
    stream: *mut FloeStream,
    seq: Option<u32>,
    sample: *const f32,
    channels: usize,
    scratch: *mut f32,
    scratch_len: usize,
    score: *mut FloeScore,
    scored: *mut bool,
) -> FloeStatus {
    status((|| {
        if score.is_null() || scored.is_null() {
            return Err(Fail::Null);
        }
        // SAFETY: the caller's contract, for each argument.
        let (st, x, s) = unsafe {
            (get_mut::<_, StreamT>(stream, TAG_STREAM)?, slice(sample, channels)?, slice_mut(scratch, scratch_len)?)
        };
        let r = match seq {
            Some(q) => st.push_seq(q, x, s)?,
            None => st.push(x, s)?,
        };
        // SAFETY: the caller's contract; both are non-null (checked above).
        unsafe {
            out(scored, r.is_some())?;
            out(score, r.map(FloeScore::from).unwrap_or_default())
        }
    })())
}

/// Push one sample (`channels` values). When it completes a window, the
/// window's score goes to `*score` and `*scored` is true; otherwise `*scored`
/// is false. A rejected sample (wrong width, NaN) leaves the stream unchanged.
///
/// # Safety
/// `stream` points to an initialized `FloeStream`; the buffers are valid for
/// their lengths and `scratch` overlaps nothing else; `score` and `scored` are
/// writable.
#[no_mangle]
pub unsafe extern "C" fn floe_stream_push(
    stream: *mut FloeStream,
    sample: *const f32,
    channels: usize,
    scratch: *mut f32,
    scratch_len: usize,
    score: *mut FloeScore,
    scored: *mut bool,
) -> FloeStatus {
    // SAFETY: the caller's contract.
    unsafe { push(stream, None, sample, channels, scratch, scratch_len, score, scored) }
}

/// As `floe_stream_push`, with a sequence number that must follow the
/// previous one's (`FLOE_CODE_OUT_OF_ORDER` otherwise, the sample not taken).
///
/// # Safety
/// As `floe_stream_push`.
#[no_mangle]
pub unsafe extern "C" fn floe_stream_push_seq(
    stream: *mut FloeStream,
    seq: u32,
    sample: *const f32,
    channels: usize,
    scratch: *mut f32,
    scratch_len: usize,
    score: *mut FloeScore,
    scored: *mut bool,
) -> FloeStatus {
    // SAFETY: the caller's contract.
    unsafe { push(stream, Some(seq), sample, channels, scratch, scratch_len, score, scored) }
}

/// The alarm after the latest scored window (`valid` false when there is none).
///
/// # Safety
/// `stream` points to an initialized `FloeStream`, `alarm` to a writable `FloeAlarm`.
#[no_mangle]
pub unsafe extern "C" fn floe_stream_alarm(stream: *const FloeStream, alarm: *mut FloeAlarm) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let st: &StreamT = unsafe { get(stream, TAG_STREAM) }?;
        let a = st.alarm().map_or(FloeAlarm::default(), |a| FloeAlarm {
            valid: true,
            active: a.active,
            raised: a.raised,
            cleared: a.cleared,
            above: a.above,
        });
        // SAFETY: the caller's contract.
        unsafe { out(alarm, a) }
    })())
}

/// Samples still needed before the next window is complete.
///
/// # Safety
/// `stream` points to an initialized `FloeStream`, `needed` is writable.
#[no_mangle]
pub unsafe extern "C" fn floe_stream_samples_needed(stream: *const FloeStream, needed: *mut usize) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let st: &StreamT = unsafe { get(stream, TAG_STREAM) }?;
        // SAFETY: the caller's contract.
        unsafe { out(needed, st.samples_needed()) }
    })())
}

/// Forget the history, the sequence number and the alarm state.
///
/// # Safety
/// `stream` points to an initialized `FloeStream`.
#[no_mangle]
pub unsafe extern "C" fn floe_stream_reset(stream: *mut FloeStream) -> FloeStatus {
    status((|| {
        // SAFETY: the caller's contract.
        let st: &mut StreamT = unsafe { get_mut(stream, TAG_STREAM) }?;
        st.reset();
        Ok(())
    })())
}
