//! x86-64: the lane kernels compiled for AVX-512 and AVX2 as well, chosen at
//! run time (the widest the CPU and OS support).
//!
//! `unsafe` here, and why it is sound:
//! - `_xgetbv` is read only after CPUID says the OS enabled XSAVE (OSXSAVE),
//!   the condition under which the instruction exists and may run;
//! - an `avx512f` or `avx2` function is called only after CPUID reports the
//!   extension and XCR0 shows the OS saves the registers it uses, the
//!   conditions under which its instructions execute correctly.
//!
//! The variants run exactly the loops of the portable code (the same
//! `#[inline(always)]` bodies): IEEE-754 multiplies and adds in the same order,
//! never fused (Rust does not contract), so the bits do not depend on which
//! variant ran. (The default MXCSR, no flush-to-zero, is the same for all.)
#![allow(unsafe_code)]

use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

/// The widest vector extension usable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// SSE2 (every x86-64).
    Sse2 = 1,
    /// AVX2: 256-bit registers.
    Avx2 = 2,
    /// AVX-512F: 512-bit registers.
    Avx512 = 3,
}

/// 0: not yet asked, else the `Isa` discriminant.
static ISA: AtomicU8 = AtomicU8::new(0);

/// The widest extension this CPU and OS run (asked once, then cached).
#[inline]
pub(super) fn isa() -> Isa {
    match ISA.load(Ordering::Relaxed) {
        3 => Isa::Avx512,
        2 => Isa::Avx2,
        1 => Isa::Sse2,
        _ => {
            let isa = detect();
            ISA.store(isa as u8, Ordering::Relaxed);
            isa
        }
    }
}

fn detect() -> Isa {
    let leaf1 = __cpuid(1);
    let (osxsave, avx) = (leaf1.ecx & (1 << 27) != 0, leaf1.ecx & (1 << 28) != 0);
    if !(osxsave && avx) || __cpuid(0).eax < 7 {
        return Isa::Sse2;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available (see the module docs).
    let xcr0 = unsafe { _xgetbv(0) };
    let ebx7 = __cpuid_count(7, 0).ebx;
    // XMM | YMM state, and for AVX-512 also opmask, ZMM_Hi256 and Hi16_ZMM.
    // rustc's `avx512f` implies `avx2`, `fma` and `f16c` (the code compiled
    // for it may use them), so those must be present too: a virtual CPU may
    // report AVX-512F and hide one of them.
    let avx2 = ebx7 & (1 << 5) != 0;
    let (fma, f16c) = (leaf1.ecx & (1 << 12) != 0, leaf1.ecx & (1 << 29) != 0);
    if xcr0 & 0xe6 == 0xe6 && ebx7 & (1 << 16) != 0 && avx2 && fma && f16c {
        Isa::Avx512
    } else if xcr0 & 0b110 == 0b110 && avx2 {
        Isa::Avx2
    } else {
        Isa::Sse2
    }
}

/// Run `w` compiled for the widest extension present: AVX-512F, AVX2, or the
/// portable SSE2 build. `w.run()` must be `#[inline(always)]` so that its body
/// is compiled into each variant.
pub(crate) fn run_wide<W: super::Wide>(w: W) -> W::Out {
    run_on(isa(), w)
}

/// Run `w` compiled for `want`, or for the widest extension present if that
/// is narrower.
fn run_on<W: super::Wide>(want: Isa, w: W) -> W::Out {
    #[target_feature(enable = "avx512f")]
    fn avx512<W: super::Wide>(w: W) -> W::Out {
        w.run()
    }
    #[target_feature(enable = "avx2")]
    fn avx2<W: super::Wide>(w: W) -> W::Out {
        w.run()
    }
    let have = isa();
    let use_ = if (want as u8) < (have as u8) { want } else { have };
    match use_ {
        // SAFETY: `isa()` found AVX-512F usable, and `use_` is at most `have` (see the module docs).
        Isa::Avx512 => unsafe { avx512(w) },
        // SAFETY: `isa()` found AVX2 (or wider) usable, and `use_` is at most `have` (see the module docs).
        Isa::Avx2 => unsafe { avx2(w) },
        Isa::Sse2 => w.run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::math::{same_bits, uniform};
    use crate::kernels::{dense_f32_lanes_body, math::exp_lanes, Wide, LANES};

    struct Case<'a>(&'a [f32], &'a [f32], &'a [f32]);
    impl Wide for Case<'_> {
        type Out = std::vec::Vec<f32>;
        #[inline(always)]
        fn run(self) -> Self::Out {
            let mut y = std::vec![0.0f32; self.1.len() * LANES];
            dense_f32_lanes_body::<false>(self.0, self.1, self.2, &mut y).unwrap();
            let mut r = std::vec![0.0f32; self.1.len() * LANES];
            dense_f32_lanes_body::<true>(self.0, self.1, self.2, &mut r).unwrap();
            let e: std::vec::Vec<f32> =
                self.2.chunks_exact(LANES).flat_map(|c| exp_lanes::<LANES>(c.try_into().unwrap())).collect();
            y.iter().chain(&r).chain(&e).copied().collect()
        }
    }

    /// The lane kernels give the same bits compiled for SSE2, AVX2 and
    /// AVX-512F (those this CPU has), on values that exercise rounding, the
    /// remainder rows and exp's special lanes.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let mut next = uniform(0x2545_f491);
        let (rows, cols) = (7, 13);
        let w: std::vec::Vec<f32> = (0..rows * cols).map(|_| next() * 3.0).collect();
        let b: std::vec::Vec<f32> = (0..rows).map(|_| next()).collect();
        let mut x: std::vec::Vec<f32> = (0..cols * LANES).map(|_| next() * 200.0).collect();
        x[3] = f32::NAN;
        x[5] = 1e-40;
        let want = run_on(Isa::Sse2, Case(&w, &b, &x));
        for isa in [Isa::Avx2, Isa::Avx512] {
            let got = run_on(isa, Case(&w, &b, &x));
            assert_eq!(got.len(), want.len());
            for (k, (&g, &v)) in got.iter().zip(&want).enumerate() {
                assert!(same_bits(g, v), "{isa:?} (this CPU: {:?}) value {k}: {g} vs {v}", super::isa());
            }
        }
    }
}
