//! `cargo xtask <task>`: the one place CI logic lives, split by job as defmt's
//! xtask is.
//!
//! - `ci`: install the thumb targets, build the runtime for both with no `std`
//!   or `alloc` (and with `defmt`), lint it, run every test, run the demo, then
//!   `qemu` (`ci.rs`).
//! - `qemu`: run the firmware programs in QEMU (Cortex-M4F, Cortex-M0, RV32IMAC)
//!   and diff their output bit for bit against the host runtime; print the cost
//!   table (`qemu.rs`, with `host.rs` the reference, `elf.rs` the ELF reader,
//!   `report.rs` the measurements).
//! - `aarch64`: the runtime's tests built for `aarch64-unknown-linux-gnu` and run
//!   under `qemu-aarch64`, and every firmware program's host reference computed
//!   there, diffed bit for bit against x86-64 (`aarch64.rs`; `host-lines` is the
//!   subcommand it runs there).
//! - `ffi [--write]`: the C ABI from the C side: the header cbindgen generates
//!   is the committed one, and a C program on the bundled models prints the
//!   Rust runtime's results bit for bit on x86-64, on aarch64 (qemu-aarch64)
//!   and as Cortex-M4F firmware in QEMU; the phone static libraries build
//!   (`ffi.rs`, `ffi_ref.rs` the reference, `ffi_m4f.rs` the firmware).
//! - `onnx`: `floe export onnx` of every bundled model, checked by ONNX
//!   Runtime (a Python virtual environment under `target/onnx/`) against the
//!   runtime's `log_prob` with the freeze's rule (`onnx.rs`, `onnx/check.py`).
//! - `interop`: the fixtures of `floe import` made by torch, zuko 1.6.0 and
//!   nflows 0.14 (a Python virtual environment under `target/interop/`), then
//!   the import tests on them (`interop.rs`, `interop/make_fixtures.py`). Not in
//!   CI: CI tests the committed fixtures.
//! - `size`: build the firmware and print its section sizes (`elf.rs`).
//! - `bench`: host kernel benchmark and QEMU instruction counts, int8 vs f32
//!   (`bench.rs`).
//! - `bench-peers`: floe against FlowJAX 19 on the demo architecture, side by
//!   side (a Python virtual environment under `target/peers/`; `bench.rs`).
//! - `bench-train`: training throughput per device (CPU, the GPU path with and
//!   without the fused spline kernel) and the spline op alone (`bench.rs`).
//! - `fuzz`: a coverage-guided campaign over every runtime fuzz target
//!   (cargo-fuzz on nightly), then the corpus minimized and the figures
//!   (`fuzz.rs`); `miri`: the runtime's tests under Miri (`fuzz.rs`).
//! - `assets`: regenerate `firmware/assets/` (model and input rows) from the demo
//!   (`assets.rs`).
//!
//! `boards.rs` names the boards and programs, `tools.rs` installs what is missing
//! and runs commands.

mod aarch64;
mod assets;
mod bench;
mod boards;
mod bounds;
mod ci;
mod elf;
mod ffi;
mod ffi_m4f;
mod ffi_ref;
mod fuzz;
mod host;
mod interop;
mod onnx;
mod qemu;
mod report;
mod tools;

fn main() {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "ci" => ci::ci(),
        "qemu" => qemu::qemu(),
        "size" => elf::size(),
        "bench" => bench::bench(),
        "bench-peers" => bench::bench_peers(),
        "bench-train" => bench::bench_train(&std::env::args().skip(2).collect::<Vec<_>>()),
        "assets" => assets::assets(),
        "fuzz" => fuzz::fuzz(&std::env::args().skip(2).collect::<Vec<_>>()),
        "miri" => fuzz::miri(),
        "aarch64" => aarch64::aarch64(),
        "ffi" => ffi::ffi(&std::env::args().skip(2).collect::<Vec<_>>()),
        "onnx" => onnx::onnx(),
        "interop" => interop::interop(),
        "host-lines" => aarch64::print_lines(&std::env::args().nth(2).unwrap_or_default()),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | qemu | aarch64 | ffi [--write] | onnx | interop | size | bench | bench-peers | bench-train [ARGS] | assets | fuzz [SECONDS] | miri"
            );
            std::process::exit(2);
        }
    }
}
