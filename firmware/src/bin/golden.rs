//! Evaluates `log_prob` on the bundled input rows and draws seeded samples;
//! `cargo xtask qemu` diffs its output bit for bit against the host runtime.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_golden()
}
