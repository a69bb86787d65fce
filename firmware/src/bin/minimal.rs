//! The smallest useful program, for the flash figure: load the int8 demo model
//! from flash (every byte validated), one `log_prob` of a bundled row, no
//! logging. It exits 0 only if the result has the host runtime's bits (computed
//! by `build.rs`), 1 otherwise, 2 on an error; `cargo xtask qemu` runs it on
//! every board and reports its `.text`.
#![no_std]
#![no_main]

use floe_runtime::Model;

/// 16-byte alignment, as the format wants.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

include!(concat!(env!("OUT_DIR"), "/minimal.rs"));

fn run() -> i32 {
    let mut scratch = [0.0f32; SCRATCH];
    let model = match Model::load(&MODEL.0) {
        Ok(m) => m,
        Err(_) => return 2,
    };
    match model.log_prob(core::hint::black_box(&X), &CONTEXT, &mut scratch) {
        Ok(lp) if lp.to_bits() == EXPECTED => 0,
        Ok(_) => 1,
        Err(_) => 2,
    }
}

#[cfg(feature = "semihosting")]
fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

#[cfg(not(feature = "semihosting"))]
fn exit(code: i32) -> ! {
    let _ = code;
    loop {
        core::hint::spin_loop();
    }
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    exit(run())
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(3)
}
