//! Counts instructions per `log_prob`, per `sample` and per dense MAC (under
//! `qemu -icount shift=0`); its results are diffed against the host too.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_cost()
}
