//! Cortex-M glue: exit, fault and panic handlers, the SysTick instruction counter,
//! the stack high-water mark.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::{exception, ExceptionFrame};

/// Ends the program with `code` (0 = success): through semihosting under QEMU
/// (the code becomes QEMU's exit status), with a breakpoint on a real board.
pub fn exit(code: i32) -> ! {
    #[cfg(feature = "semihosting")]
    semihosting::process::exit(code);
    #[cfg(not(feature = "semihosting"))]
    {
        let _ = code;
        loop {
            cortex_m::asm::bkpt();
        }
    }
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::println!("hard fault: pc={=u32:#010x} lr={=u32:#010x}", ef.pc(), ef.lr());
    exit(102)
}

/// Wraps of SysTick's 24-bit counter, counted by its exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS, and it cannot preempt itself: a load and a
    // store (thumbv6m has no atomic read-modify-write) are enough.
    WRAPS.store(WRAPS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// SysTick on the core clock as a free-running 24-bit down-counter, extended to
/// 64 bits by counting its wraps in the SysTick exception, so a timed block may
/// be as long as it likes (a trajectory prediction on the Cortex-M0 spans
/// several wraps). On a real board a tick is a core cycle; under
/// `qemu -icount shift=0` it is a fixed number of instructions (40 on
/// mps2-an386, 62.5 on microbit; `cargo xtask qemu` checks the factor with
/// [`spin`]).
pub struct SysTickClock(());

const PERIOD: u64 = 1 << 24;

impl SysTickClock {
    /// Start SysTick on the core clock with its wrap exception. Returns `None`
    /// if it does not count (some boards and emulators have none).
    pub fn start(mut syst: SYST) -> Option<SysTickClock> {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        // The first read after clearing is 0 until the counter reloads.
        for _ in 0..10_000 {
            if SYST::get_current() != 0 {
                syst.enable_interrupt();
                return Some(SysTickClock(()));
            }
        }
        None
    }
}

impl crate::script::Clock for SysTickClock {
    fn now(&mut self) -> u64 {
        loop {
            let w = WRAPS.load(Ordering::Relaxed);
            let cur = SYST::get_current();
            let pending = SCB::is_pendst_pending();
            if WRAPS.load(Ordering::Relaxed) != w {
                continue; // the exception ran in between: read again
            }
            // Ticks into the current period: the counter pends its exception as
            // it reaches 0, so 0 starts a period (and 0x00FF_FFFF is its first tick
            // after). Reached 0 or reloaded, but the exception has not run yet:
            // that wrap counts now.
            let into = u64::from(0x0100_0000u32.wrapping_sub(cur) & 0x00FF_FFFF);
            let late = u64::from(pending && (cur == 0 || cur >= 0x0080_0000));
            return (u64::from(w) + late) * PERIOD + into;
        }
    }
}

/// Runs a two-instruction loop (`subs`, `bne`) `n` times: 2n instructions.
pub fn spin(n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: the asm only decrements a register it owns until it reaches zero;
    // it reads and writes no memory and does not touch the stack.
    unsafe {
        core::arch::asm!("2:", "subs {0}, #1", "bne 2b", inout(reg) n => _, options(nomem, nostack));
    }
}

/// Paint the unused stack again (from its bottom to 16 bytes below the current
/// stack pointer) with cortex-m-rt's `STACK_PAINT_VALUE`, as its `paint-stack`
/// does at reset: the bounds program measures each call's own stack this way.
#[inline(never)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    extern "C" {
        static _stack_end: u32;
    }
    let mut p = core::ptr::addr_of!(_stack_end) as usize;
    while p + 16 < sp {
        // SAFETY: `p` is word-aligned (the linker script aligns `_stack_end` to
        // 4) and lies between the stack's lower bound and 16 bytes below the live
        // stack pointer: stack memory no frame uses now (the AAPCS has no red
        // zone; an exception taken meanwhile pushes its frame below `sp` and has
        // popped it before the loop writes there again).
        unsafe { core::ptr::write_volatile(p as *mut u32, cortex_m_rt::STACK_PAINT_VALUE) };
        p += 4;
    }
}

/// Bytes from the top of the stack to the stack pointer (the caller's depth).
#[inline(always)]
pub fn stack_depth() -> u32 {
    extern "C" {
        static _stack_start: u32;
    }
    (core::ptr::addr_of!(_stack_start) as usize).saturating_sub(cortex_m::register::msp::read() as usize) as u32
}

/// Bytes of stack used so far (high-water mark): cortex-m-rt's `paint-stack`
/// fills the stack with `STACK_PAINT_VALUE` at reset, and [`paint_stack`] again;
/// the deepest word that no longer holds it marks the most the stack has grown.
pub fn stack_used() -> u32 {
    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is word-aligned (the linker script aligns `_stack_end` to 4)
        // and lies in [_stack_end, _stack_start), RAM reserved for the stack. The
        // words below the live stack belong to no Rust object; volatile reads of
        // them cannot break any aliasing guarantee.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        p += 4;
    }
    (top - p) as u32
}

/// Bytes reserved for the stack (RAM not used by `.data`/`.bss`).
pub fn stack_size() -> u32 {
    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    (core::ptr::addr_of!(_stack_start) as usize - core::ptr::addr_of!(_stack_end) as usize) as u32
}

/// The instruction counter of this board, if it has one.
pub fn clock() -> Option<SysTickClock> {
    let p = cortex_m::Peripherals::take()?;
    SysTickClock::start(p.SYST)
}
