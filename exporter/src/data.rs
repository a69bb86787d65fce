//! Data readers (CSV with header, `.npy`, `.npz`), splits and row selection.

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{FloeError, Result};

/// A row-major matrix of `f32` with optional per-row labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Rows.
    pub n: usize,
    /// Columns.
    pub d: usize,
    /// `n x d` values, row-major.
    pub x: Vec<f32>,
    /// Column names.
    pub columns: Vec<String>,
    /// Per-row labels (1 = anomaly), when the file has them.
    pub labels: Option<Vec<i64>>,
}

impl Table {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
    /// A new table with the rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Table {
        let mut x = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Table {
            n: idx.len(),
            d: self.d,
            x,
            columns: self.columns.clone(),
            labels: self.labels.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// Where the data come from and which part to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The file: `.csv` (with a header row), `.npy` or `.npz`.
    pub path: PathBuf,
    /// Array name inside an `.npz` (default `X`, or the only array).
    #[serde(default)]
    pub array: Option<String>,
    /// Labels array inside an `.npz` (default `y` when present).
    #[serde(default)]
    pub labels: Option<String>,
    /// CSV: columns to use, by name (default: all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Keep only rows with this label (e.g. 0: normal rows of an anomaly set).
    #[serde(default)]
    pub only_label: Option<i64>,
}

impl DataSpec {
    /// A spec for a whole file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        DataSpec { path: path.into(), array: None, labels: None, columns: None, only_label: None }
    }
}

/// Read the data a spec describes, and check every value is finite.
pub fn load(spec: &DataSpec) -> Result<Table> {
    let path = &spec.path;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut t = match ext.as_str() {
        "csv" => read_csv(path, spec.columns.as_deref())?,
        "npy" => {
            let bytes = std::fs::read(path).map_err(|e| FloeError::io(path, e))?;
            let (shape, v) = parse_npy(&bytes).map_err(|msg| FloeError::Parse { path: path.clone(), msg })?;
            matrix_from(path, shape, v)?
        }
        "npz" => read_npz(path, spec.array.as_deref(), spec.labels.as_deref())?,
        _ => {
            return Err(FloeError::Parse {
                path: path.clone(),
                msg: "unknown file type (expected .csv, .npy or .npz)".into(),
            })
        }
    };
    if let Some(want) = spec.only_label {
        let labels = t.labels.as_ref().ok_or_else(|| FloeError::Parse {
            path: path.clone(),
            msg: "only_label given but the file has no labels".into(),
        })?;
        let idx: Vec<usize> = (0..t.n).filter(|&i| labels[i] == want).collect();
        t = t.select(&idx);
    }
    if let Some(k) = t.x.iter().position(|v| !v.is_finite()) {
        return Err(FloeError::Data(format!(
            "{}: row {} column {} is not a finite number",
            path.display(),
            k / t.d.max(1),
            k % t.d.max(1)
        )));
    }
    if t.n == 0 {
        return Err(FloeError::Data(format!("{}: no rows", path.display())));
    }
    Ok(t)
}

fn matrix_from(path: &Path, shape: Vec<usize>, v: Vec<f64>) -> Result<Table> {
    let (n, d) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, d] => (*n, *d),
        _ => {
            return Err(FloeError::Parse {
                path: path.to_path_buf(),
                msg: format!("expected a 1-D or 2-D array, got shape {shape:?}"),
            })
        }
    };
    Ok(Table {
        n,
        d,
        x: v.into_iter().map(|x| x as f32).collect(),
        columns: (0..d).map(|j| format!("x{j}")).collect(),
        labels: None,
    })
}

fn read_csv(path: &Path, want: Option<&[String]>) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| FloeError::io(path, e))?;
    let perr =
        |line: usize, msg: String| FloeError::Parse { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| perr(1, "empty file".into()))?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect();
    let pick: Vec<usize> = match want {
        None => (0..names.len()).collect(),
        Some(w) => w
            .iter()
            .map(|c| {
                names
                    .iter()
                    .position(|n| n == c)
                    .ok_or_else(|| perr(1, format!("no column named {c:?} (have {names:?})")))
            })
            .collect::<Result<_>>()?,
    };
    let mut x = Vec::new();
    let mut n = 0;
    for (ln, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() {
            return Err(perr(ln + 1, format!("{} fields, the header has {}", fields.len(), names.len())));
        }
        for &j in &pick {
            let f = fields[j].trim().trim_matches('"');
            let v: f32 =
                f.parse().map_err(|_| perr(ln + 1, format!("column {:?}: {f:?} is not a number", names[j])))?;
            x.push(v);
        }
        n += 1;
    }
    Ok(Table { n, d: pick.len(), x, columns: pick.iter().map(|&j| names[j].clone()).collect(), labels: None })
}

fn read_npz(path: &Path, array: Option<&str>, labels: Option<&str>) -> Result<Table> {
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

/// Train / validation / test row indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows (early stopping).
    pub val: Vec<usize>,
    /// Held-out test rows (reported, parity-checked).
    pub test: Vec<usize>,
}

/// A seeded shuffle split into train / val / test.
pub fn split(n: usize, val: f64, test: f64, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 0.9 {
        return Err(FloeError::Config("val and test fractions must be in [0, 1) and sum below 0.9".into()));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_val = ((n as f64) * val).round() as usize;
    let n_test = ((n as f64) * test).round() as usize;
    if n < 10 || n_val == 0 || n_test == 0 {
        return Err(FloeError::Data(format!("{n} rows are too few to split into train/val/test")));
    }
    let test_idx = idx[..n_test].to_vec();
    let val_idx = idx[n_test..n_test + n_val].to_vec();
    let train = idx[n_test + n_val..].to_vec();
    Ok(Split { train, val: val_idx, test: test_idx })
}

/// Write a row-major matrix as `.npy` (`<f4`, C order).
pub fn write_npy(path: &Path, x: &[f32], n: usize, d: usize) -> Result<()> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| FloeError::io(path, e))
}

/// Write a row-major matrix as CSV with a header.
pub fn write_csv(path: &Path, x: &[f32], d: usize, columns: &[String]) -> Result<()> {
    let mut s = columns.join(",");
    s.push('\n');
    for row in x.chunks(d) {
        let r: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        s.push_str(&r.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| FloeError::io(path, e))
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

    #[test]
    fn csv_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("floe-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.csv");
        std::fs::write(&p, "a,b\n1,2\n3,x\n").unwrap();
        let e = load(&DataSpec::file(&p)).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("\"x\""), "{e}");
        std::fs::write(&p, "a,b\n1,2\n3,nan\n").unwrap();
        let e = load(&DataSpec::file(&p)).unwrap_err().to_string();
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn split_is_seeded_and_disjoint() {
        let a = split(100, 0.15, 0.15, 3).unwrap();
        let b = split(100, 0.15, 0.15, 3).unwrap();
        assert_eq!(a, b);
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).chain(&a.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
