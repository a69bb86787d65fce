//! # floe-exporter
//!
//! Train normalizing flows with Burn and freeze them into floe model files that
//! `floe-runtime` evaluates exactly, without a heap, on a microcontroller.
//!
//! The library, by concern (the `floe` binary is a thin CLI over it):
//!
//! - [`data`]: readers (CSV, `.npy`, `.npz`), the one row type, splits,
//!   standardization;
//! - [`flow`]: the Burn modules, one per runtime transform;
//! - [`train`]: the training loop (on the caller's device), checkpoints,
//!   settings-file experiments;
//! - [`freeze`]: file layout, the runtime's encoder, the loaded model, parity;
//! - [`quant`]: post-training quantization with a bit-exact check;
//! - [`anomaly`]: the ADBench protocol, baselines, streams; [`metrics`]: AUROC,
//!   AUPRC, thresholds;
//! - [`demo`], [`plot`].
#![deny(missing_docs)]
// `!(a > b)` is deliberate throughout: it is true for NaN, which must fail checks.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod anomaly;
pub mod data;
pub mod demo;
pub mod error;
pub mod flow;
pub mod freeze;
pub mod import;
pub mod metrics;
pub mod onnx;
pub mod plot;
pub mod quant;
pub mod train;
pub mod trajectory;

pub use error::{FloeError, Result};
