//! Predicts real pedestrian futures from flash with an int8 trajectory model:
//! particles, exact densities, updates along the true tracks; diffed bit for bit
//! against the host.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_trajectory()
}
