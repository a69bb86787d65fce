//! Handle storage: a tag and the Rust value in the caller's `u64` words, and
//! the checked views of the C caller's pointers.

use core::mem::{align_of, size_of};

use floe_runtime::trajectory::{Point, Tracker};
use floe_runtime::{Error, Model, Rng, Stream};

use crate::{
    Fail, FloeModel, FloeRng, FloeStream, FloeTracker, FLOE_STREAM_CAPACITY, FLOE_TRACKER_HORIZON,
    FLOE_TRACKER_PARTICLES, R,
};

/// A handle's contents: a tag saying it was initialized, and the Rust value.
#[repr(C)]
pub(crate) struct Slot<T> {
    tag: u64,
    value: T,
}

pub(crate) type ModelT = Model<'static>;
pub(crate) type StreamT = Stream<'static, FLOE_STREAM_CAPACITY>;
pub(crate) type TrackerT = Tracker<'static, FLOE_TRACKER_PARTICLES, FLOE_TRACKER_HORIZON>;

pub(crate) const TAG_MODEL: u64 = u64::from_le_bytes(*b"floeMODL");
pub(crate) const TAG_RNG: u64 = u64::from_le_bytes(*b"floeRNG_");
pub(crate) const TAG_STREAM: u64 = u64::from_le_bytes(*b"floeSTRM");
pub(crate) const TAG_TRACKER: u64 = u64::from_le_bytes(*b"floeTRAK");

/// Every handle's storage holds its slot: checked when the crate compiles, for
/// the target it compiles for.
macro_rules! fits {
    ($storage:ty, $t:ty) => {
        const _: () = assert!(size_of::<Slot<$t>>() <= size_of::<$storage>());
        const _: () = assert!(align_of::<Slot<$t>>() <= align_of::<$storage>());
    };
}
fits!(FloeModel, ModelT);
fits!(FloeRng, Rng);
fits!(FloeStream, StreamT);
fits!(FloeTracker, TrackerT);

/// Write `value` into the storage at `p` (which `fits!` shows is large and
/// aligned enough), tagged.
///
/// # Safety
/// `p` is null or points to writable storage of type `S` (the C caller's).
pub(crate) unsafe fn put<S, T>(p: *mut S, tag: u64, value: T) -> R<()> {
    if p.is_null() {
        return Err(Fail::Null);
    }
    // SAFETY: `p` is non-null and, by the caller's contract, valid for writes
    // of `size_of::<S>()` bytes at `S`'s alignment; `fits!` proves `Slot<T>`
    // is no larger and no more aligned. The old contents are not dropped
    // (handles hold only `Copy`-like data with no destructor).
    unsafe { p.cast::<Slot<T>>().write(Slot { tag, value }) };
    Ok(())
}

/// Clear a handle's tag (after a failed initialization).
///
/// # Safety
/// As `put`.
pub(crate) unsafe fn clear<S>(p: *mut S) {
    if !p.is_null() {
        // SAFETY: as in `put`: the storage is at least 8 bytes, 8-aligned.
        unsafe { p.cast::<u64>().write(0) };
    }
}

/// The value in the storage at `p`, if its tag says it was initialized as `T`.
///
/// # Safety
/// `p` is null or points to storage of type `S` that lives for `'a` and that
/// nothing else writes meanwhile.
pub(crate) unsafe fn get<'a, S, T>(p: *const S, tag: u64) -> R<&'a T> {
    if p.is_null() {
        return Err(Fail::Null);
    }
    let slot = p.cast::<Slot<T>>();
    // SAFETY: the storage is valid for reads (caller's contract); the tag is
    // its first 8 bytes.
    if unsafe { slot.cast::<u64>().read() } != tag {
        return Err(Fail::Uninitialized);
    }
    // SAFETY: the tag is only written by `put` together with a valid `T`.
    Ok(unsafe { &(*slot).value })
}

/// As `get`, mutably.
///
/// # Safety
/// As `get`, and no other reference to the storage exists meanwhile.
pub(crate) unsafe fn get_mut<'a, S, T>(p: *mut S, tag: u64) -> R<&'a mut T> {
    if p.is_null() {
        return Err(Fail::Null);
    }
    let slot = p.cast::<Slot<T>>();
    // SAFETY: as in `get`.
    if unsafe { slot.cast::<u64>().read() } != tag {
        return Err(Fail::Uninitialized);
    }
    // SAFETY: as in `get`; exclusive by the caller's contract.
    Ok(unsafe { &mut (*slot).value })
}

/// The C buffer `(p, n)` as a slice: empty when `n` is 0 (whatever `p`),
/// otherwise `p` must be non-null and aligned for `T`.
///
/// # Safety
/// When `n > 0`, `p` points to `n` readable, initialized `T` that live for `'a`
/// and that nothing writes meanwhile.
pub(crate) unsafe fn slice<'a, T>(p: *const T, n: usize) -> R<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::Null);
    }
    if !p.is_aligned() {
        return Err(Error::Misaligned.into());
    }
    // SAFETY: non-null, aligned, and `n` valid elements by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// As `slice`, writable.
///
/// # Safety
/// As `slice`, writable, and no other reference to the buffer exists meanwhile.
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, n: usize) -> R<&'a mut [T]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Fail::Null);
    }
    if !p.is_aligned() {
        return Err(Error::Misaligned.into());
    }
    // SAFETY: as in `slice`, and exclusive by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, n) })
}

/// Write `v` to the output `p` (non-null, aligned).
///
/// # Safety
/// `p` is null or valid for a write of `T`.
pub(crate) unsafe fn out<T>(p: *mut T, v: T) -> R<()> {
    if p.is_null() {
        return Err(Fail::Null);
    }
    // SAFETY: non-null and valid for writes by the caller's contract.
    unsafe { p.write(v) };
    Ok(())
}

/// The C points `(x0, y0, x1, y1, …)`: `n` points of two floats.
///
/// # Safety
/// As `slice` for `2 n` floats.
pub(crate) unsafe fn points<'a>(p: *const f32, n: usize) -> R<&'a [Point]> {
    // SAFETY: `[f32; 2]` has the layout of two consecutive `f32` and f32's alignment.
    unsafe { slice(p.cast::<Point>(), n) }
}
