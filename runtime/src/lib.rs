#![doc = include_str!("../README.md")]
#![no_std]
// The only `unsafe` code is the Arm kernels of `kernels/dsp.rs` and its
// `dsp/row_pairs.rs` (feature `dsp`: the int8 SMLAD loops, the f32 VLDM/VMLA
// kernel) and the x86-64 run-time
// dispatch of `kernels/x86.rs` (CPUID/XGETBV, AVX-512F/AVX2 variants), each
// block with its written justification; everything else is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// `!(x > 0.0)` is deliberate throughout: it is true for NaN too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

#[cfg(test)]
extern crate std;

// The module graph flows one way: format → kernels → transforms → (base) → model
// → anomaly → trajectory. `error`, `fmt` and `rng` are leaves every module may use.
mod fmt;

mod anomaly;
mod base;
mod error;
pub mod format;
pub mod kernels;
mod model;
mod rng;
pub mod trajectory;
mod transforms;
mod work;

#[doc(hidden)]
pub mod exporter_hooks;

pub use anomaly::{Alarm, AlarmState, Score, Stream};
pub use error::{Error, Result};
pub use model::{LayerInfo, Model};
pub use rng::Rng;
