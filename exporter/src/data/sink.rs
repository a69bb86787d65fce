//! Rows written to a `.npy` or `.csv` file as they are made, in bounded memory
//! whatever the row count.
//!
//! Refused up front when the file would not fit on its filesystem (or its size
//! overflows). Written to a temporary file beside the target and renamed into
//! place only when every row is in, so a failure — a full disk, a runtime
//! error, an interrupted run — leaves neither a partial file nor a clobbered
//! one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, FloeError, Result};

/// Bytes a CSV value takes at most as `{v}` prints an f32, with its separator.
const CSV_VALUE_BYTES: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Npy,
    Csv,
}

/// A `.npy` or `.csv` file of `n` rows of width `d` being written.
pub struct RowSink {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    kind: Kind,
    d: usize,
    left: usize,
}

impl RowSink {
    /// Start `path` (`.npy` or `.csv`, by its extension) for `n` rows of width
    /// `d`; a CSV file gets `columns` as its header.
    pub fn create(path: &Path, n: usize, d: usize, columns: &[String]) -> Result<RowSink> {
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Kind::Npy,
            Some("csv") => Kind::Csv,
            _ => return Err(ConfigError::invalid("--out", "a path ending in .npy or .csv", path.display()).into()),
        };
        let values = (n as u64).checked_mul(d as u64);
        let bytes = values.and_then(|v| v.checked_mul(if kind == Kind::Npy { 4 } else { CSV_VALUE_BYTES }));
        let bytes = bytes.and_then(|b| b.checked_add(128 + columns.iter().map(|c| c.len() as u64 + 1).sum::<u64>()));
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match (bytes, free_bytes(&dir)) {
            (None, free) => return Err(FloeError::OutputTooLarge { path: path.into(), bytes: u64::MAX, free }),
            (Some(b), Some(f)) if b > f => {
                return Err(FloeError::OutputTooLarge { path: path.into(), bytes: b, free: Some(f) });
            }
            _ => {}
        }
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.part", std::process::id()));
        // A missing or read-only folder is reported on the user's path, not on
        // the hidden temporary file's.
        let file = File::create(&tmp).map_err(|e| FloeError::io(path, e))?;
        let mut sink = RowSink { path: path.into(), tmp, out: Some(BufWriter::new(file)), kind, d, left: n };
        let head = match kind {
            Kind::Npy => npy_header(n, d),
            Kind::Csv => format!("{}\n", columns.join(",")).into_bytes(),
        };
        sink.write(&head)?;
        Ok(sink)
    }

    /// Append whole rows (`rows.len()` a multiple of `d`).
    pub fn push(&mut self, rows: &[f32]) -> Result<()> {
        let d = self.d.max(1);
        let k = rows.len() / d;
        if !rows.len().is_multiple_of(d) || k > self.left {
            return Err(FloeError::Internal("RowSink::push: more values than the file was created for"));
        }
        let mut buf = Vec::with_capacity(rows.len() * 12);
        match self.kind {
            Kind::Npy => rows.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
            Kind::Csv => {
                for row in rows.chunks(d) {
                    for (j, v) in row.iter().enumerate() {
                        if j > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(format!("{v}").as_bytes());
                    }
                    buf.push(b'\n');
                }
            }
        }
        self.write(&buf)?;
        self.left -= k;
        Ok(())
    }

    /// Check every row is in, flush, and move the file into place.
    pub fn finish(mut self) -> Result<()> {
        if self.left != 0 {
            return Err(FloeError::Internal("RowSink::finish: rows missing"));
        }
        let out = self.out.take().ok_or(FloeError::Internal("RowSink::finish twice"))?;
        let file = out.into_inner().map_err(|e| FloeError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| FloeError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| FloeError::io(&self.path, e))
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        let out = self.out.as_mut().ok_or(FloeError::Internal("RowSink: write after finish"))?;
        out.write_all(b).map_err(|e| FloeError::io(&self.path, e))
    }
}

impl Drop for RowSink {
    /// An unfinished file is removed: nothing partial is left behind.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The `.npy` (version 1.0) header of an `n x d` little-endian f32 array, padded
/// to a multiple of 64 bytes.
pub(crate) fn npy_header(n: usize, d: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Bytes free for an unprivileged user on the filesystem holding `dir`, where
/// the platform says.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `s` points
    // to writable memory of the struct's size; statvfs writes the whole struct
    // when it returns 0, and only then is it read.
    #[allow(unsafe_code)]
    let s = unsafe {
        if libc::statvfs(c.as_ptr(), s.as_mut_ptr()) != 0 {
            return None;
        }
        s.assume_init()
    };
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("floe-sink-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn npy_and_csv_stream_in_place_of_the_whole_matrix() {
        let d = dir("ok");
        let x: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let p = d.join("a.npy");
        let mut s = RowSink::create(&p, 4, 3, &[]).unwrap();
        s.push(&x[..6]).unwrap();
        s.push(&x[6..]).unwrap();
        s.finish().unwrap();
        let (shape, v) = crate::data::parse_npy(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!((shape, v), (vec![4, 3], x.iter().map(|&v| v as f64).collect::<Vec<_>>()));
        let p = d.join("a.csv");
        let cols: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut s = RowSink::create(&p, 4, 3, &cols).unwrap();
        s.push(&x).unwrap();
        s.finish().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().next(), Some("a,b,c"));
        assert_eq!(text.lines().nth(4), Some("3.5,4,4.5"));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2, "no temporary file left");
    }

    #[test]
    fn too_large_is_refused_up_front_and_failures_leave_nothing() {
        let d = dir("big");
        let p = d.join("huge.npy");
        std::fs::write(&p, b"keep me").unwrap();
        let e = RowSink::create(&p, 1_000_000_000_000_000, 6, &[]).err().expect("refused");
        assert!(matches!(e, FloeError::OutputTooLarge { .. }), "{e}");
        let e = RowSink::create(&p, usize::MAX, 6, &[]).err().expect("refused");
        assert!(matches!(e, FloeError::OutputTooLarge { bytes: u64::MAX, .. }), "{e}");
        // An unfinished file is dropped, and the old one is untouched.
        let mut s = RowSink::create(&p, 4, 1, &[]).unwrap();
        s.push(&[1.0, 2.0]).unwrap();
        drop(s);
        assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file left");
        let s = RowSink::create(&p, 4, 1, &[]).unwrap();
        assert!(s.finish().is_err(), "rows missing");
        assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
        let e = RowSink::create(&d.join("x.txt"), 1, 1, &[]).err().expect("bad extension");
        assert!(e.to_string().contains(".npy or .csv"), "{e}");
    }
}
