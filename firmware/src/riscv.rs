//! RISC-V (riscv32imac, QEMU `virt`) glue: exit, trap and panic handlers, the
//! `minstret` instruction counter, a stack high-water mark.

/// Ends the program with `code` (0 = success) through semihosting.
pub fn exit(code: i32) -> ! {
    #[cfg(feature = "semihosting")]
    semihosting::process::exit(code);
    #[cfg(not(feature = "semihosting"))]
    {
        let _ = code;
        loop {
            riscv::asm::ebreak();
        }
    }
}

#[export_name = "ExceptionHandler"]
fn exception_handler(frame: &riscv_rt::TrapFrame) -> ! {
    defmt::println!("trap: mcause={=usize:#x} ra={=usize:#010x}", riscv::register::mcause::read().bits(), frame.ra);
    exit(102)
}

/// `minstret`: instructions retired, exactly (QEMU counts it under `-icount`).
pub struct InstretClock;

impl crate::script::Clock for InstretClock {
    fn now(&mut self) -> u64 {
        riscv::register::minstret::read64()
    }
}

/// The instruction counter of this board.
pub fn clock() -> Option<InstretClock> {
    Some(InstretClock)
}

/// Runs a two-instruction loop (`addi`, `bnez`) `n` times: 2n instructions.
pub fn spin(n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: the asm only decrements a register it owns until it reaches zero;
    // it reads and writes no memory and does not touch the stack.
    unsafe {
        core::arch::asm!("2:", "addi {0}, {0}, -1", "bnez {0}, 2b", inout(reg) n => _, options(nomem, nostack));
    }
}

const PAINT: u32 = 0xCCCC_CCCC;

extern "C" {
    static __estack: u32;
    static __sstack: u32;
}

/// Paint the unused stack (from its bottom to 16 bytes below the current stack
/// pointer) so [`stack_used`] can find the high-water mark. riscv-rt has no
/// `paint-stack`; the programs call this first thing, the bounds program before
/// every measured call.
#[inline(never)]
pub fn paint_stack() {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
    let bottom = core::ptr::addr_of!(__estack) as usize;
    let mut p = (bottom + 3) & !3;
    while p + 16 < sp {
        // SAFETY: `p` is word-aligned and between the stack's lower bound (from
        // the linker script) and 16 bytes below the live stack pointer: stack
        // memory no frame uses now. The ABI has no red zone below `sp`.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used since [`paint_stack`] (high-water mark).
pub fn stack_used() -> u32 {
    let top = core::ptr::addr_of!(__sstack) as usize;
    let mut p = (core::ptr::addr_of!(__estack) as usize + 3) & !3;
    while p < top {
        // SAFETY: word-aligned, inside the stack region the linker script reserves;
        // memory below the live stack belongs to no Rust object.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != PAINT {
            break;
        }
        p += 4;
    }
    (top - p) as u32
}

/// Bytes from the top of the stack to the stack pointer (the caller's depth).
#[inline(always)]
pub fn stack_depth() -> u32 {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
    (core::ptr::addr_of!(__sstack) as usize).saturating_sub(sp) as u32
}

/// Bytes reserved for the stack.
pub fn stack_size() -> u32 {
    (core::ptr::addr_of!(__sstack) as usize - core::ptr::addr_of!(__estack) as usize) as u32
}
