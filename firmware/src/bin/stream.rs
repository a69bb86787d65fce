//! Streams a real sensor series from flash through an int8 anomaly model, one
//! sample at a time, and reports the alarms; diffed bit for bit against the host.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    floe_firmware::run_stream()
}
