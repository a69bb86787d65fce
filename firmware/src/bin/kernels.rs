//! Counts instructions per dense-layer MAC (f32, w8, int8 in both weight
//! layouts, under `qemu -icount shift=0`) and runs the int8 kernels' odd
//! shapes; its results are diffed against the host too.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_kernels()
}
