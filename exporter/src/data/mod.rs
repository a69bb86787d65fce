//! Data: readers for CSV (with a header), `.npy` and `.npz`; the one row type
//! ([`Rows`]); splits; standardization; a data spec prepared for training.

mod csv;
mod npy;
mod prepare;
mod rows;
mod sink;
mod split;
mod standardize;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use csv::write_csv;
pub use npy::{parse_npy, write_npy};
pub use prepare::{prepare, Prepared};
pub use rows::Rows;
pub use sink::RowSink;
pub use split::{split, Split};
pub use standardize::{standardize, Standardization};

use crate::error::{DataError, FloeError, Result};

/// A data file's contents: a row-major matrix of `f32` with its column names and
/// optional per-row labels.
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
    /// The rows `idx` as [`Rows`], the last `context_dim` columns being the context.
    pub fn rows(&self, idx: &[usize], context_dim: usize) -> Rows {
        let dim = self.d - context_dim;
        let mut x = Vec::with_capacity(idx.len() * dim);
        let mut c = Vec::with_capacity(idx.len() * context_dim);
        for &i in idx {
            let r = self.row(i);
            x.extend_from_slice(&r[..dim]);
            c.extend_from_slice(&r[dim..]);
        }
        Rows { dim, context_dim, x, c }
    }
    /// Every row as [`Rows`] (see [`Table::rows`]).
    pub fn all_rows(&self, context_dim: usize) -> Rows {
        self.rows(&(0..self.n).collect::<Vec<_>>(), context_dim)
    }
    /// The indices of the rows whose label is (`keep = true`) or is not `label`;
    /// empty without labels.
    pub fn with_label(&self, label: i64, keep: bool) -> Vec<usize> {
        match &self.labels {
            Some(l) => (0..self.n).filter(|&i| (l[i] == label) == keep).collect(),
            None => vec![],
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
        "csv" => csv::read_csv(path, spec.columns.as_deref())?,
        "npy" => {
            let bytes = std::fs::read(path).map_err(|e| FloeError::io(path, e))?;
            let (shape, v) = parse_npy(&bytes).map_err(|msg| FloeError::Parse { path: path.clone(), msg })?;
            matrix_from(path, shape, v)?
        }
        "npz" => npy::read_npz(path, spec.array.as_deref(), spec.labels.as_deref())?,
        _ => {
            return Err(FloeError::Parse {
                path: path.clone(),
                msg: "unknown file type (expected .csv, .npy or .npz)".into(),
            })
        }
    };
    if let Some(want) = spec.only_label {
        if t.labels.is_none() {
            return Err(FloeError::Parse {
                path: path.clone(),
                msg: "only_label given but the file has no labels".into(),
            });
        }
        t = t.select(&t.with_label(want, true));
    }
    if let Some(k) = t.x.iter().position(|v| !v.is_finite()) {
        let d = t.d.max(1);
        return Err(DataError::NonFinite { path: path.clone(), row: k / d, col: k % d }.into());
    }
    if t.n == 0 {
        return Err(DataError::Empty { path: path.clone(), label: spec.only_label }.into());
    }
    Ok(t)
}

/// A table from a parsed 1-D or 2-D array.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
