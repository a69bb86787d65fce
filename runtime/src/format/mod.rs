//! The floe model file, version 1: the one definition of the format in code.
//!
//! `docs/FORMAT.md` is the specification; this module is its code, both ways:
//! [`decode`](self#decoding) (what [`crate::Model::load`] validates) and
//! [`encode`] (what the exporter writes, into a caller's buffer, no allocation).
//! Each record type decodes and encodes next to itself, and every byte offset is
//! named once, in [`layout`].
//!
//! - the vocabulary: [`DType`], [`LayerKind`], [`Activation`], [`BaseKind`],
//!   [`Precision`] — one type per coded field.
//! - [`Header`], [`LayerRecord`], [`TensorRecord`]: the three record types.
//! - [`encode`]: a whole file from its records and tensors.
//! - [`spline`], [`made`]: numerical conventions both sides must share (spline
//!   constants, the MADE mask rule).
//!
//! All multi-byte fields are little-endian. The runtime reads everything in place
//! from the caller's buffer: tensors are borrowed as `&[f32]` / `&[u16]` / `&[i8]`
//! / `&[i32]` views, never copied.
//!
//! # Decoding
//!
//! Decoding happens once, inside [`crate::Model::load`]: magic, version, length,
//! alignment, CRC-32, then the header, every tensor record and every layer record.
//! The decoders are public so that tools can read a file's records, but a model is
//! only ever evaluated through a validated [`crate::Model`].

#[cfg(test)]
mod canonical_tests;
mod crc;
pub mod encode;
mod fields;
mod header;
pub mod layout;
pub mod made;
mod records;
pub mod requant_words;
pub mod row_pairs;
pub mod spline;
mod types;
mod view;

pub use crc::crc32;
pub use fields::{AlarmRule, AnomalyThreshold, StreamLayout, TrajectoryLayout};
pub use header::Header;
pub use records::{LayerRecord, TensorRecord};
pub use types::{Activation, BaseKind, DType, LayerKind, Precision};
pub(crate) use view::View;

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
/// Size of the CRC-32 at the end of the file.
pub const CRC_LEN: usize = 4;
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
/// Largest conditioner depth (hidden layers of a plain MLP, or residual blocks).
pub const MAX_BLOCKS: usize = 64;
/// Number of tensors before the base's and the layers' tensors: x mean, x std,
/// context mean, context std.
pub const N_GLOBAL_TENSORS: usize = 4;

/// Most components of a mixture base.
pub const MAX_COMPONENTS: usize = 64;

/// Header flag: the file carries an anomaly threshold.
pub const HEADER_FLAG_ANOMALY: u16 = 1;
/// Header flag: the model scores windows of a stream.
pub const HEADER_FLAG_STREAM: u16 = 2;
/// Header flag: the model is a trajectory model (an encoder of the observed
/// history and a chain of per-step conditional flows over 2-D displacements).
pub const HEADER_FLAG_TRAJECTORY: u16 = 4;
/// Every header flag bit version 1 defines.
pub(crate) const KNOWN_HEADER_FLAGS: u16 = HEADER_FLAG_ANOMALY | HEADER_FLAG_STREAM | HEADER_FLAG_TRAJECTORY;
/// Stream flag: the input is the window's first differences.
pub const STREAM_FLAG_DIFFERENCES: u8 = 1;
/// Stream flag: the file carries an alarm rule (header bytes 61–63; needs the
/// anomaly threshold, header flag bit 0).
pub const STREAM_FLAG_ALARM: u8 = 2;
/// Every stream flag bit version 1 defines.
pub(crate) const KNOWN_STREAM_FLAGS: u8 = STREAM_FLAG_DIFFERENCES | STREAM_FLAG_ALARM;
/// Longest alarm window m (windows the rule counts: one bit each of a `u32`).
pub const MAX_ALARM_WINDOW: u8 = 32;
/// Trajectory flag: one flow per future step (else one flow shared by every step,
/// told apart by a learned step embedding).
pub const TRAJECTORY_FLAG_PER_STEP: u8 = 1;
/// Trajectory flag: positions are expressed in the heading frame of the last
/// observed displacement (else in the world frame, translated to the last
/// observed position).
pub const TRAJECTORY_FLAG_HEADING: u8 = 2;
/// Every trajectory flag bit version 1 defines.
pub(crate) const KNOWN_TRAJECTORY_FLAGS: u8 = TRAJECTORY_FLAG_PER_STEP | TRAJECTORY_FLAG_HEADING;
/// Largest number of observed positions a trajectory model encodes.
pub const MAX_OBSERVED: usize = 32;
/// Largest width of a trajectory model's history encoding.
pub const MAX_ENCODING: usize = 64;
/// Largest width of a trajectory model's step embedding.
pub const MAX_EMBEDDING: usize = 30;
/// Largest context of a trajectory model's step flow: encoding + 2 (the previous
/// displacement) + embedding.
pub const MAX_TRAJECTORY_CONTEXT: usize = MAX_ENCODING + 2 + MAX_EMBEDDING;

/// Layer flag: the conditioner uses residual blocks.
pub const FLAG_RESIDUAL: u8 = 1;
/// Layer flag: the conditioner's weights are int8 (per-output-channel bf16
/// scales), its activations and biases f32 ([`Precision::W8`]).
pub const FLAG_W8: u8 = 2;
/// Layer flag: the conditioner is fully int8 ([`Precision::Int8`]).
pub const FLAG_INT8: u8 = 4;
/// Layer flag: the elementwise map reads its raw parameters the way zuko
/// (probabilists/zuko 1.x) does — spline: soft-clipped logits, no minimum bin
/// size, `exp` derivatives; affine: `log σ = s / (1 + |s|/A)` — so a flow trained
/// in zuko runs unchanged ([`spline`] has the constants). Couplings and MADE
/// layers only.
pub const FLAG_ZUKO: u8 = 8;
/// Layer flag: the int8 conditioner's weight matrices are stored in the
/// row-pair layout ([`row_pairs`]); only with [`FLAG_INT8`]. Files without it
/// keep plain row-major int8 weights, which every reader still takes.
pub const FLAG_INT8_ROW_PAIRS: u8 = 16;
/// Layer flag: the int8 conditioner's hidden denses store each unit's
/// requantization multiplier and shift as one i32 *requantization word*
/// ([`requant_words`]) in place of its bf16 scale, so no evaluation derives
/// them; only with [`FLAG_INT8`]. Files without it derive them per call from
/// the scales, as before.
pub const FLAG_INT8_WORDS: u8 = 32;
/// Every layer flag bit version 1 defines.
pub(crate) const KNOWN_LAYER_FLAGS: u8 =
    FLAG_RESIDUAL | FLAG_W8 | FLAG_INT8 | FLAG_ZUKO | FLAG_INT8_ROW_PAIRS | FLAG_INT8_WORDS;

/// Widen a bfloat16 (the high half of an f32) to f32, exactly.
pub const fn bf16_to_f32(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// `n` rounded up to a multiple of `a` (`a` > 0), or `None` on overflow.
pub(crate) const fn align_up(n: usize, a: usize) -> Option<usize> {
    match n.checked_add(a - 1) {
        Some(v) => Some(v / a * a),
        None => None,
    }
}
