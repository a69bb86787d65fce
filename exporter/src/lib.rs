//! # floe-exporter
//!
//! Train normalizing flows with Burn and freeze them into floe model files that
//! `floe-runtime` evaluates exactly, without a heap, on a microcontroller.
#![deny(missing_docs)]
// `!(a > b)` is deliberate throughout: it is true for NaN, which must fail checks.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod error;
pub mod model;
pub mod writer;

pub use error::{FloeError, Result};
pub mod anomaly;
pub mod anomaly_cli;
pub mod baselines;
pub mod cli;
pub mod data;
pub mod freeze;
pub mod pipeline;
pub mod plot;
pub mod quant;
pub mod train;
