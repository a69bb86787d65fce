//! A file whose envelope has been checked: the bytes cut to `file_len` and the
//! decoded header, with bounds-checked access to its records and tensors.

use super::layout::header as hdr;
use super::layout::tensor as tr;
use super::records::{check_magic_and_version, rd_u32, rd_u8};
use super::{
    crc32, DType, Header, LayerRecord, TensorRecord, BUFFER_ALIGN, CRC_LEN, HEADER_LEN, LAYER_RECORD_LEN, TENSOR_ALIGN,
    TENSOR_RECORD_LEN,
};
use crate::error::{Error, Result};

/// The bytes of one model file (cut to `file_len`) and its decoded header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    bytes: &'a [u8],
    header: Header,
}

impl<'a> View<'a> {
    /// Check what can be checked on the raw buffer — magic, version, length,
    /// alignment, CRC — and decode the header.
    pub(crate) fn open(bytes: &'a [u8]) -> Result<View<'a>> {
        // Enough to read the magic, the version and the file length.
        if bytes.len() < hdr::FILE_LEN + 4 {
            return Err(Error::Truncated);
        }
        check_magic_and_version(bytes)?;
        let file_len = rd_u32(bytes, hdr::FILE_LEN)? as usize;
        if file_len < HEADER_LEN + CRC_LEN {
            return Err(Error::BadHeader);
        }
        let b = bytes.get(..file_len).ok_or(Error::Truncated)?;
        if !(b.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
            return Err(Error::Misaligned);
        }
        let body = b.get(..file_len - CRC_LEN).ok_or(Error::Truncated)?;
        let stored = rd_u32(b, file_len - CRC_LEN)?;
        if crc32(body) != stored {
            return Err(Error::BadCrc);
        }
        let header = Header::decode(b)?;
        Ok(View { bytes: b, header })
    }

    /// The decoded header.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The file's bytes (cut to `file_len`).
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// D.
    pub(crate) fn dim(&self) -> usize {
        self.header.dim as usize
    }

    /// C.
    pub(crate) fn context_dim(&self) -> usize {
        self.header.context_dim as usize
    }

    /// Layer record `i`.
    pub(crate) fn layer(&self, i: u16) -> Result<LayerRecord> {
        if i >= self.header.n_layers {
            return Err(Error::BadLayer(i));
        }
        let at = self.header.layer_table as usize + i as usize * LAYER_RECORD_LEN;
        LayerRecord::decode(self.bytes.get(at..at + LAYER_RECORD_LEN).ok_or(Error::Truncated)?, i)
    }

    /// Tensor record `i` (structure only; [`View::tensor_bytes`] checks where the
    /// data lie).
    pub(crate) fn tensor(&self, i: u32) -> Result<TensorRecord> {
        if i >= self.header.n_tensors {
            return Err(Error::BadTensor(i));
        }
        let at = self.header.tensor_table as usize + i as usize * TENSOR_RECORD_LEN;
        TensorRecord::decode(self.bytes.get(at..at + TENSOR_RECORD_LEN).ok_or(Error::Truncated)?, i)
    }

    /// The record of tensor `i` and its bytes, checked to lie inside the data
    /// section at an aligned offset.
    pub(crate) fn tensor_bytes(&self, i: u32) -> Result<(TensorRecord, &'a [u8])> {
        let t = self.tensor(i)?;
        let start = t.offset as usize;
        let end = start.checked_add(t.n_bytes()).ok_or(Error::BadTensor(i))?;
        let body_end = (self.header.file_len as usize).saturating_sub(CRC_LEN);
        if start < self.header.data_offset as usize || end > body_end || !start.is_multiple_of(TENSOR_ALIGN) {
            return Err(Error::BadTensor(i));
        }
        let bytes = self.bytes.get(start..end).ok_or(Error::BadTensor(i))?;
        Ok((t, bytes))
    }

    /// Tensor `i`'s record and bytes on the evaluation path, read lean:
    /// `Model::load` has checked every tensor record ([`View::tensor_bytes`]:
    /// reserved bytes, sizes, the data's place in the file, alignment) and the
    /// borrowed bytes cannot change since, so this reads the record's fields
    /// and bounds-checks the slice (any bytes still give a value or
    /// `BadTensor(i)`, never a panic). Each conditioner dense looks up three
    /// tensors per call: reading them lean took the int8 demo `log_prob` on the
    /// Cortex-M4F from 105,721 to 103,260 instructions.
    fn loaded(&self, i: u32) -> Result<(TensorRecord, &'a [u8])> {
        if i >= self.header.n_tensors {
            return Err(Error::BadTensor(i));
        }
        let rec = (i as usize)
            .checked_mul(TENSOR_RECORD_LEN)
            .and_then(|o| o.checked_add(self.header.tensor_table as usize))
            .and_then(|at| self.bytes.get(at..at.checked_add(TENSOR_RECORD_LEN)?))
            .ok_or(Error::BadTensor(i))?;
        let word = |o: usize| rd_u32(rec, o).map(|w| w as usize).map_err(|_| Error::BadTensor(i));
        let (start, rows, cols) = (word(tr::OFFSET)?, word(tr::ROWS)?, word(tr::COLS)?);
        let dtype = rd_u8(rec, tr::DTYPE).ok().and_then(DType::from_u8).ok_or(Error::BadTensor(i))?;
        let end = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| n.checked_add(start))
            .ok_or(Error::BadTensor(i))?;
        let t = TensorRecord { offset: start as u32, rows: rows as u32, cols: cols as u32, dtype };
        Ok((t, self.bytes.get(start..end).ok_or(Error::BadTensor(i))?))
    }

    /// Tensor `i` as f32 values of shape `rows × cols` (any number of rows with
    /// `None`), else `BadTensor(i)`. Not inlined: one copy for every caller
    /// (flash is tight on Cortex-M0 boards).
    #[inline(never)]
    pub(crate) fn f32_shaped(&self, i: u32, rows: Option<usize>, cols: usize) -> Result<&'a [f32]> {
        let (t, bytes) = self.loaded(i)?;
        if rows.is_some_and(|r| t.rows as usize != r) || t.cols as usize != cols || t.dtype != DType::F32 {
            return Err(Error::BadTensor(i));
        }
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)
    }

    /// Tensor `i` as `f32`s.
    pub(crate) fn f32s(&self, i: u32) -> Result<&'a [f32]> {
        let (TensorRecord { dtype, .. }, bytes) = self.loaded(i)?;
        if dtype != DType::F32 {
            return Err(Error::BadTensor(i));
        }
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)
    }

    /// Tensor `i` as `u16`s (dtype u16 or bf16).
    pub(crate) fn u16s(&self, i: u32) -> Result<&'a [u16]> {
        let (TensorRecord { dtype, .. }, bytes) = self.loaded(i)?;
        if dtype != DType::U16 && dtype != DType::BF16 {
            return Err(Error::BadTensor(i));
        }
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)
    }

    /// Tensor `i` as `i8`s.
    pub(crate) fn i8s(&self, i: u32) -> Result<&'a [i8]> {
        let (TensorRecord { dtype, .. }, bytes) = self.loaded(i)?;
        if dtype != DType::I8 {
            return Err(Error::BadTensor(i));
        }
        Ok(bytemuck::cast_slice(bytes))
    }

    /// Tensor `i` as `i32`s.
    pub(crate) fn i32s(&self, i: u32) -> Result<&'a [i32]> {
        let (TensorRecord { dtype, .. }, bytes) = self.loaded(i)?;
        if dtype != DType::I32 {
            return Err(Error::BadTensor(i));
        }
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)
    }
}
