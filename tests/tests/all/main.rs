//! Cross-crate tests: the exporter against the runtime.
//!
//! One test binary with a module per subject, not one binary per file: every
//! binary links Burn with its CubeCL backends, and linking eight of them cost
//! minutes of CI for nothing. Run one subject with
//! `cargo test -p floe-tests --test all gpu::`.

mod anomaly;
mod batch;
mod flows;
mod format;
mod full_mixture;
mod gpu;
mod interop;
mod layering;
mod mixture;
mod onnx;
mod parity;
mod quant;
mod training;
mod trajectory;
