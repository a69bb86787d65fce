//! The one row type.

/// Rows of data: `n × dim` values and `n × context_dim` context values (empty
/// without context), both row-major. The units are the holder's to state: raw
/// data units, or standardized ([`super::Prepared`] says which of its fields is
/// which).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Data dimension D.
    pub dim: usize,
    /// Context dimension C.
    pub context_dim: usize,
    /// Data, row-major.
    pub x: Vec<f32>,
    /// Context, row-major (empty when C = 0).
    pub c: Vec<f32>,
}

impl Rows {
    /// Rows without context.
    pub fn new(dim: usize, x: Vec<f32>) -> Rows {
        Rows { dim, context_dim: 0, x, c: vec![] }
    }
    /// Number of rows.
    pub fn n(&self) -> usize {
        self.x.len().checked_div(self.dim).unwrap_or(0)
    }
    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.n() == 0
    }
    /// The data of row `i`.
    pub fn x_row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    /// The context of row `i` (empty without context).
    pub fn c_row(&self, i: usize) -> &[f32] {
        &self.c[i * self.context_dim..(i + 1) * self.context_dim]
    }
    /// `(data, context)` of every row.
    pub fn iter(&self) -> impl Iterator<Item = (&[f32], &[f32])> + '_ {
        (0..self.n()).map(|i| (self.x_row(i), self.c_row(i)))
    }
    /// The first `n` rows (all of them when there are fewer).
    pub fn head(&self, n: usize) -> Rows {
        let n = n.min(self.n());
        Rows {
            dim: self.dim,
            context_dim: self.context_dim,
            x: self.x[..n * self.dim].to_vec(),
            c: self.c[..n * self.context_dim].to_vec(),
        }
    }
    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Rows {
        let mut out = Rows { dim: self.dim, context_dim: self.context_dim, x: vec![], c: vec![] };
        for &i in idx {
            out.x.extend_from_slice(self.x_row(i));
            out.c.extend_from_slice(self.c_row(i));
        }
        out
    }
}
