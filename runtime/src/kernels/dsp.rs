//! The int8 dense layer on the Armv7E-M DSP extension, for both weight layouts.
//!
//! - Row-major ([`dense_paired`]): four output rows × eight inputs per pass
//!   ([`block4_smlad`]): per four inputs one double-word load of activations
//!   (shared by the four rows), per row one word load of weights, two `SXTB16`
//!   and two `SMLAD` (dual 16-bit multiply-accumulate) — 44 instructions per 32
//!   MACs with the loop's `SUBS`/`BNE`. The last one to three rows go two (then
//!   one) at a time. The weights' sign extension is the largest share.
//! - Row pairs (`dsp/row_pairs.rs`, `crate::format::row_pairs`): the weights
//!   stored so that one `UXTB16` serves two rows — 32 instructions per 32 MACs;
//!   a register-only path for one to three inputs.
//!
//! Exact integer arithmetic, so the result equals the portable loops', bit for
//! bit.
#![allow(unsafe_code)]

mod row_pairs;
pub(crate) use row_pairs::{dense_row_pairs, narrow_row_pairs};

/// One group of four inputs for two rows: one double-word load of (paired)
/// activations, per row a word of four int8 weights split by `SXTB16` into
/// lanes 0, 2 and 1, 3 and two `SMLAD`s. Pointers advance past the group.
macro_rules! smlad_group {
    () => {
        concat!(
            "ldrd {xa}, {xb}, [{px}], #8\n",
            "ldr {wv}, [{p0}], #4\n",
            "sxtb16 {t}, {wv}\n",
            "sxtb16 {wv}, {wv}, ror #8\n",
            "smlad {s0}, {t}, {xa}, {s0}\n",
            "smlad {s0}, {wv}, {xb}, {s0}\n",
            "ldr {wv}, [{p1}], #4\n",
            "sxtb16 {t}, {wv}\n",
            "sxtb16 {wv}, {wv}, ror #8\n",
            "smlad {s1}, {t}, {xa}, {s1}\n",
            "smlad {s1}, {wv}, {xb}, {s1}\n",
        )
    };
}

/// `acc_i = b_i + Σ_j w_ij·x_j` with `x` in the paired layout (each group of four
/// stored as 0, 2, 1, 3; see [`super::quant::paired_index`]; fewer than four
/// inputs are in order). Returns `false` (the caller then runs the portable
/// loop, which writes every sum) unless the lengths agree and either there are
/// one to three inputs or the rows are a whole number of groups of four and `w`
/// and `x` start 4-byte aligned; those checks come before any sum is written.
pub(crate) fn dense_paired(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> bool {
    let cols = x.len();
    let groups = cols / 4;
    if (1..4).contains(&cols) && w.len() == cols * acc.len() && b.len() == acc.len() {
        narrow(w, b, x, acc);
        return true;
    }
    let aligned = (w.as_ptr() as usize).is_multiple_of(4) && (x.as_ptr() as usize).is_multiple_of(4);
    if groups == 0 || cols != 4 * groups || w.len() != cols * acc.len() || b.len() != acc.len() || !aligned {
        return false;
    }
    // Four rows at a time, then the last one to three.
    let quads = acc.len() / 4;
    let (Some((w4, w_rest)), Some((b4, b_rest)), Some((acc4, acc_rest))) =
        (w.split_at_checked(4 * quads * cols), b.split_at_checked(4 * quads), acc.split_at_mut_checked(4 * quads))
    else {
        return false; // not reached: `4·quads` ≤ rows (lengths checked above)
    };
    for ((block, bb), a) in w4.chunks_exact(4 * cols).zip(b4.chunks_exact(4)).zip(acc4.chunks_exact_mut(4)) {
        if block.len() != 4 * cols || bb.len() != 4 || a.len() != 4 {
            return false; // not reached: `chunks_exact` (lengths checked above)
        }
        let io = BiasAcc { b: bb.as_ptr(), acc: a.as_mut_ptr() };
        // SAFETY: `block4_smlad` reads `x` (`cols` i16, 4·groups of them) and the
        // four rows `block + k·cols` (`4·cols` bytes, checked just above) front to
        // back, exactly once: `cols / 8` passes of two groups and one more group
        // when `cols / 4` is odd; then four i32 at `io.b` and it writes four at
        // `io.acc` (both checked just above). All are borrowed for the call (`a`
        // exclusively) and `w`'s rows, `x` start 4-byte aligned as `LDR`/`LDRD`
        // want: `w` and `x` are checked at entry, every row starts a multiple of
        // `cols` (of 4) bytes after `w`, and every advance is 4 or 8 bytes; i32
        // slices are word aligned for `LDM`/`STM`. `io` lives across the call. It
        // writes no other memory but its own 40 bytes of stack. It is an
        // `extern "C"` function, so the compiler treats r0–r3, r12, lr and the
        // flags as clobbered by the call (AAPCS); it saves and restores r4–r11
        // and touches no FPU register. `SMLAD` may set the sticky Q flag, which
        // nothing reads.
        unsafe { block4_smlad(x.as_ptr(), block.as_ptr(), cols, &io) };
    }
    rows_by_two(w_rest, b_rest, x, acc_rest, cols, groups)
}

/// Fewer than four inputs (a coupling's first dense when pass-through
/// coordinates + context < 4): the inputs stay in registers, one short dot
/// product per row (the portable loop's per-row setup cost as much as its
/// three MACs). Here and not in the portable loop, which the smaller parts
/// run: it is flash they may not have. Out of line, so that its registers do
/// not widen the stack frame under [`block4_smlad`] (with both inline, `dense_i8`'s own frame is 16 bytes larger).
#[inline(never)]
fn narrow(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) {
    match *x {
        [x0] => narrow_n(w, b, [x0], acc),
        [x0, x1] => narrow_n(w, b, [x0, x1], acc),
        [x0, x1, x2] => narrow_n(w, b, [x0, x1, x2], acc),
        _ => {} // not reached: one to three inputs (checked by the caller)
    }
}

/// [`narrow`] with `N` inputs, unrolled.
#[inline(always)]
fn narrow_n<const N: usize>(w: &[i8], b: &[i32], x: [i16; N], acc: &mut [i32]) {
    let x = x.map(i32::from);
    for ((row, &bi), a) in w.chunks_exact(N).zip(b).zip(acc.iter_mut()) {
        *a = row.iter().zip(x).fold(bi, |s, (&wj, xj)| s.wrapping_add(i32::from(wj) * xj));
    }
}

/// Where [`block4_smlad`] reads the four biases and writes the four sums.
#[repr(C)]
struct BiasAcc {
    b: *const i32,
    acc: *mut i32,
}

/// One group of four inputs for four rows (see [`block4_smlad`]): rows 1 and 0
/// through r1 (`[r1, r2]` then post-incremented `[r1]`), rows 3 and 2 through
/// r3 the same way; x's pair in r8, r9; weights in r10, r12 split by `SXTB16`
/// (into r11 and themselves).
macro_rules! smlad_group4 {
    () => {
        concat!(
            "ldrd r8, r9, [r0], #8\n",
            "ldr r10, [r1, r2]\n",
            "ldr r12, [r1], #4\n",
            "sxtb16 r11, r10\n",
            "sxtb16 r10, r10, ror #8\n",
            "smlad r5, r11, r8, r5\n",
            "smlad r5, r10, r9, r5\n",
            "sxtb16 r11, r12\n",
            "sxtb16 r12, r12, ror #8\n",
            "smlad r4, r11, r8, r4\n",
            "smlad r4, r12, r9, r4\n",
            "ldr r10, [r3, r2]\n",
            "ldr r12, [r3], #4\n",
            "sxtb16 r11, r10\n",
            "sxtb16 r10, r10, ror #8\n",
            "smlad r7, r11, r8, r7\n",
            "smlad r7, r10, r9, r7\n",
            "sxtb16 r11, r12\n",
            "sxtb16 r12, r12, ror #8\n",
            "smlad r6, r11, r8, r6\n",
            "smlad r6, r12, r9, r6\n",
        )
    };
}

/// The kernel of [`dense_paired`]'s four-row blocks (see its safety argument):
/// `x` (paired i16) in r0, the first of four rows of `cols` int8 weights in r1,
/// `cols` (a multiple of 4) in r2, the bias/sum pointers at r3. The four sums
/// start at the biases (r4–r7) and take every product exactly, so their order
/// does not matter. A naked function, so that it may use r4–r11 and lr, which
/// stable Rust does not all let inline assembly name on this target.
#[unsafe(naked)]
unsafe extern "C" fn block4_smlad(x: *const i16, rows: *const i8, cols: usize, io: *const BiasAcc) {
    core::arch::naked_asm!(
        "push {{r3, r4, r5, r6, r7, r8, r9, r10, r11, lr}}", // r3: `io`, for the end
        "ldr r12, [r3]",
        "ldm r12, {{r4, r5, r6, r7}}", // the biases
        "add.w r3, r1, r2, lsl #1",    // row 2
        "lsrs lr, r2, #3",             // passes of two groups
        "beq 3f",
        "2:",
        smlad_group4!(),
        smlad_group4!(),
        "subs lr, lr, #1",
        "bne 2b",
        "3:",
        "tst r2, #4", // an odd group left
        "beq 4f",
        smlad_group4!(),
        "4:",
        "ldr r12, [sp]",
        "ldr r12, [r12, #4]",
        "stm r12, {{r4, r5, r6, r7}}",
        "pop {{r3, r4, r5, r6, r7, r8, r9, r10, r11, pc}}",
    );
}

/// The last rows of [`dense_paired`] (fewer than four): two at a time, then
/// one. Its preconditions hold (checked by the caller): `x` is `cols` = 4·groups
/// values, `w` holds `cols` bytes per sum in `acc`, `b` one bias per sum, and
/// `w` and `x` start 4-byte aligned. Out of line, like [`narrow`].
#[inline(never)]
fn rows_by_two(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32], cols: usize, groups: usize) -> bool {
    let mut rows = w.chunks_exact(2 * cols);
    let mut out = acc.chunks_exact_mut(2);
    let mut bias = b.chunks_exact(2);
    for ((pair, a), bb) in (&mut rows).zip(&mut out).zip(&mut bias) {
        let (w0, w1) = pair.split_at(cols);
        if let ([a0, a1], [b0, b1]) = (a, bb) {
            let (mut s0, mut s1) = (*b0, *b1);
            let (pairs, odd) = (groups / 2, groups % 2 == 1);
            let (mut p0, mut p1, mut px) = (w0.as_ptr(), w1.as_ptr(), x.as_ptr());
            if pairs > 0 {
                // SAFETY: the loop runs `pairs` = ⌊groups/2⌋ times; each pass reads
                // two groups — 8 bytes at `p0` and at `p1` and 16 bytes at `px` —
                // and advances the pointers by that much, so it stays within `w0`,
                // `w1` (cols = 4·groups bytes each, split from `w`) and `x`
                // (4·groups i16 = 8·groups bytes); the odd group's block below
                // reads the rest. All three are borrowed for the call and start
                // 4-byte aligned, as `LDR`/`LDRD` want: [`dense_paired`] checked
                // its `w` and `x`, this `w` starts a whole number of rows (of
                // `cols` bytes, a multiple of 4) after that one, `w0` a whole
                // number of rows after this one and `w1` `cols` bytes after `w0`. Every advance
                // keeps the alignment. Nothing is written but registers; the stack
                // is not touched; `subs` changes the flags (not declared preserved)
                // and `SMLAD` may set the sticky Q flag, which nothing reads.
                unsafe {
                    core::arch::asm!(
                        "2:",
                        smlad_group!(),
                        smlad_group!(),
                        "subs {n}, {n}, #1",
                        "bne 2b",
                        p0 = inout(reg) p0,
                        p1 = inout(reg) p1,
                        px = inout(reg) px,
                        n = inout(reg) pairs => _,
                        s0 = inout(reg) s0,
                        s1 = inout(reg) s1,
                        wv = out(reg) _,
                        xa = out(reg) _,
                        xb = out(reg) _,
                        t = out(reg) _,
                        options(nostack, readonly),
                    );
                }
            }
            if odd {
                // SAFETY: the last group: 4 bytes at `p0` and at `p1` and 8 bytes
                // at `px`, which the loop above left at the last 4 bytes of `w0`
                // and `w1` and the last 8 bytes of `x` (aligned, borrowed, as
                // above); the advanced pointers are discarded. Registers only;
                // `SMLAD` may set the sticky Q flag.
                unsafe {
                    core::arch::asm!(
                        smlad_group!(),
                        p0 = inout(reg) p0 => _,
                        p1 = inout(reg) p1 => _,
                        px = inout(reg) px => _,
                        s0 = inout(reg) s0,
                        s1 = inout(reg) s1,
                        wv = out(reg) _,
                        xa = out(reg) _,
                        xb = out(reg) _,
                        t = out(reg) _,
                        options(nostack, readonly),
                    );
                }
            }
            *a0 = s0;
            *a1 = s1;
        }
    }
    // An odd last row, one row per pass.
    if let ([a], [bi]) = (out.into_remainder(), bias.remainder()) {
        let row = rows.remainder();
        if row.len() != cols {
            return false; // not reached: `w` holds `cols` bytes per row (checked above)
        }
        let mut s = *bi;
        // SAFETY: as above with one row: `groups` passes read exactly `row` (the
        // last `cols` bytes of `w`, 4-byte aligned as every row start is) and `x`,
        // both borrowed and aligned; registers only.
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {wv}, [{pw}], #4",
                "ldrd {xa}, {xb}, [{px}], #8",
                "sxtb16 {t}, {wv}",
                "sxtb16 {wv}, {wv}, ror #8",
                "smlad {s}, {t}, {xa}, {s}",
                "smlad {s}, {wv}, {xb}, {s}",
                "subs {n}, {n}, #1",
                "bne 2b",
                pw = inout(reg) row.as_ptr() => _,
                px = inout(reg) x.as_ptr() => _,
                n = inout(reg) groups => _,
                s = inout(reg) s,
                wv = out(reg) _,
                xa = out(reg) _,
                xb = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
        *a = s;
    }
    true
}

/// Four rows of an f32 dense layer, `y_k = Σ_j w_kj·x_j + b_k` for k = 0..4,
/// each row summed left to right from 0.0 with `VMLA` (the Cortex-M4F's
/// multiply-add is *unfused*: the product is rounded, then the sum — the
/// portable loop's `+=`), then its bias added. Per four inputs one `VLDM` of `x`
/// and one per row of weights, four `VMLA` per row: 23 instructions per 16 MACs.
/// `block` must hold the four rows back to back (`4·cols` values), `b` and `y`
/// four values, or nothing is written and the result is `false`.
#[cfg(target_abi = "eabihf")]
pub(crate) fn f32_block4(block: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) -> bool {
    let cols = x.len();
    if block.len() != 4 * cols || b.len() != 4 || y.len() != 4 {
        return false;
    }
    let by = BiasOut { b: b.as_ptr(), y: y.as_mut_ptr() };
    // SAFETY: `block4_vfp` runs ⌊cols/4⌋ four-input passes and `cols % 4`
    // one-input passes; together they read each of `x` (`cols` f32) and the four
    // rows `block + k·cols` (4·cols f32, checked above) exactly once, front to
    // back, then four f32 at `b` and writes four at `y` (lengths checked above).
    // All are borrowed for the call (`y` exclusively) and 4-byte aligned as f32
    // slices are (`VLDM`/`VSTM` need word alignment); `by` lives across the
    // call. It writes no other memory but its own 16 bytes of stack. It is an
    // `extern "C"` function, so the compiler treats r0–r3, r12, lr, s0–s15 and
    // the flags as clobbered by the call (AAPCS-VFP); it saves and restores the
    // r4–r7 it uses, touches no other register, and changes no FPSCR mode bit
    // (round to nearest, no flush-to-zero: the defaults the portable loop
    // assumes).
    unsafe { block4_vfp(x.as_ptr(), block.as_ptr(), cols, &by) };
    true
}

/// Where [`block4_vfp`] reads the biases and writes the outputs.
#[cfg(target_abi = "eabihf")]
#[repr(C)]
struct BiasOut {
    b: *const f32,
    y: *mut f32,
}

/// The kernel of [`f32_block4`] (see its safety argument): `x` in r0, the first
/// row in r1, `cols` in r2, the bias/output pointers at r3. A naked function, so
/// that the C ABI declares the FPU registers it uses clobbered: stable Rust
/// cannot name them as inline-asm operands on this target.
#[cfg(target_abi = "eabihf")]
#[unsafe(naked)]
unsafe extern "C" fn block4_vfp(x: *const f32, rows: *const f32, cols: usize, by: *const BiasOut) {
    core::arch::naked_asm!(
        // Naked functions are assembled without the target's FPU features;
        // every `eabihf` target this runs on has at least FPv4-SP. (The directive
        // also labels the object's FP build attributes FPv4-SP, harmless on the
        // Cortex-M4F; on an FPv5 part the label undersells the FPU.)
        ".fpu fpv4-sp-d16",
        "push {{r4, r5, r6, r7}}",
        "ldm r3, {{r6, r7}}", // b, y
        "movs r5, #0",
        "vmov s0, r5", // the four sums start at +0.0
        "vmov s1, r5",
        "vmov s2, r5",
        "vmov s3, r5",
        "lsls r5, r2, #2", // a row, in bytes
        "adds r3, r1, r5", // row 1
        "add r12, r3, r5", // row 2
        "add r4, r12, r5", // row 3
        "and r5, r2, #3",  // inputs after the last group of four
        "lsrs r2, r2, #2", // groups of four
        "cbz r2, 3f",
        "2:",
        "vldmia r0!, {{s4-s7}}",
        "vldmia r1!, {{s8-s11}}",
        "vldmia r3!, {{s12-s15}}",
        "vmla.f32 s0, s8, s4",
        "vmla.f32 s0, s9, s5",
        "vmla.f32 s0, s10, s6",
        "vmla.f32 s0, s11, s7",
        "vldmia r12!, {{s8-s11}}",
        "vmla.f32 s1, s12, s4",
        "vmla.f32 s1, s13, s5",
        "vmla.f32 s1, s14, s6",
        "vmla.f32 s1, s15, s7",
        "vldmia r4!, {{s12-s15}}",
        "vmla.f32 s2, s8, s4",
        "vmla.f32 s2, s9, s5",
        "vmla.f32 s2, s10, s6",
        "vmla.f32 s2, s11, s7",
        "vmla.f32 s3, s12, s4",
        "vmla.f32 s3, s13, s5",
        "vmla.f32 s3, s14, s6",
        "vmla.f32 s3, s15, s7",
        "subs r2, r2, #1",
        "bne 2b",
        "3:",
        "cbz r5, 5f",
        "4:",
        "vldmia r0!, {{s4}}",
        "vldmia r1!, {{s8}}",
        "vldmia r3!, {{s9}}",
        "vldmia r12!, {{s10}}",
        "vldmia r4!, {{s11}}",
        "vmla.f32 s0, s8, s4",
        "vmla.f32 s1, s9, s4",
        "vmla.f32 s2, s10, s4",
        "vmla.f32 s3, s11, s4",
        "subs r5, r5, #1",
        "bne 4b",
        "5:",
        "vldmia r6, {{s4-s7}}",
        "vadd.f32 s0, s0, s4",
        "vadd.f32 s1, s1, s5",
        "vadd.f32 s2, s2, s6",
        "vadd.f32 s3, s3, s7",
        "vstmia r7, {{s0-s3}}",
        "pop {{r4, r5, r6, r7}}",
        "bx lr",
    );
}
