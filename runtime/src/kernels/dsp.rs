//! The int8 dense layer on the Armv7E-M DSP extension: per four MACs one word
//! load of weights, one double-word load of activations, two `SXTB16` and two
//! `SMLAD` (dual 16-bit multiply-accumulate). Exact integer arithmetic, so the
//! result equals the portable loop's, bit for bit.
#![allow(unsafe_code)]

/// `acc_i = b_i + Σ_j w_ij·x_j` with `x` in the paired layout (each group of four
/// stored as 0, 2, 1, 3; see [`super::quant::paired_index`]). Returns `false`
/// without touching `acc` (the caller runs the portable loop) unless the rows are
/// a whole number of groups of four, the lengths agree, and `w` and `x` start
/// 4-byte aligned.
pub(crate) fn dense_paired(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> bool {
    let cols = x.len();
    let groups = cols / 4;
    let aligned = (w.as_ptr() as usize).is_multiple_of(4) && (x.as_ptr() as usize).is_multiple_of(4);
    if groups == 0 || cols != 4 * groups || w.len() != cols * acc.len() || b.len() != acc.len() || !aligned {
        return false;
    }
    let mut pw = w.as_ptr();
    for (a, &bi) in acc.iter_mut().zip(b) {
        let mut s = bi;
        // SAFETY: per row the loop runs `groups` times; each pass reads 4 bytes at
        // `pw` and 8 bytes at `px` and advances them by that much. `px` restarts at
        // `x` every row, so it reads exactly `x` (4·groups i16 = 8·groups bytes);
        // `pw` carries on from row to row, so over all rows it reads exactly `w`
        // (rows · cols bytes, checked above). Both are borrowed for the call and
        // start 4-byte aligned (checked above), as `LDR`/`LDRD` want; every
        // advance keeps that alignment. Nothing is written but registers; the stack
        // is not touched; `subs` changes the flags (not declared preserved) and
        // `SMLAD` may set the sticky Q flag, which nothing reads.
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {wv}, [{pw}], #4",
                "ldrd {xa}, {xb}, [{px}], #8",
                "sxtb16 {t0}, {wv}",
                "sxtb16 {wv}, {wv}, ror #8",
                "smlad {s}, {t0}, {xa}, {s}",
                "smlad {s}, {wv}, {xb}, {s}",
                "subs {n}, {n}, #1",
                "bne 2b",
                pw = inout(reg) pw,
                px = inout(reg) x.as_ptr() => _,
                n = inout(reg) groups => _,
                s = inout(reg) s,
                wv = out(reg) _,
                xa = out(reg) _,
                xb = out(reg) _,
                t0 = out(reg) _,
                options(nostack, readonly),
            );
        }
        *a = s;
    }
    true
}
