//! Each public runtime call on each model of `assets/bounds.txt`, timed and its
//! own stack painted and measured, over adversarial inputs (`src/bounds.rs`);
//! its results are diffed against the host too.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_bounds()
}
