//! The fixed header, decoded and encoded next to itself at the offsets
//! [`super::layout::header`] names (the layer and tensor records are in
//! `records.rs`).

use super::fields::{AlarmRule, AnomalyThreshold, StreamLayout, TrajectoryLayout};
use super::layout::header as hdr;
use super::records::{check_magic_and_version, head, put, rd_f32, rd_u16, rd_u32, rd_u8};
use super::types::BaseKind;
use super::{
    CRC_LEN, HEADER_FLAG_ANOMALY, HEADER_FLAG_STREAM, HEADER_FLAG_TRAJECTORY, HEADER_LEN, KNOWN_HEADER_FLAGS,
    KNOWN_STREAM_FLAGS, KNOWN_TRAJECTORY_FLAGS, LAYER_RECORD_LEN, MAX_DIM, MAX_EMBEDDING, MAX_ENCODING, MAX_LAYERS,
    MAX_OBSERVED, N_GLOBAL_TENSORS, STREAM_FLAG_ALARM, STREAM_FLAG_DIFFERENCES, TENSOR_RECORD_LEN,
    TRAJECTORY_FLAG_HEADING, TRAJECTORY_FLAG_PER_STEP,
};
use crate::error::{Error, Result};

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
    /// The stream's alarm rule (stream flag bit 1; needs `anomaly` and `stream`).
    pub alarm: Option<AlarmRule>,
    /// The trajectory layout, when the model is a trajectory model (flag bit 2).
    pub trajectory: Option<TrajectoryLayout>,
}

impl Header {
    /// Decode and check the header fields that do not depend on the rest of the
    /// file: magic, version, flags, the section layout, the limits. `b` must
    /// already be cut to `file_len` (the CRC is checked by [`crate::Model::load`],
    /// which decodes the header only after it).
    pub fn decode(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = check_magic_and_version(b)?;
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
        if flags & !KNOWN_HEADER_FLAGS != 0 || header_len as usize != HEADER_LEN {
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
        let stream_bytes = b.get(hdr::WINDOW..hdr::HORIZON).ok_or(Error::Truncated)?;
        let sf = rd_u8(b, hdr::STREAM_FLAGS)?;
        let stream = if flags & HEADER_FLAG_STREAM != 0 {
            let layout = StreamLayout {
                window: rd_u16(b, hdr::WINDOW)?,
                channels: rd_u16(b, hdr::CHANNELS)?,
                differences: sf & STREAM_FLAG_DIFFERENCES != 0,
            };
            let min_window = if layout.differences { 2 } else { 1 };
            if sf & !KNOWN_STREAM_FLAGS != 0
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
        let alarm_bytes = b.get(hdr::ALARM_WINDOW..HEADER_LEN).ok_or(Error::Truncated)?;
        let alarm = if stream.is_some() && sf & STREAM_FLAG_ALARM != 0 {
            let rule = AlarmRule {
                window: rd_u8(b, hdr::ALARM_WINDOW)?,
                raise: rd_u8(b, hdr::ALARM_RAISE)?,
                clear: rd_u8(b, hdr::ALARM_CLEAR)?,
            };
            // A rule counts verdicts: it needs the threshold they come from.
            if !rule.is_valid() || anomaly.is_none() {
                return Err(Error::BadHeader);
            }
            Some(rule)
        } else if alarm_bytes.iter().any(|&r| r != 0) {
            return Err(Error::BadHeader);
        } else {
            None
        };
        let trajectory_bytes = b.get(hdr::HORIZON..hdr::ALARM_WINDOW).ok_or(Error::Truncated)?;
        let trajectory = if flags & HEADER_FLAG_TRAJECTORY != 0 {
            let tf = rd_u8(b, hdr::TRAJECTORY_FLAGS)?;
            let t = TrajectoryLayout {
                horizon: rd_u8(b, hdr::HORIZON)?,
                observed: rd_u8(b, hdr::OBSERVED)?,
                per_step: tf & TRAJECTORY_FLAG_PER_STEP != 0,
                heading_frame: tf & TRAJECTORY_FLAG_HEADING != 0,
                embedding: rd_u8(b, hdr::EMBEDDING)?,
            };
            let encoding = t.encoding(context_dim as usize);
            let ok = tf & !KNOWN_TRAJECTORY_FLAGS == 0
                && t.horizon >= 1
                && (2..=MAX_OBSERVED).contains(&(t.observed as usize))
                && t.embedding as usize <= MAX_EMBEDDING
                && !(t.per_step && t.embedding != 0)
                && dim == 2
                && stream.is_none()
                && (1..=MAX_ENCODING).contains(&encoding)
                && t.context_dim(encoding) == context_dim as usize
                && n_layers >= 2
                && (!t.per_step || (n_layers - 1) % t.horizon as u16 == 0);
            if !ok {
                return Err(Error::BadHeader);
            }
            Some(t)
        } else if trajectory_bytes.iter().any(|&r| r != 0) {
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
        let body_end = (file_len as usize).checked_sub(CRC_LEN).ok_or(Error::BadHeader)?;
        if layer_table as usize != HEADER_LEN
            || tensor_table as usize != lt_end
            || data_offset as usize != tt_end
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
            alarm,
            trajectory,
        })
    }

    /// Encode into the first [`HEADER_LEN`] bytes of `out` (the reserved bytes
    /// are zeroed). [`Header::decode`] reads back the same header.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        // A rule needs its stream and its threshold, or it would not read back.
        if self.alarm.is_some_and(|r| !r.is_valid() || self.stream.is_none() || self.anomaly.is_none()) {
            return Err(Error::BadHeader);
        }
        let b = head(out, HEADER_LEN)?;
        b.fill(0);
        let mut flags = 0u16;
        put(b, hdr::MAGIC, &super::MAGIC)?;
        put(b, hdr::VERSION, &self.version.to_le_bytes())?;
        if let Some(a) = self.anomaly {
            flags |= HEADER_FLAG_ANOMALY;
            put(b, hdr::THRESHOLD, &a.threshold.to_le_bytes())?;
            put(b, hdr::TARGET_FPR, &a.target_fpr.to_le_bytes())?;
        }
        if let Some(st) = self.stream {
            flags |= HEADER_FLAG_STREAM;
            put(b, hdr::WINDOW, &st.window.to_le_bytes())?;
            put(b, hdr::CHANNELS, &st.channels.to_le_bytes())?;
            let alarm = if self.alarm.is_some() { STREAM_FLAG_ALARM } else { 0 };
            put(b, hdr::STREAM_FLAGS, &[alarm | if st.differences { STREAM_FLAG_DIFFERENCES } else { 0 }])?;
            if let Some(r) = self.alarm {
                put(b, hdr::ALARM_WINDOW, &[r.window, r.raise, r.clear])?;
            }
        }
        if let Some(t) = self.trajectory {
            flags |= HEADER_FLAG_TRAJECTORY;
            put(b, hdr::HORIZON, &[t.horizon])?;
            put(b, hdr::OBSERVED, &[t.observed])?;
            put(b, hdr::TRAJECTORY_FLAGS, &[t.flags()])?;
            put(b, hdr::EMBEDDING, &[t.embedding])?;
        }
        put(b, hdr::FLAGS, &flags.to_le_bytes())?;
        put(b, hdr::FILE_LEN, &self.file_len.to_le_bytes())?;
        put(b, hdr::HEADER_LEN, &(HEADER_LEN as u32).to_le_bytes())?;
        put(b, hdr::DIM, &self.dim.to_le_bytes())?;
        put(b, hdr::CONTEXT_DIM, &self.context_dim.to_le_bytes())?;
        put(b, hdr::N_LAYERS, &self.n_layers.to_le_bytes())?;
        put(b, hdr::BASE_KIND, &(self.base as u16).to_le_bytes())?;
        put(b, hdr::N_TENSORS, &self.n_tensors.to_le_bytes())?;
        put(b, hdr::SCRATCH_LEN, &self.scratch_len.to_le_bytes())?;
        put(b, hdr::LAYER_TABLE, &self.layer_table.to_le_bytes())?;
        put(b, hdr::TENSOR_TABLE, &self.tensor_table.to_le_bytes())?;
        put(b, hdr::DATA_OFFSET, &self.data_offset.to_le_bytes())
    }
}
