//! From a data spec to standardized train / val / test rows.

use super::standardize::standardize;
use super::{load, split, DataSpec, Rows, Split, Standardization, Table};
use crate::error::{DataError, Result};

/// Data loaded, split and standardized on the training rows.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The whole table (data columns first, the last `c` columns context).
    pub table: Table,
    /// The split.
    pub split: Split,
    /// D.
    pub d: usize,
    /// C.
    pub c: usize,
    /// Data standardization (training rows).
    pub xs: Standardization,
    /// Context standardization (training rows).
    pub cs: Standardization,
    /// Standardized training rows.
    pub train: Rows,
    /// Standardized validation rows.
    pub val: Rows,
    /// Standardized test rows.
    pub test: Rows,
}

impl Prepared {
    /// The rows `idx` of the table in data units.
    pub fn raw(&self, idx: &[usize]) -> Rows {
        self.table.rows(idx, self.c)
    }
}

/// Load `spec`, split it (`val` and `test` fractions, `seed`) and standardize on
/// the training rows; the last `context_dim` columns are the context.
pub fn prepare(spec: &DataSpec, context_dim: usize, val: f64, test: f64, seed: u64) -> Result<Prepared> {
    let table = load(spec)?;
    if context_dim >= table.d {
        return Err(DataError::ContextColumns { path: spec.path.clone(), have: table.d, context: context_dim }.into());
    }
    let split = split(table.n, val, test, seed)?;
    let (d, c) = (table.d - context_dim, context_dim);
    let train_raw = table.rows(&split.train, c);
    let xs = Standardization::fit(&train_raw.x, d);
    let cs = if c > 0 { Standardization::fit(&train_raw.c, c) } else { Standardization::identity(0) };
    let rows = |idx: &[usize]| standardize(&table.rows(idx, c), &xs, &cs);
    let (train, val, test) = (rows(&split.train), rows(&split.val), rows(&split.test));
    Ok(Prepared { table, split, d, c, xs, cs, train, val, test })
}
