//! The floe model file, version 1: constants, parsing and validation.
//!
//! This module and `docs/FORMAT.md` are the one definition of the format. All
//! multi-byte fields are little-endian. Everything is read in place from the
//! caller's buffer: tensors are borrowed as `&[f32]` / `&[u16]` views, never copied.

use crate::error::{Error, Result};

/// The four magic bytes every model file starts with.
pub const MAGIC: [u8; 4] = *b"FLOE";
/// The format version this runtime writes and reads.
pub const VERSION: u16 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 64;
/// Size of one layer record in bytes.
pub const LAYER_RECORD_LEN: usize = 32;
/// Size of one tensor record in bytes.
pub const TENSOR_RECORD_LEN: usize = 16;
/// Alignment of every tensor's data, relative to the start of the file.
pub const TENSOR_ALIGN: usize = 16;
/// Alignment the runtime requires of the buffer's start address.
pub const BUFFER_ALIGN: usize = 4;
/// Largest dimension / width the format allows (fits the `u16` fields).
pub const MAX_DIM: usize = 4096;
/// Largest number of spline bins.
pub const MAX_BINS: usize = 256;
/// Largest number of layers.
pub const MAX_LAYERS: usize = 1024;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// IEEE-754 binary32, little-endian.
    F32 = 1,
    /// Unsigned 16-bit integer, little-endian (permutation indices).
    U16 = 2,
    /// Signed 8-bit integer (quantized weights, symmetric: -127 ..= 127).
    I8 = 3,
    /// Signed 32-bit integer, little-endian (quantized biases).
    I32 = 4,
    /// bfloat16: the high 16 bits of an IEEE-754 binary32, little-endian
    /// (per-channel weight scales; widened to f32 exactly).
    BF16 = 5,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::U16 | DType::BF16 => 2,
            DType::I8 => 1,
        }
    }
    /// Decode the dtype byte.
    pub const fn from_u8(v: u8) -> Option<DType> {
        match v {
            1 => Some(DType::F32),
            2 => Some(DType::U16),
            3 => Some(DType::I8),
            4 => Some(DType::I32),
            5 => Some(DType::BF16),
            _ => None,
        }
    }
}

/// Base distribution kinds (header field `base_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum BaseKind {
    /// Standard normal N(0, I). No tensors.
    StdNormal = 0,
    /// Diagonal normal: tensors `loc` (D), `log_scale` (D).
    DiagNormal = 1,
    /// Independent standard Student-t per dimension: tensor `df` (D), every entry > 0.
    StudentT = 2,
}

impl BaseKind {
    /// Decode the header field.
    pub const fn from_u16(v: u16) -> Option<BaseKind> {
        match v {
            0 => Some(BaseKind::StdNormal),
            1 => Some(BaseKind::DiagNormal),
            2 => Some(BaseKind::StudentT),
            _ => None,
        }
    }
    /// Number of tensors the base distribution owns.
    pub const fn n_tensors(self) -> usize {
        match self {
            BaseKind::StdNormal => 0,
            BaseKind::DiagNormal => 2,
            BaseKind::StudentT => 1,
        }
    }
}

/// Layer kinds (layer record byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum LayerKind {
    /// RealNVP affine coupling.
    AffineCoupling = 1,
    /// Rational-quadratic spline coupling (NSF).
    SplineCoupling = 2,
    /// MADE autoregressive affine (MAF).
    MadeAffine = 3,
    /// MADE autoregressive rational-quadratic spline.
    MadeSpline = 4,
    /// LU-decomposed invertible linear map (Glow).
    LuLinear = 5,
    /// Fixed permutation.
    Permute = 6,
    /// Reversal of the coordinates.
    Reverse = 7,
    /// Elementwise affine map (a trained ActNorm, folded).
    ActNorm = 8,
}

impl LayerKind {
    /// Decode the kind byte.
    pub const fn from_u8(v: u8) -> Option<LayerKind> {
        match v {
            1 => Some(LayerKind::AffineCoupling),
            2 => Some(LayerKind::SplineCoupling),
            3 => Some(LayerKind::MadeAffine),
            4 => Some(LayerKind::MadeSpline),
            5 => Some(LayerKind::LuLinear),
            6 => Some(LayerKind::Permute),
            7 => Some(LayerKind::Reverse),
            8 => Some(LayerKind::ActNorm),
            _ => None,
        }
    }
    /// Short stable name, the same as the exporter's module names.
    pub const fn name(self) -> &'static str {
        match self {
            LayerKind::AffineCoupling => "affine_coupling",
            LayerKind::SplineCoupling => "spline_coupling",
            LayerKind::MadeAffine => "made_affine",
            LayerKind::MadeSpline => "made_spline",
            LayerKind::LuLinear => "lu_linear",
            LayerKind::Permute => "permute",
            LayerKind::Reverse => "reverse",
            LayerKind::ActNorm => "actnorm",
        }
    }
    /// Whether the layer has an MLP conditioner.
    pub const fn has_conditioner(self) -> bool {
        matches!(
            self,
            LayerKind::AffineCoupling | LayerKind::SplineCoupling | LayerKind::MadeAffine | LayerKind::MadeSpline
        )
    }
}

/// Hidden activation of a conditioner (layer record byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Activation {
    /// No conditioner (layers without one must say 0).
    None = 0,
    /// max(x, 0).
    Relu = 1,
    /// tanh(x), through `libm::tanhf`.
    Tanh = 2,
}

impl Activation {
    /// Decode the activation byte.
    pub const fn from_u8(v: u8) -> Option<Activation> {
        match v {
            0 => Some(Activation::None),
            1 => Some(Activation::Relu),
            2 => Some(Activation::Tanh),
            _ => None,
        }
    }
}

/// Layer flag: the conditioner uses residual blocks.
pub const FLAG_RESIDUAL: u8 = 1;
/// Layer flag: the conditioner's weights are int8 (per-output-channel bf16
/// scales), its activations and biases f32 ("w8", weight-only quantization).
pub const FLAG_W8: u8 = 2;
/// Layer flag: the conditioner is fully int8: int8 weights and activations, int32
/// accumulators and biases, fixed-point requantization (plain MLPs, ReLU only).
pub const FLAG_INT8: u8 = 4;
/// Every flag bit version 1 defines.
pub const KNOWN_FLAGS: u8 = FLAG_RESIDUAL | FLAG_W8 | FLAG_INT8;

/// Widen a bfloat16 (the high half of an f32) to f32, exactly.
pub const fn bf16_to_f32(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

// ---------------------------------------------------------------------------
// Little helpers: every read is bounds-checked and returns `Error::Truncated`.

#[inline]
pub(crate) fn rd_u8(b: &[u8], at: usize) -> Result<u8> {
    b.get(at).copied().ok_or(Error::Truncated)
}

#[inline]
pub(crate) fn rd_u16(b: &[u8], at: usize) -> Result<u16> {
    let s = b.get(at..at.checked_add(2).ok_or(Error::Truncated)?).ok_or(Error::Truncated)?;
    let mut a = [0u8; 2];
    a.copy_from_slice(s);
    Ok(u16::from_le_bytes(a))
}

#[inline]
pub(crate) fn rd_u32(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at.checked_add(4).ok_or(Error::Truncated)?).ok_or(Error::Truncated)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

#[inline]
pub(crate) fn rd_f32(b: &[u8], at: usize) -> Result<f32> {
    rd_u32(b, at).map(f32::from_bits)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, init and xorout
/// 0xFFFFFFFF) — the same as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    // Compile-time table construction: indices are loop-bounded constants.
    #[allow(clippy::indexing_slicing)]
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        let idx = ((crc ^ byte as u32) & 0xFF) as u8;
        // `idx` is a u8, and the table has 256 entries: the lookup cannot fail.
        crc = TABLE.get(idx as usize).copied().unwrap_or(0) ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Total file length in bytes, CRC included.
    pub file_len: u32,
    /// Data dimension D.
    pub dim: u16,
    /// Context dimension C (0 for unconditional flows).
    pub context_dim: u16,
    /// Number of layers.
    pub n_layers: u16,
    /// Base distribution.
    pub base: BaseKind,
    /// Number of tensor records.
    pub n_tensors: u32,
    /// Scratch the runtime needs, in `f32` words.
    pub scratch_len: u32,
    /// Offset of the layer table.
    pub layer_table: u32,
    /// Offset of the tensor table.
    pub tensor_table: u32,
    /// Offset of the data section.
    pub data_offset: u32,
    /// The anomaly threshold, when the file carries one (header flag bit 0).
    pub anomaly: Option<AnomalyThreshold>,
    /// The stream layout, when the model scores windows of a stream (flag bit 1).
    pub stream: Option<StreamLayout>,
}

/// A calibrated anomaly threshold: a row is an anomaly when its score
/// `-log p(x)` (nats, data units) exceeds `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AnomalyThreshold {
    /// Score threshold, nats.
    pub threshold: f32,
    /// The false-alarm rate it was calibrated for on held-out normal rows.
    pub target_fpr: f32,
}

/// How a stream of `channels`-wide samples becomes the model's input: the last
/// `window` samples, oldest first, channel-interleaved (`[s_0c_0, s_0c_1, …]`), or
/// with `differences` the `window − 1` first differences `s_{t+1} − s_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StreamLayout {
    /// Samples per window, W.
    pub window: u16,
    /// Channels per sample, C.
    pub channels: u16,
    /// Whether the input is the first differences of the window.
    pub differences: bool,
}

impl StreamLayout {
    /// Input dimension the layout produces: `C·W`, or `C·(W − 1)` with differences.
    pub const fn dim(&self) -> usize {
        let w = if self.differences { (self.window as usize).saturating_sub(1) } else { self.window as usize };
        w * self.channels as usize
    }
    /// f32 values of stream history needed: `C·W`.
    pub const fn history_len(&self) -> usize {
        self.window as usize * self.channels as usize
    }
}

/// Header flag: the file carries an anomaly threshold (bytes 44..52).
pub const HEADER_FLAG_ANOMALY: u16 = 1;
/// Header flag: the model scores windows of a stream (bytes 52..57).
pub const HEADER_FLAG_STREAM: u16 = 2;
/// Stream flag: the input is the window's first differences.
pub const STREAM_FLAG_DIFFERENCES: u8 = 1;

/// Byte offsets of the header fields (see docs/FORMAT.md).
pub mod hdr {
    /// `[u8; 4]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` version.
    pub const VERSION: usize = 4;
    /// `u16` flags: [`super::HEADER_FLAG_ANOMALY`], [`super::HEADER_FLAG_STREAM`].
    pub const FLAGS: usize = 6;
    /// `u32` file length.
    pub const FILE_LEN: usize = 8;
    /// `u32` header length (64).
    pub const HEADER_LEN: usize = 12;
    /// `u16` D.
    pub const DIM: usize = 16;
    /// `u16` C.
    pub const CONTEXT_DIM: usize = 18;
    /// `u16` layer count.
    pub const N_LAYERS: usize = 20;
    /// `u16` base kind.
    pub const BASE_KIND: usize = 22;
    /// `u32` tensor count.
    pub const N_TENSORS: usize = 24;
    /// `u32` scratch length in f32 words.
    pub const SCRATCH_LEN: usize = 28;
    /// `u32` layer table offset.
    pub const LAYER_TABLE: usize = 32;
    /// `u32` tensor table offset.
    pub const TENSOR_TABLE: usize = 36;
    /// `u32` data section offset.
    pub const DATA_OFFSET: usize = 40;
    /// `f32` anomaly threshold (flag bit 0; else 0).
    pub const THRESHOLD: usize = 44;
    /// `f32` target false-alarm rate of the threshold (flag bit 0; else 0).
    pub const TARGET_FPR: usize = 48;
    /// `u16` stream window W (flag bit 1; else 0).
    pub const WINDOW: usize = 52;
    /// `u16` stream channels C (flag bit 1; else 0).
    pub const CHANNELS: usize = 54;
    /// `u8` stream flags (bit 0: first differences; flag bit 1; else 0).
    pub const STREAM_FLAGS: usize = 56;
    /// Start of the reserved bytes (zero in version 1) up to the end of the header.
    pub const RESERVED: usize = 57;
}

/// Number of tensors before the layers' tensors: x mean, x std, context mean,
/// context std.
pub const N_GLOBAL_TENSORS: usize = 4;

impl Header {
    /// Parse and check the header fields that do not depend on the rest of the file.
    /// `b` must already be cut to `file_len`.
    pub(crate) fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = rd_u16(b, hdr::VERSION)?;
        let flags = rd_u16(b, hdr::FLAGS)?;
        let header_len = rd_u32(b, hdr::HEADER_LEN)?;
        let file_len = rd_u32(b, hdr::FILE_LEN)?;
        let dim = rd_u16(b, hdr::DIM)?;
        let context_dim = rd_u16(b, hdr::CONTEXT_DIM)?;
        let n_layers = rd_u16(b, hdr::N_LAYERS)?;
        let base = BaseKind::from_u16(rd_u16(b, hdr::BASE_KIND)?).ok_or(Error::BadHeader)?;
        let n_tensors = rd_u32(b, hdr::N_TENSORS)?;
        let scratch_len = rd_u32(b, hdr::SCRATCH_LEN)?;
        let layer_table = rd_u32(b, hdr::LAYER_TABLE)?;
        let tensor_table = rd_u32(b, hdr::TENSOR_TABLE)?;
        let data_offset = rd_u32(b, hdr::DATA_OFFSET)?;
        let reserved = b.get(hdr::RESERVED..HEADER_LEN).ok_or(Error::Truncated)?;
        let known = HEADER_FLAG_ANOMALY | HEADER_FLAG_STREAM;
        if flags & !known != 0 || header_len as usize != HEADER_LEN || reserved.iter().any(|&r| r != 0) {
            return Err(Error::BadHeader);
        }
        let anomaly_bytes = b.get(hdr::THRESHOLD..hdr::WINDOW).ok_or(Error::Truncated)?;
        let anomaly = if flags & HEADER_FLAG_ANOMALY != 0 {
            let threshold = rd_f32(b, hdr::THRESHOLD)?;
            let target_fpr = rd_f32(b, hdr::TARGET_FPR)?;
            if !(threshold.is_finite() && target_fpr > 0.0 && target_fpr < 1.0) {
                return Err(Error::BadHeader);
            }
            Some(AnomalyThreshold { threshold, target_fpr })
        } else if anomaly_bytes.iter().any(|&r| r != 0) {
            return Err(Error::BadHeader);
        } else {
            None
        };
        let stream_bytes = b.get(hdr::WINDOW..hdr::RESERVED).ok_or(Error::Truncated)?;
        let stream = if flags & HEADER_FLAG_STREAM != 0 {
            let sf = rd_u8(b, hdr::STREAM_FLAGS)?;
            let layout = StreamLayout {
                window: rd_u16(b, hdr::WINDOW)?,
                channels: rd_u16(b, hdr::CHANNELS)?,
                differences: sf & STREAM_FLAG_DIFFERENCES != 0,
            };
            let min_window = if layout.differences { 2 } else { 1 };
            if sf & !STREAM_FLAG_DIFFERENCES != 0
                || layout.window < min_window
                || layout.channels == 0
                || layout.dim() != dim as usize
                || context_dim != 0
            {
                return Err(Error::BadHeader);
            }
            Some(layout)
        } else if stream_bytes.iter().any(|&r| r != 0) {
            return Err(Error::BadHeader);
        } else {
            None
        };
        if dim == 0 || dim as usize > MAX_DIM || context_dim as usize > MAX_DIM || n_layers as usize > MAX_LAYERS {
            return Err(Error::BadHeader);
        }
        // Sections in order: header, layer table, tensor table, data, CRC.
        let lt_end =
            (layer_table as usize).checked_add(n_layers as usize * LAYER_RECORD_LEN).ok_or(Error::BadHeader)?;
        let tt_end = (tensor_table as usize)
            .checked_add((n_tensors as usize).checked_mul(TENSOR_RECORD_LEN).ok_or(Error::BadHeader)?)
            .ok_or(Error::BadHeader)?;
        let body_end = (file_len as usize).checked_sub(4).ok_or(Error::BadHeader)?;
        if layer_table as usize != HEADER_LEN
            || tensor_table as usize != lt_end
            || (data_offset as usize) < tt_end
            || !(data_offset as usize).is_multiple_of(TENSOR_ALIGN)
            || data_offset as usize > body_end
        {
            return Err(Error::BadHeader);
        }
        let expected_tensors = N_GLOBAL_TENSORS + base.n_tensors();
        if (n_tensors as usize) < expected_tensors {
            return Err(Error::BadHeader);
        }
        Ok(Header {
            version,
            file_len,
            dim,
            context_dim,
            n_layers,
            base,
            n_tensors,
            scratch_len,
            layer_table,
            tensor_table,
            data_offset,
            anomaly,
            stream,
        })
    }
}

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
}

/// Read tensor record `i` (structure only; bounds are checked by [`Tables::tensor_bytes`]).
pub(crate) fn read_tensor_record(b: &[u8], h: &Header, i: u32) -> Result<TensorRecord> {
    if i >= h.n_tensors {
        return Err(Error::BadTensor(i));
    }
    let at = h.tensor_table as usize + i as usize * TENSOR_RECORD_LEN;
    let offset = rd_u32(b, at)?;
    let rows = rd_u32(b, at + 4)?;
    let cols = rd_u32(b, at + 8)?;
    let dtype = DType::from_u8(rd_u8(b, at + 12)?).ok_or(Error::BadTensor(i))?;
    let reserved = b.get(at + 13..at + 16).ok_or(Error::Truncated)?;
    if reserved.iter().any(|&r| r != 0) {
        return Err(Error::BadTensor(i));
    }
    if rows as usize > MAX_DIM * MAX_DIM || cols as usize > MAX_DIM * MAX_DIM {
        return Err(Error::BadTensor(i));
    }
    (rows as usize).checked_mul(cols as usize).and_then(|n| n.checked_mul(dtype.size())).ok_or(Error::BadTensor(i))?;
    Ok(TensorRecord { offset, rows, cols, dtype })
}

/// A layer record, decoded but not yet checked against its tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerRecord {
    /// Transform kind.
    pub kind: LayerKind,
    /// Conditioner activation.
    pub activation: Activation,
    /// Flags ([`FLAG_RESIDUAL`]).
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

/// Read layer record `i` (structure only).
pub(crate) fn read_layer_record(b: &[u8], h: &Header, i: u16) -> Result<LayerRecord> {
    if i >= h.n_layers {
        return Err(Error::BadLayer(i));
    }
    let at = h.layer_table as usize + i as usize * LAYER_RECORD_LEN;
    let kind = LayerKind::from_u8(rd_u8(b, at)?).ok_or(Error::BadLayer(i))?;
    let activation = Activation::from_u8(rd_u8(b, at + 1)?).ok_or(Error::BadLayer(i))?;
    let flags = rd_u8(b, at + 2)?;
    let reserved3 = rd_u8(b, at + 3)?;
    let split = rd_u16(b, at + 4)?;
    let bins = rd_u16(b, at + 6)?;
    let hidden = rd_u16(b, at + 8)?;
    let blocks = rd_u16(b, at + 10)?;
    let param = rd_f32(b, at + 12)?;
    let first_tensor = rd_u32(b, at + 16)?;
    let n_tensors = rd_u32(b, at + 20)?;
    let reserved = b.get(at + 24..at + 32).ok_or(Error::Truncated)?;
    if reserved3 != 0 || reserved.iter().any(|&r| r != 0) || flags & !KNOWN_FLAGS != 0 {
        return Err(Error::BadLayer(i));
    }
    Ok(LayerRecord { kind, activation, flags, split, bins, hidden, blocks, param, first_tensor, n_tensors })
}

/// Borrow the bytes of a tensor, checking that they lie inside the data section.
pub(crate) fn tensor_bytes<'a>(b: &'a [u8], h: &Header, i: u32) -> Result<(TensorRecord, &'a [u8])> {
    let t = read_tensor_record(b, h, i)?;
    let start = t.offset as usize;
    let end = start.checked_add(t.n_bytes()).ok_or(Error::BadTensor(i))?;
    let body_end = (h.file_len as usize).saturating_sub(4);
    if start < h.data_offset as usize || end > body_end || !start.is_multiple_of(TENSOR_ALIGN) {
        return Err(Error::BadTensor(i));
    }
    let bytes = b.get(start..end).ok_or(Error::BadTensor(i))?;
    Ok((t, bytes))
}

/// Borrow tensor `i` as `f32`s.
pub(crate) fn tensor_f32<'a>(b: &'a [u8], h: &Header, i: u32) -> Result<(TensorRecord, &'a [f32])> {
    let (t, bytes) = tensor_bytes(b, h, i)?;
    if t.dtype != DType::F32 {
        return Err(Error::BadTensor(i));
    }
    let v: &[f32] = bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)?;
    Ok((t, v))
}

/// Borrow tensor `i` as `u16`s (dtype u16 or bf16).
pub(crate) fn tensor_u16<'a>(b: &'a [u8], h: &Header, i: u32) -> Result<(TensorRecord, &'a [u16])> {
    let (t, bytes) = tensor_bytes(b, h, i)?;
    if t.dtype != DType::U16 && t.dtype != DType::BF16 {
        return Err(Error::BadTensor(i));
    }
    let v: &[u16] = bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)?;
    Ok((t, v))
}

/// Borrow tensor `i` as `i8`s.
pub(crate) fn tensor_i8<'a>(b: &'a [u8], h: &Header, i: u32) -> Result<(TensorRecord, &'a [i8])> {
    let (t, bytes) = tensor_bytes(b, h, i)?;
    if t.dtype != DType::I8 {
        return Err(Error::BadTensor(i));
    }
    Ok((t, bytemuck::cast_slice(bytes)))
}

/// Borrow tensor `i` as `i32`s.
pub(crate) fn tensor_i32<'a>(b: &'a [u8], h: &Header, i: u32) -> Result<(TensorRecord, &'a [i32])> {
    let (t, bytes) = tensor_bytes(b, h, i)?;
    if t.dtype != DType::I32 {
        return Err(Error::BadTensor(i));
    }
    let v: &[i32] = bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)?;
    Ok((t, v))
}

/// Checks done once at load on the raw buffer: magic, version, length, alignment
/// and CRC. Returns the buffer cut to `file_len` and its header.
pub(crate) fn check_envelope(bytes: &[u8]) -> Result<(&[u8], Header)> {
    if bytes.len() < 12 {
        return Err(Error::Truncated);
    }
    if bytes.get(0..4) != Some(&MAGIC[..]) {
        return Err(Error::BadMagic);
    }
    let version = rd_u16(bytes, hdr::VERSION)?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let file_len = rd_u32(bytes, hdr::FILE_LEN)? as usize;
    if file_len < HEADER_LEN + 4 {
        return Err(Error::BadHeader);
    }
    let b = bytes.get(..file_len).ok_or(Error::Truncated)?;
    if !(b.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
        return Err(Error::Misaligned);
    }
    let body = b.get(..file_len - 4).ok_or(Error::Truncated)?;
    let stored = rd_u32(b, file_len - 4)?;
    if crc32(body) != stored {
        return Err(Error::BadCrc);
    }
    let h = Header::parse(b)?;
    Ok((b, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
