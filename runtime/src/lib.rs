//! # floe-runtime
//!
//! A `#![no_std]`, heap-free evaluator for floe normalizing-flow model files.
//!
//! ```text
//! let model = Model::load(&MODEL_BYTES)?;            // validates every byte, once
//! let mut scratch = [0f32; SCRATCH];                 // size from model.scratch_len()
//! let lp = model.log_prob(&x, &[], &mut scratch)?;   // exact log-density, nats
//! ```
//!
//! The file is read in place (zero copies): tensors are borrowed from the
//! caller's buffer, which must be 4-byte aligned. All memory an evaluation needs
//! is the caller's `scratch` slice, whose length the file states
//! ([`Model::scratch_len`]). Transcendental functions come from `libm`, and all
//! accumulations run in a fixed order, so a Cortex-M and the host agree to the bit.
//!
//! The format is specified in `docs/FORMAT.md`; [`format`] is its code.
#![no_std]
// The one `unsafe` block is the DSP inner loop (`kernels/dsp.rs`, feature `dsp`),
// with its justification; everything else is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// `!(x > 0.0)` is deliberate throughout: it is true for NaN too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod fmt;

pub mod anomaly;
mod base;
mod conditioner;
mod error;
pub mod format;
pub mod kernels;
mod model;
pub mod rng;
pub mod transforms;

pub use anomaly::{Score, Stream};
pub use error::{Error, Result};
pub use format::{
    Activation, AnomalyThreshold, BaseKind, DType, Header, LayerKind, LayerRecord, StreamLayout, TensorRecord,
};
pub use model::{layer_work_len, scratch_words, LayerInfo, Model, Trace};
pub use rng::Rng;
