//! Writing a model file: the inverse of [`crate::Model::load`]'s decoding, into a
//! caller's buffer (no allocation).
//!
//! The caller (the exporter) plans the contents — the header fields, one
//! [`LayerRecord`] per layer with its tensor range, the tensors in file order —
//! and [`Contents::encode`] lays them out: header, layer table, tensor table, data
//! (each tensor at a 16-byte aligned offset, zero padding), CRC-32.
//!
//! ```
//! use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
//! use floe_runtime::format::{BaseKind, LayerKind, LayerRecord};
//!
//! fn vector(v: &[f32]) -> TensorRef<'_> {
//!     TensorRef { rows: v.len() as u32, cols: 1, data: TensorData::F32(v) }
//! }
//! // A 2-D flow with one ActNorm layer, z = x·e^s + b, and a standard normal base.
//! let (mean, std, log_scale, shift) = ([0.0f32; 2], [1.0f32; 2], [0.5f32, -0.25], [1.0f32, 0.0]);
//! let tensors = [vector(&mean), vector(&std), vector(&[]), vector(&[]), vector(&log_scale), vector(&shift)];
//! let layers = [LayerRecord::plain(LayerKind::ActNorm, 4, 2)];
//! let contents = Contents {
//!     dim: 2,
//!     context_dim: 0,
//!     base: BaseKind::StdNormal,
//!     scratch_len: 4, // 2·D + C + the largest layer's work (none here)
//!     anomaly: None,
//!     stream: None,
//!     alarm: None,
//!     trajectory: None,
//!     layers: &layers,
//!     tensors: &tensors,
//! };
//! #[repr(C, align(16))]
//! struct Flash([u8; 256]);
//! let mut flash = Flash([0; 256]);
//! let n = contents.encode(&mut flash.0)?;
//! assert_eq!(n, contents.encoded_len()?);
//!
//! let model = floe_runtime::Model::load(&flash.0[..n])?;
//! let mut scratch = [0.0f32; 4];
//! let lp = model.log_prob(&[1.0, 0.0], &[], &mut scratch)?;
//! let z0 = 0.5f32.exp() + 1.0; // z1 = 0
//! let want = -0.5 * z0 * z0 - 2.0 * 0.918_938_5 + (0.5 - 0.25);
//! assert!((lp - want).abs() < 1e-5);
//! # Ok::<(), floe_runtime::Error>(())
//! ```

use super::records::{head, len32, put};
use super::{
    align_up, crc32, AlarmRule, AnomalyThreshold, BaseKind, DType, Header, LayerRecord, StreamLayout, TensorRecord,
    TrajectoryLayout, CRC_LEN, HEADER_LEN, LAYER_RECORD_LEN, MAX_LAYERS, N_GLOBAL_TENSORS, TENSOR_ALIGN,
    TENSOR_RECORD_LEN, VERSION,
};
use crate::error::{Error, Result};

/// A tensor's values, borrowed, by element type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorData<'t> {
    /// `f32` values.
    F32(&'t [f32]),
    /// `u16` values (permutation indices).
    U16(&'t [u16]),
    /// `i8` values (quantized weights).
    I8(&'t [i8]),
    /// `i32` values (quantized biases).
    I32(&'t [i32]),
    /// bfloat16 bit patterns (per-channel scales).
    BF16(&'t [u16]),
}

impl TensorData<'_> {
    /// The element type.
    pub const fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::U16(_) => DType::U16,
            TensorData::I8(_) => DType::I8,
            TensorData::I32(_) => DType::I32,
            TensorData::BF16(_) => DType::BF16,
        }
    }
    /// Number of elements.
    pub const fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U16(v) | TensorData::BF16(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }
    /// Whether there is no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of data bytes.
    pub const fn n_bytes(&self) -> usize {
        self.len() * self.dtype().size()
    }
    /// Write the values little-endian into the first [`TensorData::n_bytes`] bytes of `out`.
    fn write(&self, out: &mut [u8]) -> Result<()> {
        let out = head(out, self.n_bytes())?;
        match self {
            TensorData::F32(v) => le_into(out, v.iter().map(|x| x.to_le_bytes())),
            TensorData::U16(v) | TensorData::BF16(v) => le_into(out, v.iter().map(|x| x.to_le_bytes())),
            TensorData::I8(v) => le_into(out, v.iter().map(|x| x.to_le_bytes())),
            TensorData::I32(v) => le_into(out, v.iter().map(|x| x.to_le_bytes())),
        }
        Ok(())
    }
}

fn le_into<const N: usize>(out: &mut [u8], values: impl Iterator<Item = [u8; N]>) {
    for (dst, v) in out.chunks_exact_mut(N).zip(values) {
        dst.copy_from_slice(&v);
    }
}

/// A tensor to write: `rows × cols` values, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRef<'t> {
    /// Rows (1-D tensors: the length).
    pub rows: u32,
    /// Columns (1-D tensors: 1).
    pub cols: u32,
    /// The values.
    pub data: TensorData<'t>,
}

/// Everything a file holds, borrowed: the header fields the writer chooses, the
/// layer records (in flow order, data side first; each names its tensor range),
/// and every tensor in file order — x mean, x std, context mean, context std, the
/// base's tensors, then each layer's.
#[derive(Debug, Clone, Copy)]
pub struct Contents<'c> {
    /// Data dimension D.
    pub dim: u16,
    /// Context dimension C.
    pub context_dim: u16,
    /// Base distribution.
    pub base: BaseKind,
    /// Scratch, in f32 words, the runtime will need (the runtime checks it at load).
    pub scratch_len: u32,
    /// A calibrated anomaly threshold.
    pub anomaly: Option<AnomalyThreshold>,
    /// A stream layout.
    pub stream: Option<StreamLayout>,
    /// The stream's alarm rule (needs `stream` and `anomaly`).
    pub alarm: Option<AlarmRule>,
    /// A trajectory layout (layer 0 is then the history encoder).
    pub trajectory: Option<TrajectoryLayout>,
    /// The layer records.
    pub layers: &'c [LayerRecord],
    /// The tensors, in file order.
    pub tensors: &'c [TensorRef<'c>],
}

impl Contents<'_> {
    /// The header of the encoded file (all offsets and lengths computed).
    pub fn header(&self) -> Result<Header> {
        let n_layers = u16::try_from(self.layers.len()).map_err(|_| Error::BadHeader)?;
        if self.layers.len() > MAX_LAYERS {
            return Err(Error::BadHeader);
        }
        let n_tensors = u32::try_from(self.tensors.len()).map_err(|_| Error::BadHeader)?;
        if let Some(rule) = self.alarm {
            if !rule.is_valid() || self.stream.is_none() || self.anomaly.is_none() {
                return Err(Error::BadHeader);
            }
        }
        let layer_table = HEADER_LEN;
        let tensor_table = layer_table + self.layers.len() * LAYER_RECORD_LEN;
        let table_end = self
            .tensors
            .len()
            .checked_mul(TENSOR_RECORD_LEN)
            .and_then(|t| t.checked_add(tensor_table))
            .ok_or(Error::BadHeader)?;
        let data_offset = align_up(table_end, TENSOR_ALIGN).ok_or(Error::BadHeader)?;
        let mut end = data_offset;
        for (i, t) in self.tensors.iter().enumerate() {
            end = align_up(end, TENSOR_ALIGN)
                .and_then(|off| off.checked_add(t.data.n_bytes()))
                .ok_or(Error::BadTensor(len32(i)))?;
        }
        let file_len = end.checked_add(CRC_LEN).ok_or(Error::BadHeader)?;
        Ok(Header {
            version: VERSION,
            file_len: u32::try_from(file_len).map_err(|_| Error::BadHeader)?,
            dim: self.dim,
            context_dim: self.context_dim,
            n_layers,
            base: self.base,
            n_tensors,
            scratch_len: self.scratch_len,
            layer_table: layer_table as u32,
            tensor_table: u32::try_from(tensor_table).map_err(|_| Error::BadHeader)?,
            data_offset: u32::try_from(data_offset).map_err(|_| Error::BadHeader)?,
            anomaly: self.anomaly,
            stream: self.stream,
            alarm: self.alarm,
            trajectory: self.trajectory,
        })
    }

    /// Bytes [`Contents::encode`] writes.
    pub fn encoded_len(&self) -> Result<usize> {
        self.header().map(|h| h.file_len as usize)
    }

    /// Write the file into the start of `out`; returns its length. `out` must hold
    /// [`Contents::encoded_len`] bytes; the file is read back by
    /// [`crate::Model::load`] only from a 4-byte aligned address.
    ///
    /// Checks the plan's structure (every tensor's values fill `rows × cols`;
    /// layers own contiguous tensor ranges after the global and base tensors, up
    /// to the last tensor), not its meaning: loading the result validates the rest.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        let h = self.header()?;
        let file_len = h.file_len as usize;
        let out = head(out, file_len)?;
        out.fill(0);
        h.encode(out)?;
        let mut next = (N_GLOBAL_TENSORS + self.base.n_tensors()) as u32;
        for (i, rec) in self.layers.iter().enumerate() {
            let idx = u16::try_from(i).map_err(|_| Error::BadHeader)?;
            if rec.first_tensor != next {
                return Err(Error::BadLayer(idx));
            }
            next = rec.first_tensor.checked_add(rec.n_tensors).ok_or(Error::BadLayer(idx))?;
            let at = h.layer_table as usize + i * LAYER_RECORD_LEN;
            rec.encode(out.get_mut(at..).ok_or(Error::Internal)?)?;
        }
        if next != h.n_tensors {
            return Err(Error::BadHeader);
        }
        let mut end = h.data_offset as usize;
        for (i, t) in self.tensors.iter().enumerate() {
            let idx = len32(i);
            if (t.rows as usize).checked_mul(t.cols as usize) != Some(t.data.len()) {
                return Err(Error::BadTensor(idx));
            }
            let offset = align_up(end, TENSOR_ALIGN).ok_or(Error::BadTensor(idx))?;
            let rec = TensorRecord {
                offset: u32::try_from(offset).map_err(|_| Error::BadTensor(idx))?,
                rows: t.rows,
                cols: t.cols,
                dtype: t.data.dtype(),
            };
            let at = h.tensor_table as usize + i * TENSOR_RECORD_LEN;
            rec.encode(out.get_mut(at..).ok_or(Error::Internal)?)?;
            t.data.write(out.get_mut(offset..).ok_or(Error::Internal)?)?;
            end = offset + t.data.n_bytes();
        }
        let body = file_len - CRC_LEN;
        let crc = crc32(out.get(..body).ok_or(Error::Internal)?);
        put(out, body, &crc.to_le_bytes())?;
        Ok(file_len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Activation, LayerKind, FLAG_RESIDUAL};
    use super::*;

    #[test]
    fn records_decode_what_they_encode() {
        let rec = LayerRecord {
            kind: LayerKind::SplineCoupling,
            activation: Activation::Tanh,
            flags: FLAG_RESIDUAL,
            split: 3,
            bins: 8,
            hidden: 64,
            blocks: 2,
            param: 4.0,
            first_tensor: 17,
            n_tensors: 8,
        };
        let mut b = [0xAAu8; LAYER_RECORD_LEN];
        rec.encode(&mut b).unwrap();
        assert_eq!(LayerRecord::decode(&b, 0), Ok(rec));
        let t = TensorRecord { offset: 4096, rows: 3, cols: 5, dtype: DType::BF16 };
        let mut b = [0xAAu8; TENSOR_RECORD_LEN];
        t.encode(&mut b).unwrap();
        assert_eq!(TensorRecord::decode(&b, 0), Ok(t));
        assert_eq!(t.encode(&mut [0u8; 8]), Err(Error::OutputTooSmall { needed: TENSOR_RECORD_LEN as u32, got: 8 }));
    }

    #[test]
    fn encoder_refuses_a_short_buffer_and_a_broken_plan() {
        let v: &[f32] = &[0.0, 1.0];
        let one: &[f32] = &[1.0, 1.0];
        let t = |d| TensorRef { rows: 2, cols: 1, data: TensorData::F32(d) };
        let tensors = [t(v), t(one), TensorRef { rows: 0, cols: 1, data: TensorData::F32(&[]) }, t(&[])];
        let c = Contents {
            dim: 2,
            context_dim: 0,
            base: BaseKind::StdNormal,
            scratch_len: 4,
            anomaly: None,
            stream: None,
            alarm: None,
            trajectory: None,
            layers: &[],
            tensors: &tensors,
        };
        // Tensor 3 says 2 x 1 but holds no value.
        assert_eq!(c.encode(&mut [0u8; 512]), Err(Error::BadTensor(3)));
        let tensors = [t(v), t(one), TensorRef { rows: 0, cols: 1, data: TensorData::F32(&[]) }, tensors[2]];
        let c = Contents { tensors: &tensors, ..c };
        let n = c.encoded_len().unwrap();
        assert_eq!(c.encode(&mut [0u8; 64]), Err(Error::OutputTooSmall { needed: n as u32, got: 64 }));
        // A layer whose tensors do not start where the previous ones end.
        let layers = [LayerRecord::plain(LayerKind::Reverse, 5, 0)];
        assert_eq!(Contents { layers: &layers, ..c }.encode(&mut [0u8; 512]), Err(Error::BadLayer(0)));
    }

    // That the encoder reproduces the bundled models byte for byte is checked
    // by `fuzz-checks` (`assert_canonical`, on every seed and every file the
    // fuzzer gets to load).
}
