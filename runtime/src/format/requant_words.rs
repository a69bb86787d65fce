//! Stored requantization words (layer flag bit 5, [`FLAG_INT8_WORDS`]): each
//! hidden unit of an int8 conditioner keeps its requantization multiplier and
//! shift as one i32, so an evaluation reads them instead of deriving them from
//! the unit's bf16 scale and the layer's ratio (docs/FORMAT.md, "Quantized
//! conditioners").
//!
//! The word of a unit whose ratio `real = s_i · (s_l / s_{l+1})` (in f32) is a
//! positive normal number in `[2^-32, 2^-2)` — biased exponent `e` in
//! 95 ..= 124, the range every trained model's hidden units fall in — is
//!
//! ```text
//! word = significand_24(real) << 8 | t,   t = 125 − e  (1 ..= 30)
//! ```
//!
//! read as i32: bits 8 ..= 31 hold the 24-bit significand (bit 31, its leading
//! one, always set), the low byte the shift `t`. In the terms of the derived
//! form, `M = (word as u32 & !0xFF) >> 1` (Q31, in `[2^30, 2^31)`) and the total
//! right shift is `32 + t`: the same `(M, shift)` the scale gives, so both
//! forms requantize to the same bits. A file stores words for a layer only when
//! every hidden unit has one; [`store`] leaves any other layer as it is.

use super::records::{rd_f32, rd_u16};
use super::{
    align_up, bf16_to_f32, crc32, DType, Header, LayerKind, LayerRecord, Precision, TensorRecord, CRC_LEN,
    FLAG_INT8_WORDS, LAYER_RECORD_LEN, TENSOR_ALIGN, TENSOR_RECORD_LEN,
};
use crate::error::{Error, Result};

/// The requantization word of a unit with ratio `real`, or `None` outside the
/// range words cover (zero, negative, subnormal, non-finite, or a biased
/// exponent outside 95 ..= 124).
pub const fn word(real: f32) -> Option<i32> {
    let bits = real.to_bits();
    // The sign bit makes k huge: negative ratios have no word.
    let k = (bits >> 23).wrapping_sub(95);
    if k < 30 {
        Some((((bits | 0x0080_0000) << 8) | (30 - k)) as i32)
    } else {
        None
    }
}

/// Whether `word` is a requantization word (the load-time check): the leading
/// one at bit 31 and a shift of 1 ..= 30 in the low byte.
pub const fn is_valid(word: i32) -> bool {
    word < 0 && matches!(word & 0xFF, 1..=30)
}

/// The ratio a valid word stands for, exactly (`None` for an invalid word):
/// `real(word(r)) == Some(r)` wherever [`word`] gives one.
pub const fn real(word: i32) -> Option<f32> {
    if !is_valid(word) {
        return None;
    }
    let w = word as u32;
    let e = 125 - (w & 0xFF);
    Some(f32::from_bits(e << 23 | (w >> 8) & 0x007F_FFFF))
}

/// Rewrite the model file `src` into `out` with requantization words stored
/// in every int8 conditioner that does not have them yet and whose hidden
/// units all have one; returns the new file's length and how many layers were
/// rewritten (0: `out` holds a copy of `src`). The file grows by two bytes per
/// hidden unit rewritten (plus alignment); everything else keeps its value, so
/// every result keeps its bits. `out` must hold [`stored_len`] bytes (else
/// [`Error::InvalidArgument`]). The CRC is checked first ([`Error::BadCrc`]);
/// a file that is otherwise malformed gives a typed error or an output that
/// [`crate::Model::load`] rejects — pass one it accepts.
pub fn store(src: &[u8], out: &mut [u8]) -> Result<(usize, usize)> {
    let (len, _) = walk(src, None)?;
    let out = out.get_mut(..len).ok_or(Error::InvalidArgument)?;
    out.fill(0);
    let (len, done) = walk(src, Some(out))?;
    let body = len - CRC_LEN;
    let crc = crc32(out.get(..body).ok_or(Error::Internal)?);
    out.get_mut(body..len).ok_or(Error::Internal)?.copy_from_slice(&crc.to_le_bytes());
    Ok((len, done))
}

/// The length of the file [`store`] writes for `src`.
pub fn stored_len(src: &[u8]) -> Result<usize> {
    walk(src, None).map(|(len, _)| len)
}

/// Lay out (and with `out`, write, all but the CRC) the rewritten file:
/// `(file length, layers rewritten)`.
fn walk(src: &[u8], mut out: Option<&mut [u8]>) -> Result<(usize, usize)> {
    let mut h = Header::decode(src)?;
    let body = (h.file_len as usize).checked_sub(CRC_LEN).ok_or(Error::BadHeader)?;
    let stored = src.get(body..body + CRC_LEN).ok_or(Error::Truncated)?;
    if crc32(src.get(..body).ok_or(Error::Truncated)?).to_le_bytes() != *stored {
        return Err(Error::BadCrc);
    }
    let data = h.data_offset as usize;
    if let Some(o) = out.as_deref_mut() {
        // Header, layer and tensor tables; patched below.
        let tables = src.get(..data).ok_or(Error::Truncated)?;
        o.get_mut(..data).ok_or(Error::InvalidArgument)?.copy_from_slice(tables);
    }
    let mut w = Writer { src, h, out, end: data, next: 0 };
    let mut done = 0;
    for i in 0..h.n_layers {
        let at = h.layer_table as usize + usize::from(i) * LAYER_RECORD_LEN;
        let mut rec = LayerRecord::decode(src.get(at..at + LAYER_RECORD_LEN).ok_or(Error::Truncated)?, i)?;
        while w.next < rec.first_tensor {
            w.emit(None)?;
        }
        if w.next != rec.first_tensor {
            return Err(Error::BadLayer(i));
        }
        // The conditioner's first tensor (after an encoder's `mean`, `std`).
        let cond = rec.first_tensor.checked_add(if rec.kind == LayerKind::Encoder { 2 } else { 0 });
        let cond = cond.ok_or(Error::BadLayer(i))?;
        let convert = convertible(&w, &rec, cond)?;
        let end = rec.first_tensor.checked_add(rec.n_tensors).ok_or(Error::BadLayer(i))?;
        while w.next < end {
            // Hidden dense d's scale: tensor cond + 2 + 3d, d < blocks; its
            // ratio is row d + 1 of the table at `cond`.
            let j = w.next.wrapping_sub(cond);
            let hidden = convert && w.next >= cond && j % 3 == 2 && j / 3 < u32::from(rec.blocks);
            let ratio = if hidden { Some(table_value(&w, cond, 2 * (j / 3 + 1) as usize)?) } else { None };
            w.emit(ratio)?;
        }
        if convert {
            rec.flags |= FLAG_INT8_WORDS;
            done += 1;
            if let Some(o) = w.out.as_deref_mut() {
                rec.encode(o.get_mut(at..).ok_or(Error::InvalidArgument)?)?;
            }
        }
    }
    while w.next < h.n_tensors {
        w.emit(None)?;
    }
    let len = w.end.checked_add(CRC_LEN).ok_or(Error::BadHeader)?;
    h.file_len = u32::try_from(len).map_err(|_| Error::BadHeader)?;
    if let Some(o) = w.out {
        h.encode(o)?;
    }
    Ok((len, done))
}

/// Whether the layer is an int8 conditioner without words whose hidden units
/// all have one.
fn convertible(w: &Writer<'_, '_>, rec: &LayerRecord, cond: u32) -> Result<bool> {
    if rec.precision() != Some(Precision::Int8) || rec.requant_words() {
        return Ok(false);
    }
    for d in 0..u32::from(rec.blocks) {
        let ratio = table_value(w, cond, 2 * (d + 1) as usize)?;
        let t = cond.checked_add(2 + 3 * d).ok_or(Error::BadTensor(cond))?;
        let (tr, bytes) = w.tensor(t)?;
        if tr.dtype != DType::BF16 {
            return Err(Error::BadTensor(t));
        }
        for k in 0..tr.len() {
            if word(bf16_to_f32(rd_u16(bytes, 2 * k)?) * ratio).is_none() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Element `k` of the f32 tensor `t` (an int8 conditioner's table).
fn table_value(w: &Writer<'_, '_>, t: u32, k: usize) -> Result<f32> {
    let (tr, bytes) = w.tensor(t)?;
    if tr.dtype != DType::F32 {
        return Err(Error::BadTensor(t));
    }
    rd_f32(bytes, 4 * k)
}

/// The rewritten file's tensors, written in order.
struct Writer<'s, 'o> {
    src: &'s [u8],
    h: Header,
    out: Option<&'o mut [u8]>,
    /// End of the last tensor written.
    end: usize,
    /// The next tensor to write.
    next: u32,
}

impl<'s> Writer<'s, '_> {
    /// Record and data of tensor `t` of the source.
    fn tensor(&self, t: u32) -> Result<(TensorRecord, &'s [u8])> {
        if t >= self.h.n_tensors {
            return Err(Error::BadTensor(t));
        }
        let at = self.h.tensor_table as usize + t as usize * TENSOR_RECORD_LEN;
        let tr = TensorRecord::decode(self.src.get(at..at + TENSOR_RECORD_LEN).ok_or(Error::Truncated)?, t)?;
        let start = tr.offset as usize;
        let bytes = start.checked_add(tr.n_bytes()).and_then(|end| self.src.get(start..end));
        Ok((tr, bytes.ok_or(Error::BadTensor(t))?))
    }

    /// Write the next tensor at the next aligned offset: as it is, or (a
    /// hidden dense's bf16 scales, with the layer's `ratio`) as words.
    fn emit(&mut self, ratio: Option<f32>) -> Result<()> {
        let t = self.next;
        let (tr, bytes) = self.tensor(t)?;
        let offset = align_up(self.end, TENSOR_ALIGN).ok_or(Error::BadTensor(t))?;
        let (dtype, n) = match ratio {
            Some(_) => (DType::I32, tr.len().checked_mul(4).ok_or(Error::BadTensor(t))?),
            None => (tr.dtype, bytes.len()),
        };
        let end = offset.checked_add(n).ok_or(Error::BadTensor(t))?;
        if let Some(o) = self.out.as_deref_mut() {
            let at = self.h.tensor_table as usize + t as usize * TENSOR_RECORD_LEN;
            let rec = TensorRecord { offset: u32::try_from(offset).map_err(|_| Error::BadTensor(t))?, dtype, ..tr };
            rec.encode(o.get_mut(at..).ok_or(Error::InvalidArgument)?)?;
            let dst = o.get_mut(offset..end).ok_or(Error::InvalidArgument)?;
            match ratio {
                None => dst.copy_from_slice(bytes),
                Some(r) => {
                    for (d, s) in dst.chunks_exact_mut(4).zip(bytes.chunks_exact(2)) {
                        let [lo, hi] = *s else { return Err(Error::Internal) };
                        let sc = bf16_to_f32(u16::from_le_bytes([lo, hi]));
                        d.copy_from_slice(&word(sc * r).ok_or(Error::Internal)?.to_le_bytes());
                    }
                }
            }
        }
        self.end = end;
        self.next = t + 1;
        Ok(())
    }
}
