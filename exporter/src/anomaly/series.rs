//! Series from CSV files: the channels a stream model reads, and their labels.

use std::path::Path;

use crate::data::{self, DataSpec};
use crate::error::{FloeError, Result};

/// A multichannel series: samples of `channels` values, interleaved, and 0/1
/// labels per sample when the file has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Values per sample.
    pub channels: usize,
    /// `[s_0c_0, s_0c_1, …, s_1c_0, …]`.
    pub values: Vec<f32>,
    /// Per-sample anomaly labels.
    pub labels: Option<Vec<bool>>,
}

impl Series {
    /// Samples `range` of the series (clipped to its length), labels included.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Series {
        let (lo, hi) = (range.start.min(self.len()), range.end.min(self.len()));
        let hi = hi.max(lo);
        let c = self.channels;
        Series {
            channels: c,
            values: self.values[lo * c..hi * c].to_vec(),
            labels: self.labels.as_ref().map(|l| l[lo..hi].to_vec()),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.channels).unwrap_or(0)
    }
    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `columns` of a CSV (one channel each) as a series, with the 0/1 labels of
/// `label_column` if the file has that column.
pub fn read_series(path: &Path, columns: &[String], label_column: &str) -> Result<Series> {
    let all;
    let columns = if columns == ["all"] {
        all = numeric_columns(path, label_column)?;
        all.as_slice()
    } else {
        columns
    };
    let t = data::load(&DataSpec { columns: Some(columns.to_vec()), ..DataSpec::file(path) })?;
    let header = std::fs::read_to_string(path).map_err(|e| FloeError::io(path, e))?;
    let has_labels = header.lines().next().is_some_and(|h| h.split(',').any(|c| c.trim() == label_column));
    let labels = if has_labels {
        let l = data::load(&DataSpec { columns: Some(vec![label_column.to_owned()]), ..DataSpec::file(path) })?;
        Some(l.x.iter().map(|&v| v != 0.0).collect())
    } else {
        None
    };
    Ok(Series { channels: t.d, values: t.x, labels })
}

/// `--column all`: every column of the CSV file `path` whose first data row
/// holds a finite number, but the label column (a timestamp or an id column is
/// left out; a column that is numeric there but not further down is the CSV
/// reader's error, naming its line).
pub fn numeric_columns(path: &Path, label_column: &str) -> Result<Vec<String>> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| FloeError::io(path, e))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let mut next = || -> Result<String> {
        lines
            .next()
            .transpose()
            .map_err(|e| FloeError::io(path, e))?
            .ok_or_else(|| FloeError::Parse { path: path.to_owned(), msg: "no header and data row".into() })
    };
    let (header, first) = (next()?, next()?);
    let cols: Vec<String> = header
        .split(',')
        .zip(first.split(','))
        .filter(|(h, v)| h.trim() != label_column && v.trim().parse::<f32>().is_ok_and(f32::is_finite))
        .map(|(h, _)| h.trim().to_owned())
        .collect();
    if cols.is_empty() {
        return Err(FloeError::Parse { path: path.to_owned(), msg: "--column all: no numeric column".into() });
    }
    Ok(cols)
}
