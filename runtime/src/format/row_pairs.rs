//! The int8 *row-pair* weight layout (layer flag bit 4, [`FLAG_INT8_ROW_PAIRS`]):
//! how an int8 conditioner's weight matrices are stored so that the Cortex-M4F
//! needs one `UXTB16` per four MACs instead of two `SXTB16` (docs/FORMAT.md,
//! "Quantized conditioners").
//!
//! Rows go in pairs `(2p, 2p + 1)`. A pair's `2·cols` bytes hold its weights
//! input by input, at *stored position* `k` the weights of input
//! [`paired_index`]`(k, cols)` (each whole group of four inputs stored as 0, 2,
//! 1, 3, the rest in order — the order the int8 activations are kept in):
//! byte `2k` is row `2p`'s weight plus 128 (an unsigned byte, 1 ..= 255),
//! byte `2k + 1` row `2p + 1`'s weight (signed). An odd last row follows in
//! plain order. Read as a little-endian 16-bit value, bytes `2k, 2k + 1` are
//! `(w₀ + 128) + 256·w₁`, exactly, so one packed multiply-accumulate of a
//! pair's word against two activations sums `Σ (w₀ + 128)·x + 256·Σ w₁·x`, and
//! one more of its low bytes (`UXTB16`) sums `Σ (w₀ + 128)·x`: both rows' dot
//! products follow by subtraction (`kernels/dsp.rs`). A tensor keeps its
//! `rows × cols` bytes.
//!
//! [`FLAG_INT8_ROW_PAIRS`]: super::FLAG_INT8_ROW_PAIRS

use super::layout::layer as lr;
use super::{
    crc32, DType, Header, LayerKind, LayerRecord, Precision, TensorRecord, CRC_LEN, FLAG_INT8_ROW_PAIRS,
    LAYER_RECORD_LEN, TENSOR_RECORD_LEN,
};
use crate::error::{Error, Result};

/// Where element `j` of an `n`-element int8 activation vector is kept, and
/// which input a row pair's stored position `j` holds (the map is its own
/// inverse): each whole group of four as 0, 2, 1, 3, a trailing partial group
/// in order.
pub const fn paired_index(j: usize, n: usize) -> usize {
    if j >= n - n % 4 {
        j
    } else {
        match j % 4 {
            1 => j + 1,
            2 => j - 1,
            _ => j,
        }
    }
}

/// The byte offset of weight `(i, j)` of a `rows × cols` matrix in the
/// row-pair layout (`i < rows`, `j < cols`).
pub const fn stored_index(i: usize, j: usize, rows: usize, cols: usize) -> usize {
    let pairs = rows / 2;
    if i < 2 * pairs {
        2 * (i / 2) * cols + 2 * paired_index(j, cols) + i % 2
    } else {
        2 * pairs * cols + j
    }
}

/// The stored byte of weight `w` in row `i` (bit 7 flipped in the first row of
/// a pair: `w + 128` as an unsigned byte).
pub const fn encode_value(w: i8, i: usize, rows: usize) -> i8 {
    if i.is_multiple_of(2) && i + 1 < rows {
        w ^ i8::MIN
    } else {
        w
    }
}

/// Weight `(i, j)` of the row-pair matrix `stored`, or `None` outside it.
pub fn value(stored: &[i8], rows: usize, cols: usize, i: usize, j: usize) -> Option<i8> {
    if i >= rows || j >= cols {
        return None;
    }
    // `encode_value` flips bit 7, its own inverse.
    stored.get(stored_index(i, j, rows, cols)).map(|&b| encode_value(b, i, rows))
}

/// Write the row-major `rows × cols` matrix `w` into `out` in the row-pair
/// layout. Errors: lengths that do not match the shape.
pub fn pack(w: &[i8], rows: usize, cols: usize, out: &mut [i8]) -> Result<()> {
    let n = rows.checked_mul(cols).ok_or(Error::Internal)?;
    if w.len() != n || out.len() != n {
        return Err(Error::Internal);
    }
    for (i, row) in w.chunks_exact(cols.max(1)).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            *out.get_mut(stored_index(i, j, rows, cols)).ok_or(Error::Internal)? = encode_value(v, i, rows);
        }
    }
    Ok(())
}

/// Read the row-pair matrix `stored` back into row-major order in `out`.
/// Errors: lengths that do not match the shape.
pub fn unpack(stored: &[i8], rows: usize, cols: usize, out: &mut [i8]) -> Result<()> {
    let n = rows.checked_mul(cols).ok_or(Error::Internal)?;
    if stored.len() != n || out.len() != n {
        return Err(Error::Internal);
    }
    for (i, row) in out.chunks_exact_mut(cols.max(1)).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = value(stored, rows, cols, i, j).ok_or(Error::Internal)?;
        }
    }
    Ok(())
}

/// Whether some weight of the row-pair matrix `stored` is −128 (outside the
/// symmetric range the load-time check allows): stored `0x00` in the first
/// row of a pair, `0x80` elsewhere.
pub fn has_min(stored: &[i8], rows: usize, cols: usize) -> bool {
    let paired = 2 * (rows / 2) * cols;
    let (pairs, last) = stored.split_at(paired.min(stored.len()));
    // A word at a time where flash is plentiful (a load-time scan of every
    // weight): flipping bit 7 of the second rows' bytes turns both cases into
    // a zero byte. Byte by byte on the small parts (the same answer).
    #[cfg(any(feature = "dsp", not(target_os = "none")))]
    let pairs = {
        let words = pairs.chunks_exact(4);
        let tail = words.remainder();
        let zero_byte = |v: u32| v.wrapping_sub(0x0101_0101) & !v & 0x8080_8080 != 0;
        let mut words = words;
        if words.any(|b| match *b {
            [b0, b1, b2, b3] => zero_byte(u32::from_le_bytes([b0 as u8, b1 as u8, b2 as u8, b3 as u8]) ^ 0x8000_8000),
            _ => false,
        }) {
            return true;
        }
        tail
    };
    pairs.chunks_exact(2).any(|b| matches!(b, [0, _] | [_, i8::MIN])) || last.contains(&i8::MIN)
}

/// Rewrite, in place, the int8 conditioners of the model file `file` into the
/// row-pair layout (`pairs`) or back to row-major (`!pairs`), set or clear their
/// layer flag, and recompute the CRC. MADE layers stay row-major. Returns how
/// many layers it rewrote (0: `file` is unchanged). Every weight keeps its
/// value, so the model's sums — and every result — stay the same bits; the file
/// keeps its length. `scratch` must hold the largest int8 weight matrix (else
/// [`Error::InvalidArgument`]). The CRC is checked first ([`Error::BadCrc`]), so
/// a damaged file never comes out with a fresh one; a file that is otherwise
/// malformed is an error too (typed, no panic), with `file` then partly
/// rewritten: pass one [`crate::Model::load`] accepts.
pub fn relayout_file(file: &mut [u8], scratch: &mut [i8], pairs: bool) -> Result<usize> {
    let h = Header::decode(file)?;
    let body = (h.file_len as usize).checked_sub(CRC_LEN).ok_or(Error::BadHeader)?;
    let stored = file.get(body..body + CRC_LEN).ok_or(Error::Truncated)?;
    if crc32(file.get(..body).ok_or(Error::Truncated)?).to_le_bytes() != *stored {
        return Err(Error::BadCrc);
    }
    let mut done = 0;
    for i in 0..h.n_layers {
        let at = h.layer_table as usize + usize::from(i) * LAYER_RECORD_LEN;
        let rec = LayerRecord::decode(file.get(at..at + LAYER_RECORD_LEN).ok_or(Error::Truncated)?, i)?;
        // MADE layers keep row-major weights (see docs/FORMAT.md).
        let made = matches!(rec.kind, LayerKind::MadeAffine | LayerKind::MadeSpline);
        if rec.precision() != Some(Precision::Int8) || rec.row_pairs() == pairs || made {
            continue;
        }
        // The conditioner (after an encoder's `mean`, `std`): a leading table,
        // then `W, s, B` per dense, `blocks + 1` denses (int8 is plain only).
        let first = rec.first_tensor.checked_add(if rec.kind == LayerKind::Encoder { 2 } else { 0 });
        for d in 0..=u32::from(rec.blocks) {
            let t = first
                .and_then(|f| f.checked_add(1 + 3 * d))
                .filter(|&t| t < h.n_tensors && t < rec.first_tensor.saturating_add(rec.n_tensors))
                .ok_or(Error::BadLayer(i))?;
            let ta = h.tensor_table as usize + t as usize * TENSOR_RECORD_LEN;
            let tr = TensorRecord::decode(file.get(ta..ta + TENSOR_RECORD_LEN).ok_or(Error::Truncated)?, t)?;
            let (rows, cols) = (tr.rows as usize, tr.cols as usize);
            let n = rows.checked_mul(cols).ok_or(Error::BadTensor(t))?;
            let start = tr.offset as usize;
            let end = start.checked_add(n).ok_or(Error::BadTensor(t))?;
            let data = file.get_mut(start..end).ok_or(Error::BadTensor(t))?;
            let tmp = scratch.get_mut(..n).ok_or(Error::InvalidArgument)?;
            if tr.dtype != DType::I8 {
                return Err(Error::BadTensor(t));
            }
            let data: &mut [i8] = bytemuck::cast_slice_mut(data);
            tmp.copy_from_slice(data);
            if pairs {
                pack(tmp, rows, cols, data)?;
            } else {
                unpack(tmp, rows, cols, data)?;
            }
        }
        let flags = file.get_mut(at + lr::FLAGS).ok_or(Error::Truncated)?;
        *flags ^= FLAG_INT8_ROW_PAIRS;
        done += 1;
    }
    if done > 0 {
        let crc = crc32(file.get(..body).ok_or(Error::Truncated)?);
        file.get_mut(body..body + CRC_LEN).ok_or(Error::Truncated)?.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_are_inverse_and_value_reads_in_place() {
        for rows in 1..8 {
            for cols in 1..11 {
                let w: [i8; 80] = core::array::from_fn(|k| ((k * 53 % 255) as i32 - 127) as i8);
                let w = &w[..rows * cols];
                let mut s = [0i8; 80];
                pack(w, rows, cols, &mut s[..rows * cols]).unwrap();
                let mut back = [0i8; 80];
                unpack(&s[..rows * cols], rows, cols, &mut back[..rows * cols]).unwrap();
                assert_eq!(&back[..rows * cols], w, "{rows}x{cols}");
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(value(&s, rows, cols, i, j), Some(w[i * cols + j]));
                        let st = stored_index(i, j, rows, cols);
                        if i + 1 < rows && i % 2 == 0 {
                            // (w + 128) as an unsigned byte, then row 2p+1 beside it.
                            assert_eq!(s[st] as u8 as i32, w[i * cols + j] as i32 + 128);
                            assert_eq!(s[st + 1], w[(i + 1) * cols + j]);
                        }
                    }
                }
                assert_eq!(value(&s, rows, cols, rows, 0), None);
                assert!(pack(w, rows, cols + 1, &mut s[..rows * cols]).is_err());
            }
        }
    }

    #[test]
    fn has_min_finds_minus_128_in_every_position() {
        // Whole words of pairs (5 x 6) and a pair tail off the words (3 x 5);
        // an odd last row in both.
        for (rows, cols) in [(5, 6), (3, 5)] {
            let n = rows * cols;
            let w = [3i8; 30];
            let mut s = [0i8; 30];
            pack(&w[..n], rows, cols, &mut s[..n]).unwrap();
            assert!(!has_min(&s[..n], rows, cols));
            for k in 0..n {
                let mut v = w;
                v[k] = i8::MIN;
                pack(&v[..n], rows, cols, &mut s[..n]).unwrap();
                assert!(has_min(&s[..n], rows, cols), "{rows} x {cols}: ({}, {})", k / cols, k % cols);
            }
        }
    }
}
