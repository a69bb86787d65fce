//! NumPy `.npy` arrays and `.npz` archives of them.

use std::io::Read;
use std::path::Path;

use super::{matrix_from, Table};
use crate::error::{FloeError, Result};

/// Read the data array (and the labels array, if any) of an `.npz`.
pub(super) fn read_npz(path: &Path, array: Option<&str>, labels: Option<&str>) -> Result<Table> {
    let f = std::fs::File::open(path).map_err(|e| FloeError::io(path, e))?;
    let perr = |msg: String| FloeError::Parse { path: path.to_path_buf(), msg };
    let mut z = zip::ZipArchive::new(f).map_err(|e| perr(format!("not a valid .npz (zip) file: {e}")))?;
    let names: Vec<String> = z.file_names().map(|s| s.trim_end_matches(".npy").to_string()).collect();
    let mut read = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let mut e =
            z.by_name(&format!("{name}.npy")).map_err(|_| perr(format!("no array {name:?} (have {names:?})")))?;
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).map_err(|e| FloeError::io(path, e))?;
        parse_npy(&buf).map_err(|m| perr(format!("array {name:?}: {m}")))
    };
    let xname = match array {
        Some(a) => a.to_string(),
        None if names.iter().any(|n| n == "X") => "X".into(),
        None if names.len() == 1 => names[0].clone(),
        None => return Err(perr(format!("several arrays {names:?}: choose one with --array"))),
    };
    let (shape, v) = read(&xname)?;
    let mut t = matrix_from(path, shape, v)?;
    let lname = labels.map(str::to_string).or_else(|| names.iter().any(|n| n == "y").then(|| "y".to_string()));
    if let Some(l) = lname.filter(|l| *l != xname) {
        let (shape, v) = read(&l)?;
        if shape.iter().product::<usize>() != t.n {
            return Err(perr(format!(
                "labels {l:?} have {} entries for {} rows",
                shape.iter().product::<usize>(),
                t.n
            )));
        }
        if let Some(bad) = v.iter().find(|x| !(x.is_finite() && x.fract() == 0.0)) {
            return Err(perr(format!("labels {l:?} must be integers, found {bad}")));
        }
        t.labels = Some(v.into_iter().map(|x| x as i64).collect());
    }
    Ok(t)
}

/// Parse a `.npy` (format 1.0/2.0/3.0): little-endian or byte-sized integers and
/// floats, C or Fortran order. Returns the shape and values in C order.
pub fn parse_npy(b: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f64>), String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(start..start + hlen).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "non-UTF-8 .npy header")?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let k = header.find(&format!("'{key}'")).ok_or(format!("header lacks {key}"))?;
        let rest = &header[k + key.len() + 2..];
        let colon = rest.find(':').ok_or("malformed header")?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.trim_start_matches('\'');
    let descr = &descr[..descr.find('\'').ok_or("malformed descr")?];
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_s = field("shape")?;
    let shape_s = &shape_s[1..shape_s.find(')').ok_or("malformed shape")?];
    let shape: Vec<usize> = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape entry {s:?}")))
        .collect::<std::result::Result<_, _>>()?;
    let count: usize = shape.iter().product();
    let data = &b[start + hlen..];
    let (size, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
        "<f4" => (4, |c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64),
        "<i8" => (8, |c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64),
        "<i4" => (4, |c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64),
        "<i2" => (2, |c| i16::from_le_bytes(c.try_into().unwrap_or([0; 2])) as f64),
        "<u2" => (2, |c| u16::from_le_bytes(c.try_into().unwrap_or([0; 2])) as f64),
        "|u1" => (1, |c| c[0] as f64),
        "|i1" => (1, |c| c[0] as i8 as f64),
        "|b1" => (1, |c| (c[0] != 0) as u8 as f64),
        other => return Err(format!("unsupported dtype {other:?}")),
    };
    if data.len() < count * size {
        return Err(format!("truncated data: {} bytes for {count} values of {size} bytes", data.len()));
    }
    let raw: Vec<f64> = data[..count * size].chunks_exact(size).map(conv).collect();
    let v = if fortran && shape.len() == 2 {
        let (n, d) = (shape[0], shape[1]);
        let mut v = vec![0.0; count];
        for j in 0..d {
            for i in 0..n {
                v[i * d + j] = raw[j * n + i];
            }
        }
        v
    } else {
        raw
    };
    Ok((shape, v))
}

/// Write a row-major matrix as `.npy` (`<f4`, C order).
pub fn write_npy(path: &Path, x: &[f32], n: usize, d: usize) -> Result<()> {
    let mut out = super::sink::npy_header(n, d);
    for v in x {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| FloeError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_roundtrip_and_fortran_order() {
        let dir = std::env::temp_dir().join(format!("floe-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        write_npy(&p, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2).unwrap();
        let (shape, v) = parse_npy(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // Fortran order, u1: columns stored one after the other.
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }\n";
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(&[1, 4, 2, 5, 3, 6]);
        let (_, v) = parse_npy(&f).unwrap();
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(parse_npy(b"garbage").is_err());
    }

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(data);
        f
    }

    /// Every integer and float dtype the reader takes gives the same values,
    /// signs and extremes included; the others are refused by name.
    #[test]
    fn every_supported_dtype_reads_its_values() {
        let want = [-3.0, 0.0, 1.0, 127.0];
        let le = |vals: &[i64], size: usize| -> Vec<u8> {
            vals.iter().flat_map(|v| v.to_le_bytes()[..size].to_vec()).collect()
        };
        let ints = [-3i64, 0, 1, 127];
        let f8: Vec<u8> = want.iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
        let f4: Vec<u8> = want.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
        for (descr, data) in [
            ("<f8", f8),
            ("<f4", f4),
            ("<i8", le(&ints, 8)),
            ("<i4", le(&ints, 4)),
            ("<i2", le(&ints, 2)),
            ("|i1", le(&ints, 1)),
        ] {
            let (shape, v) = parse_npy(&npy(descr, "(2, 2)", &data)).unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!((shape, v), (vec![2, 2], want.to_vec()), "{descr}");
        }
        // Extremes of the wide integer types convert exactly where f64 can.
        let (_, v) = parse_npy(&npy("<i4", "(2,)", &le(&[i64::from(i32::MIN), i64::from(i32::MAX)], 4))).unwrap();
        assert_eq!(v, vec![f64::from(i32::MIN), f64::from(i32::MAX)]);
        let (_, v) = parse_npy(&npy("<u2", "(1,)", &65535u16.to_le_bytes())).unwrap();
        assert_eq!(v, vec![65535.0]);
        let (_, v) = parse_npy(&npy("|b1", "(3,)", &[0, 1, 7])).unwrap();
        assert_eq!(v, vec![0.0, 1.0, 1.0]);
        for bad in [">f4", "<c8", "|O", "<U3", "<f2"] {
            let e = parse_npy(&npy(bad, "(1,)", &[0; 16])).expect_err(bad);
            assert!(e.contains("unsupported dtype") && e.contains(bad), "{bad}: {e}");
        }
        // A header that promises more values than the file holds.
        let e = parse_npy(&npy("<f8", "(3,)", &[0; 16])).expect_err("short");
        assert!(e.contains("truncated data"), "{e}");
    }
}
