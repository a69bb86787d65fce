//! A conditioner's load-time checks: its layer flags (precision, the row-pair
//! layout) and its quantized values.

use super::{Conditioner, MAX_I32_BIAS, ROW_PAIRS};
use crate::error::Result;
use crate::format::{bf16_to_f32, requant_words, row_pairs, Activation, LayerRecord, Precision};

impl Conditioner<'_, '_> {
    /// Load-time checks of a quantized conditioner's values: symmetric int8
    /// weights (no -128), non-negative scales (valid requantization words where
    /// hidden denses store them), biases within ±2^30, and an int8
    /// table of positive finite scales with integral zero points in -128 ..= 127.
    pub(crate) fn check_values(&self) -> Result<bool> {
        let shape = &self.shape;
        if shape.precision == Precision::F32 {
            return Ok(true);
        }
        let v = self.view;
        for d in 0..shape.n_dense() {
            let t = self.tensor(shape.weight_index(d));
            let w = v.i8s(t)?;
            let bad = if ROW_PAIRS {
                let (rows, cols) = shape.dense_shape(d);
                has_min(w, shape.row_pairs, rows, cols)
            } else {
                w.contains(&i8::MIN)
            };
            if bad {
                return Ok(false);
            }
            let scales_ok = if shape.words && d + 1 < shape.n_dense() {
                v.i32s(t + 1)?.iter().all(|&w| requant_words::is_valid(w))
            } else {
                v.u16s(t + 1)?.iter().all(|&s| bf16_to_f32(s) >= 0.0)
            };
            if !scales_ok {
                return Ok(false);
            }
            if shape.precision == Precision::Int8
                && !v.i32s(t + 2)?.iter().all(|b| b.unsigned_abs() <= MAX_I32_BIAS as u32)
            {
                return Ok(false);
            }
        }
        if shape.precision == Precision::Int8 {
            let a = v.f32s(self.first)?;
            let last = shape.n_dense();
            for r in 0..=last {
                let (s, zp) = match a.get(2 * r..2 * r + 2) {
                    Some([s, zp]) => (*s, *zp),
                    _ => return Ok(false),
                };
                let zp_ok =
                    if r == last { zp == 0.0 } else { zp == libm::roundf(zp) && (-128.0..=127.0).contains(&zp) };
                if !(s > 0.0 && s.is_finite() && zp_ok) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Whether a conditioner's layer flags are valid: at most one quantization,
/// int8 only for plain ReLU conditioners, and the row-pair layout only on
/// int8 weights, in a build that reads it (`row_pairs`).
pub(super) fn flags_ok(rec: &LayerRecord, row_pairs: bool) -> bool {
    match rec.precision() {
        None => false,
        Some(Precision::Int8) => {
            !rec.residual() && rec.activation == Activation::Relu && (row_pairs || !rec.row_pairs())
        }
        Some(_) => !rec.row_pairs() && !rec.requant_words(),
    }
}

/// Whether an int8 weight matrix holds a −128, row-major or (`pairs`) in the
/// row-pair layout. Out of line: `Model::load`'s stack (800-byte bound) has
/// room for one small frame here, not for more locals in `check_values`.
#[inline(never)]
fn has_min(w: &[i8], pairs: bool, rows: usize, cols: usize) -> bool {
    if pairs {
        row_pairs::has_min(w, rows, cols)
    } else {
        w.contains(&i8::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{LayerKind, FLAG_INT8, FLAG_INT8_ROW_PAIRS, FLAG_INT8_WORDS, FLAG_W8};

    #[test]
    fn the_row_pair_flag_needs_int8_and_a_build_that_reads_it() {
        let rec = |flags| LayerRecord {
            activation: Activation::Relu,
            flags,
            ..LayerRecord::plain(LayerKind::SplineCoupling, 0, 0)
        };
        for supported in [false, true] {
            assert!(flags_ok(&rec(FLAG_INT8), supported));
            assert_eq!(flags_ok(&rec(FLAG_INT8 | FLAG_INT8_ROW_PAIRS), supported), supported);
            assert!(!flags_ok(&rec(FLAG_W8 | FLAG_INT8_ROW_PAIRS), supported));
            assert!(!flags_ok(&rec(FLAG_INT8_ROW_PAIRS), supported));
        }
        // Requantization words: int8 only, with or without row pairs.
        assert!(flags_ok(&rec(FLAG_INT8 | FLAG_INT8_WORDS), false));
        assert!(flags_ok(&rec(FLAG_INT8 | FLAG_INT8_WORDS | FLAG_INT8_ROW_PAIRS), true));
        assert!(!flags_ok(&rec(FLAG_W8 | FLAG_INT8_WORDS), true));
        assert!(!flags_ok(&rec(FLAG_INT8_WORDS), true));
    }
}
