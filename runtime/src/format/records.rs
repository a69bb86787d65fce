//! The little-endian field readers and writers, and two of the three record
//! types — layer record, tensor record — each decoded and encoded next to
//! itself, at the offsets [`super::layout`] names (the header: `header.rs`).

use super::layout::{header as hdr, layer as lr, tensor as tr};
use super::types::{Activation, DType, LayerKind, Precision};
use super::{KNOWN_LAYER_FLAGS, LAYER_RECORD_LEN, MAGIC, MAX_DIM, TENSOR_RECORD_LEN, VERSION};
use crate::error::{Error, Result};

// ---------------------------------------------------------------------------
// Little-endian field access. Every read and write is bounds-checked: a read past
// the end is `Error::Truncated`, a write past the end `Error::OutputTooSmall`.

#[inline]
pub(crate) fn rd_u8(b: &[u8], at: usize) -> Result<u8> {
    b.get(at).copied().ok_or(Error::Truncated)
}

#[inline]
fn rd<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N]> {
    let s = b.get(at..at.checked_add(N).ok_or(Error::Truncated)?).ok_or(Error::Truncated)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}

#[inline]
pub(crate) fn rd_u16(b: &[u8], at: usize) -> Result<u16> {
    rd(b, at).map(u16::from_le_bytes)
}

#[inline]
pub(crate) fn rd_u32(b: &[u8], at: usize) -> Result<u32> {
    rd(b, at).map(u32::from_le_bytes)
}

#[inline]
pub(crate) fn rd_f32(b: &[u8], at: usize) -> Result<f32> {
    rd_u32(b, at).map(f32::from_bits)
}

/// Write `v` at `at`.
pub(crate) fn put(b: &mut [u8], at: usize, v: &[u8]) -> Result<()> {
    let len = b.len();
    let end = at.checked_add(v.len()).ok_or(Error::Internal)?;
    let dst = b.get_mut(at..end).ok_or(Error::OutputTooSmall { needed: len32(end), got: len32(len) })?;
    dst.copy_from_slice(v);
    Ok(())
}

/// Check the magic bytes and the version; returns the version.
pub(crate) fn check_magic_and_version(b: &[u8]) -> Result<u16> {
    if b.get(hdr::MAGIC..hdr::MAGIC + MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(Error::BadMagic);
    }
    let version = rd_u16(b, hdr::VERSION)?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    Ok(version)
}

/// The first `n` bytes of `out`.
pub(crate) fn head(out: &mut [u8], n: usize) -> Result<&mut [u8]> {
    let got = len32(out.len());
    out.get_mut(..n).ok_or(Error::OutputTooSmall { needed: len32(n), got })
}

pub(crate) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------

/// A tensor record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorRecord {
    /// Byte offset of the first element from the start of the file.
    pub offset: u32,
    /// Rows (1-D tensors: the length).
    pub rows: u32,
    /// Columns (1-D tensors: 1).
    pub cols: u32,
    /// Element type.
    pub dtype: DType,
}

impl TensorRecord {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.rows as usize * self.cols as usize
    }
    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of data bytes.
    pub fn n_bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }

    /// Decode record `i` from its [`TENSOR_RECORD_LEN`] bytes `b` (structure
    /// only; where the data lie is checked against the file by the model).
    pub fn decode(b: &[u8], i: u32) -> Result<TensorRecord> {
        let offset = rd_u32(b, tr::OFFSET)?;
        let rows = rd_u32(b, tr::ROWS)?;
        let cols = rd_u32(b, tr::COLS)?;
        let dtype = DType::from_u8(rd_u8(b, tr::DTYPE)?).ok_or(Error::BadTensor(i))?;
        let reserved = b.get(tr::RESERVED..TENSOR_RECORD_LEN).ok_or(Error::Truncated)?;
        if reserved.iter().any(|&r| r != 0) {
            return Err(Error::BadTensor(i));
        }
        if rows as usize > MAX_DIM * MAX_DIM || cols as usize > MAX_DIM * MAX_DIM {
            return Err(Error::BadTensor(i));
        }
        (rows as usize)
            .checked_mul(cols as usize)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or(Error::BadTensor(i))?;
        Ok(TensorRecord { offset, rows, cols, dtype })
    }

    /// Encode into the first [`TENSOR_RECORD_LEN`] bytes of `out` (reserved bytes zeroed).
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        let b = head(out, TENSOR_RECORD_LEN)?;
        b.fill(0);
        put(b, tr::OFFSET, &self.offset.to_le_bytes())?;
        put(b, tr::ROWS, &self.rows.to_le_bytes())?;
        put(b, tr::COLS, &self.cols.to_le_bytes())?;
        put(b, tr::DTYPE, &[self.dtype as u8])
    }
}

/// A layer record, decoded but not yet checked against its tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerRecord {
    /// Transform kind.
    pub kind: LayerKind,
    /// Conditioner activation.
    pub activation: Activation,
    /// Flags: [`super::FLAG_RESIDUAL`] and at most one of the precision flags
    /// (see [`LayerRecord::precision`]).
    pub flags: u8,
    /// Couplings: number of leading coordinates passed through unchanged.
    pub split: u16,
    /// Splines: number of bins K.
    pub bins: u16,
    /// Conditioner hidden width H.
    pub hidden: u16,
    /// Conditioner depth: hidden layers (plain) or residual blocks.
    pub blocks: u16,
    /// Splines: tail bound B. Affine: soft clamp A of the log-scale.
    pub param: f32,
    /// Index of the layer's first tensor.
    pub first_tensor: u32,
    /// Number of tensors the layer owns.
    pub n_tensors: u32,
}

impl LayerRecord {
    /// A record for a layer without a conditioner or parameters (LU linear,
    /// permutation, reversal, ActNorm).
    pub const fn plain(kind: LayerKind, first_tensor: u32, n_tensors: u32) -> LayerRecord {
        LayerRecord {
            kind,
            activation: Activation::None,
            flags: 0,
            split: 0,
            bins: 0,
            hidden: 0,
            blocks: 0,
            param: 0.0,
            first_tensor,
            n_tensors,
        }
    }

    /// The conditioner's precision; `None` when both quantization flags are set
    /// (which [`crate::Model::load`] rejects).
    pub const fn precision(&self) -> Option<Precision> {
        Precision::from_flags(self.flags)
    }

    /// Whether the int8 conditioner's weights are in the row-pair layout.
    pub const fn row_pairs(&self) -> bool {
        self.flags & super::FLAG_INT8_ROW_PAIRS != 0
    }

    /// Whether the int8 conditioner's hidden denses store requantization words
    /// ([`super::requant_words`]) instead of bf16 scales.
    pub const fn requant_words(&self) -> bool {
        self.flags & super::FLAG_INT8_WORDS != 0
    }

    /// Whether the conditioner uses residual blocks.
    pub const fn residual(&self) -> bool {
        self.flags & super::FLAG_RESIDUAL != 0
    }

    /// Decode record `i` from its [`LAYER_RECORD_LEN`] bytes `b` (structure only).
    pub fn decode(b: &[u8], i: u16) -> Result<LayerRecord> {
        let kind = LayerKind::from_u8(rd_u8(b, lr::KIND)?).ok_or(Error::BadLayer(i))?;
        let activation = Activation::from_u8(rd_u8(b, lr::ACTIVATION)?).ok_or(Error::BadLayer(i))?;
        let flags = rd_u8(b, lr::FLAGS)?;
        let reserved_byte = rd_u8(b, lr::RESERVED_BYTE)?;
        let split = rd_u16(b, lr::SPLIT)?;
        let bins = rd_u16(b, lr::BINS)?;
        let hidden = rd_u16(b, lr::HIDDEN)?;
        let blocks = rd_u16(b, lr::BLOCKS)?;
        let param = rd_f32(b, lr::PARAM)?;
        let first_tensor = rd_u32(b, lr::FIRST_TENSOR)?;
        let n_tensors = rd_u32(b, lr::N_TENSORS)?;
        let reserved = b.get(lr::RESERVED..LAYER_RECORD_LEN).ok_or(Error::Truncated)?;
        if reserved_byte != 0 || reserved.iter().any(|&r| r != 0) || flags & !KNOWN_LAYER_FLAGS != 0 {
            return Err(Error::BadLayer(i));
        }
        Ok(LayerRecord { kind, activation, flags, split, bins, hidden, blocks, param, first_tensor, n_tensors })
    }

    /// Encode into the first [`LAYER_RECORD_LEN`] bytes of `out` (reserved bytes zeroed).
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        let b = head(out, LAYER_RECORD_LEN)?;
        b.fill(0);
        put(b, lr::KIND, &[self.kind as u8])?;
        put(b, lr::ACTIVATION, &[self.activation as u8])?;
        put(b, lr::FLAGS, &[self.flags])?;
        put(b, lr::SPLIT, &self.split.to_le_bytes())?;
        put(b, lr::BINS, &self.bins.to_le_bytes())?;
        put(b, lr::HIDDEN, &self.hidden.to_le_bytes())?;
        put(b, lr::BLOCKS, &self.blocks.to_le_bytes())?;
        put(b, lr::PARAM, &self.param.to_le_bytes())?;
        put(b, lr::FIRST_TENSOR, &self.first_tensor.to_le_bytes())?;
        put(b, lr::N_TENSORS, &self.n_tensors.to_le_bytes())
    }
}
