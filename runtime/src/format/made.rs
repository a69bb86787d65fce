//! The MADE mask rule (Germain et al. 2015): which weights of an autoregressive
//! conditioner may be non-zero. The one definition: the exporter builds its masks
//! from [`mask_allows`], and the runtime checks at load that every weight it
//! forbids is exactly zero.
//!
//! Input `k < D` has degree `k + 1`, hidden unit `j` has degree
//! `1 + j mod (D - 1)` (0 when D = 1), output `o` belongs to coordinate `o / P`
//! (P params per coordinate) of degree `o / P + 1`. A weight from a unit of degree
//! `a` into a hidden unit of degree `b` is allowed iff `b >= a`; into an output of
//! degree `b` iff `b > a`; context inputs connect everywhere.
//!
//! zuko's `MaskedMLP` in a conditional flow (a MADE layer with the zuko flag and
//! a context) gives its hidden units the degrees `j mod D` instead: one in D
//! sees the context only ([`MaskRule::ZukoContext`]). The rest of the rule is
//! the same.

/// How hidden units get their degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskRule {
    /// `1 + j mod (D − 1)`: every hidden unit sees at least input 0.
    Made,
    /// `j mod D`: zuko's conditional MaskedMLP (layer flag `FLAG_ZUKO` with a
    /// context).
    ZukoContext,
}

impl MaskRule {
    /// The rule of a MADE layer: zuko's with the zuko flag and a context.
    pub const fn of(zuko: bool, context_dim: usize) -> MaskRule {
        if zuko && context_dim > 0 {
            MaskRule::ZukoContext
        } else {
            MaskRule::Made
        }
    }

    /// Degree of hidden unit `j` for data dimension `dim`.
    pub const fn hidden_degree(self, j: usize, dim: usize) -> usize {
        match self {
            MaskRule::Made => hidden_degree(j, dim),
            MaskRule::ZukoContext => {
                if dim == 0 {
                    0
                } else {
                    j % dim
                }
            }
        }
    }
}

/// Degree of hidden unit `j` for data dimension `dim`.
pub const fn hidden_degree(j: usize, dim: usize) -> usize {
    if dim <= 1 {
        0
    } else {
        1 + j % (dim - 1)
    }
}

/// Which weight matrix of a MADE conditioner a mask belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskLayer {
    /// The first layer: columns are `[x (D), context (C)]`, rows hidden units.
    Input,
    /// Hidden to hidden (plain layers and both matrices of a residual block).
    Hidden,
    /// The last layer: rows are outputs (`P` per coordinate), columns hidden units.
    Output,
}

impl MaskLayer {
    /// The mask of dense `d` of a conditioner with `n_dense` denses.
    pub const fn of(d: usize, n_dense: usize) -> MaskLayer {
        if d == 0 {
            MaskLayer::Input
        } else if d + 1 == n_dense {
            MaskLayer::Output
        } else {
            MaskLayer::Hidden
        }
    }
}

/// Whether weight `(row, col)` (row = receiving unit) of a MADE conditioner may be
/// non-zero, for data dimension `dim` and `ppd` outputs per coordinate.
pub fn mask_allows(layer: MaskLayer, dim: usize, ppd: usize, row: usize, col: usize) -> bool {
    mask_allows_by(MaskRule::Made, layer, dim, ppd, row, col)
}

/// [`mask_allows`] with the hidden degrees of `rule`.
pub fn mask_allows_by(rule: MaskRule, layer: MaskLayer, dim: usize, ppd: usize, row: usize, col: usize) -> bool {
    let h = |j| rule.hidden_degree(j, dim);
    match layer {
        MaskLayer::Input => col >= dim || h(row) > col,
        MaskLayer::Output => row / ppd.max(1) + 1 > h(col),
        MaskLayer::Hidden => h(row) >= h(col),
    }
}
