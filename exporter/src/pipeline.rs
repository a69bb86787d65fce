//! From a data spec to standardized train / val / test rows.

use crate::data::{self, DataSpec, Split, Table};
use crate::error::{FloeError, Result};
use crate::model::Standardization;
use crate::train::{Rows, TrainConfig};

/// Data loaded, split and standardized.
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

/// Split rows into raw `(x, c)`, the last `c` columns being the context.
pub fn raw_rows(t: &Table, idx: &[usize], c: usize) -> (Vec<f32>, Vec<f32>) {
    let d = t.d - c;
    let mut x = Vec::with_capacity(idx.len() * d);
    let mut ctx = Vec::with_capacity(idx.len() * c);
    for &i in idx {
        let r = t.row(i);
        x.extend_from_slice(&r[..d]);
        ctx.extend_from_slice(&r[d..]);
    }
    (x, ctx)
}

/// Load, split and standardize.
pub fn prepare(spec: &DataSpec, context_dim: usize, cfg: &TrainConfig) -> Result<Prepared> {
    let table = data::load(spec)?;
    if context_dim >= table.d {
        return Err(FloeError::Data(format!(
            "{}: {} columns cannot hold {} context columns and at least one data column",
            spec.path.display(),
            table.d,
            context_dim
        )));
    }
    let split = data::split(table.n, cfg.val_fraction, cfg.test_fraction, cfg.seed)?;
    let (d, c) = (table.d - context_dim, context_dim);
    let (tx, tc) = raw_rows(&table, &split.train, c);
    let xs = Standardization::fit(&tx, d);
    let cs = if c > 0 { Standardization::fit(&tc, c) } else { Standardization::identity(0) };
    let rows = |idx: &[usize]| {
        let (x, cc) = raw_rows(&table, idx, c);
        Rows { x: xs.apply(&x), c: if c > 0 { cs.apply(&cc) } else { vec![] }, n: idx.len() }
    };
    let (train, val, test) = (rows(&split.train), rows(&split.val), rows(&split.test));
    Ok(Prepared { table, split, d, c, xs, cs, train, val, test })
}
