//! What a status means, in English.

use core::ffi::c_char;

use floe_runtime::Error;

use crate::{FloeCode, FloeStatus};

/// Writes what `status` means, in English, NUL-terminated, into `buf` (at most
/// `len` bytes, cut short if needed; nothing when `len` is 0), and returns the
/// message's full length without the NUL, as `snprintf` does.
///
/// # Safety
/// `buf` is null with `len` 0, or valid for `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn floe_status_message(status: FloeStatus, buf: *mut c_char, len: usize) -> usize {
    use core::fmt::Write;
    let mut w = Cut { buf: &mut [], at: 0, total: 0 };
    if len > 0 && !buf.is_null() {
        // SAFETY: the caller's contract; `u8` and `c_char` have one layout.
        w.buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    }
    let e = u16::try_from(status.code).ok().and_then(|c| Error::from_code(c, (status.detail[0], status.detail[1])));
    // `Cut` never fails: these `write!`s cannot return an error.
    let _ = match (status.code, e) {
        (0, _) => write!(w, "ok"),
        (_, Some(e)) => write!(w, "{e}"),
        (NULL_ARGUMENT, None) => write!(w, "a required pointer argument is null"),
        (UNINITIALIZED, None) => write!(w, "the handle was not initialized (or its initialization failed)"),
        (c, None) => write!(w, "unknown floe status code {c}"),
    };
    let end = w.at.min(w.buf.len().saturating_sub(1));
    if let Some(b) = w.buf.get_mut(end) {
        *b = 0;
    }
    w.total
}

const NULL_ARGUMENT: i32 = FloeCode::NullArgument as i32;
const UNINITIALIZED: i32 = FloeCode::Uninitialized as i32;

/// A `fmt::Write` into a fixed buffer that keeps the first bytes (one left for
/// the NUL) and counts them all.
struct Cut<'a> {
    buf: &'a mut [u8],
    at: usize,
    total: usize,
}

impl core::fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.at);
        let n = room.min(s.len());
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.at..self.at + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        self.total += s.len();
        Ok(())
    }
}
