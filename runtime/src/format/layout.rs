//! Byte offsets of every field, named once: the decoders and the encoder in this
//! module and `docs/FORMAT.md` are the only places they appear.

/// Offsets within the 64-byte header.
pub mod header {
    /// `[u8; 4]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` version.
    pub const VERSION: usize = 4;
    /// `u16` flags: [`super::super::HEADER_FLAG_ANOMALY`], [`super::super::HEADER_FLAG_STREAM`].
    pub const FLAGS: usize = 6;
    /// `u32` file length, CRC included.
    pub const FILE_LEN: usize = 8;
    /// `u32` header length (64).
    pub const HEADER_LEN: usize = 12;
    /// `u16` data dimension D.
    pub const DIM: usize = 16;
    /// `u16` context dimension C.
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
    /// `f32` anomaly threshold (header flag bit 0; else 0).
    pub const THRESHOLD: usize = 44;
    /// `f32` target false-alarm rate of the threshold (header flag bit 0; else 0).
    pub const TARGET_FPR: usize = 48;
    /// `u16` stream window W (header flag bit 1; else 0).
    pub const WINDOW: usize = 52;
    /// `u16` stream channels C (header flag bit 1; else 0).
    pub const CHANNELS: usize = 54;
    /// `u8` stream flags (bit 0: first differences; header flag bit 1; else 0).
    pub const STREAM_FLAGS: usize = 56;
    /// `u8` trajectory horizon T, future steps (header flag bit 2; else 0).
    pub const HORIZON: usize = 57;
    /// `u8` trajectory observed positions (header flag bit 2; else 0).
    pub const OBSERVED: usize = 58;
    /// `u8` trajectory flags (bit 0: per-step flows; bit 1: heading frame).
    pub const TRAJECTORY_FLAGS: usize = 59;
    /// `u8` trajectory step-embedding width E (header flag bit 2; else 0).
    pub const EMBEDDING: usize = 60;
    /// `u8` alarm window m: the last m windows the alarm rule counts (stream flag
    /// bit 1; else 0).
    pub const ALARM_WINDOW: usize = 61;
    /// `u8` alarm raise count k: the alarm goes on when at least k of the last m
    /// windows are above the threshold (stream flag bit 1; else 0).
    pub const ALARM_RAISE: usize = 62;
    /// `u8` alarm clear count j: an active alarm goes off when at most j of the
    /// last m windows are above the threshold (stream flag bit 1; else 0).
    pub const ALARM_CLEAR: usize = 63;
}

/// Offsets within a 32-byte layer record.
pub mod layer {
    /// `u8` layer kind.
    pub const KIND: usize = 0;
    /// `u8` conditioner activation.
    pub const ACTIVATION: usize = 1;
    /// `u8` flags: residual, w8, int8.
    pub const FLAGS: usize = 2;
    /// `u8` reserved (zero).
    pub const RESERVED_BYTE: usize = 3;
    /// `u16` couplings: pass-through coordinates.
    pub const SPLIT: usize = 4;
    /// `u16` splines: bins K.
    pub const BINS: usize = 6;
    /// `u16` conditioner width H.
    pub const HIDDEN: usize = 8;
    /// `u16` conditioner depth.
    pub const BLOCKS: usize = 10;
    /// `f32` spline tail bound / affine log-scale clamp.
    pub const PARAM: usize = 12;
    /// `u32` index of the layer's first tensor.
    pub const FIRST_TENSOR: usize = 16;
    /// `u32` number of tensors the layer owns.
    pub const N_TENSORS: usize = 20;
    /// Start of the reserved bytes (zero) up to the end of the record.
    pub const RESERVED: usize = 24;
}

/// Offsets within a 16-byte tensor record.
pub mod tensor {
    /// `u32` offset of the first element from the start of the file.
    pub const OFFSET: usize = 0;
    /// `u32` rows (1-D tensors: the length).
    pub const ROWS: usize = 4;
    /// `u32` columns (1-D tensors: 1).
    pub const COLS: usize = 8;
    /// `u8` element type.
    pub const DTYPE: usize = 12;
    /// Start of the reserved bytes (zero) up to the end of the record.
    pub const RESERVED: usize = 13;
}
