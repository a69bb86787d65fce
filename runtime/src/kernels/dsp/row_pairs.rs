//! The row-pair int8 kernels on the Armv7E-M DSP extension (the weights'
//! layout: `crate::format::row_pairs`): two row pairs × four inputs per group
//! in [`row_pairs_smlad`], 32 instructions per 32 MACs, and
//! [`narrow_row_pairs`] for one to three inputs. Its `unsafe` falls under
//! `kernels/dsp.rs`'s allowance, with the same written justification per block.

/// Most inputs [`dense_row_pairs`] takes: its second rows come out of a
/// difference of two sums as `256·Σ w·x`, which must stay inside i32 —
/// |Σ w·x| ≤ 127·255·256 < 2^23.
const ROW_PAIRS_MAX_COLS: usize = 256;

/// The row-pair blocks of [`super::quant::dense_i8_pairs`]: `w` holds whole row
/// pairs in the row-pair layout (`crate::format::row_pairs`), `b` and `acc` one
/// value per row, `x` the paired activations. Writes the sums of the first
/// `4·⌊rows/4⌋` rows (blocks of two pairs) and returns how many it wrote: 0
/// (nothing written; the portable loop then takes every pair) unless the
/// lengths agree, the inputs are a whole number of groups of four, at most 256,
/// and `w` and `x` start 4-byte aligned.
///
/// Per pair, with `U = Σ (w₀ + 128)·x` (the `UXTB16` bytes) and
/// `R = Σ ((w₀ + 128) + 256·w₁)·x` (the pair's raw 16-bit halves), row 0 is
/// `b₀ + U − 128·Σx` and row 1 `b₁ + (R − U) / 256`: `R − U = 256·Σ w₁·x`
/// exactly in wrapping i32 (it is below 2^31 in magnitude), so both are the
/// exact sums the portable loop gives.
#[inline(never)]
pub(crate) fn dense_row_pairs(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> usize {
    let cols = x.len();
    let groups = cols / 4;
    let aligned = (w.as_ptr() as usize).is_multiple_of(4) && (x.as_ptr() as usize).is_multiple_of(4);
    let (rows, blocks) = (acc.len(), acc.len() / 4);
    if groups == 0
        || cols != 4 * groups
        || cols > ROW_PAIRS_MAX_COLS
        || blocks == 0
        || w.len() != cols * rows
        || b.len() != rows
        || !aligned
    {
        return 0;
    }
    // |Σx| ≤ 255·256, so 128·Σx fits.
    let sum_x = sum_groups(x, groups).wrapping_mul(128);
    let mut io =
        RowPairs { x: x.as_ptr(), groups, stride: 2 * cols, blocks, bias: b.as_ptr(), acc: acc.as_mut_ptr(), sum_x };
    // SAFETY: `row_pairs_smlad` runs `blocks` ≥ 1 blocks of four rows (two
    // pairs, 4·cols bytes of `w`; 4·blocks ≤ rows, and `w` holds cols·rows
    // bytes, checked above). Per block it reads all of `x` (`cols` = 4·groups
    // i16) and both pairs' 2·cols bytes front to back, once: ⌊groups/2⌋ passes
    // of two groups and one more group when `groups` is odd; it reads four
    // biases at `io.bias` and writes four sums at `io.acc`, advancing both by
    // four (`b` and `acc` hold `rows` ≥ 4·blocks values, checked above), and
    // writes `io`'s `blocks`, `bias` and `acc` fields. `w` and `x` start 4-byte
    // aligned (checked above), every block starts a multiple of 4·cols bytes
    // after `w`, its second pair 2·cols bytes (a multiple of 8) after that, and
    // every advance is 8 bytes, so every `LDRD` is word aligned; i32 slices are
    // word aligned for the bias and sum `LDRD`/`STRD`. Everything it touches is
    // borrowed for the call (`acc` and `io` exclusively). It writes no other
    // memory but its own 40 bytes of stack. It is an `extern "C"` function, so
    // the compiler treats r0–r3, r12, lr and the flags as clobbered by the call
    // (AAPCS); it saves and restores r4–r11 and touches no FPU register.
    // `SMLAD` may set the sticky Q flag, which nothing reads.
    unsafe { row_pairs_smlad(w.as_ptr(), &mut io) };
    4 * blocks
}

/// `Σx` over `groups` ≥ 1 whole groups of four values, `x` 4-byte aligned
/// (both checked by [`dense_row_pairs`]): one `SMLAD` by `0x0001_0001` per
/// two values, 1.25 instructions a value against the compiled plain loop's
/// 2.5 (counted from their assembly). The sum is exact (|Σx| ≤ 255·256).
#[inline(always)]
fn sum_groups(x: &[i16], groups: usize) -> i32 {
    let mut s = 0i32;
    // SAFETY: the loop runs `groups` ≥ 1 times (the caller checked
    // `groups` ≥ 1 and `x.len()` = 4·groups); each pass reads 8 bytes at `px`
    // and advances it by 8, so it reads exactly `x`, which is borrowed for the
    // call and 4-byte aligned (checked by the caller), as `LDRD` wants.
    // Nothing is written but registers; the stack is not touched; `subs`
    // changes the flags (not declared preserved) and `SMLAD` may set the
    // sticky Q flag, which nothing reads.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldrd {a}, {b}, [{px}], #8",
            "smlad {s}, {a}, {one}, {s}",
            "smlad {s}, {b}, {one}, {s}",
            "subs {n}, {n}, #1",
            "bne 2b",
            px = inout(reg) x.as_ptr() => _,
            n = inout(reg) groups => _,
            s = inout(reg) s,
            one = in(reg) 0x0001_0001u32,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack, readonly),
        );
    }
    s
}

/// [`row_pairs_smlad`]'s arguments and running pointers, at fixed offsets the
/// assembly names: 0 `x`, 4 `groups`, 8 `stride` (bytes from a block's first
/// pair to its second), 12 `blocks` (counted down), 16 `bias`, 20 `acc` (both
/// advanced by four values a block), 24 `sum_x` (128·Σx).
#[repr(C)]
struct RowPairs {
    x: *const i16,
    groups: usize,
    stride: usize,
    blocks: usize,
    bias: *const i32,
    acc: *mut i32,
    sum_x: i32,
}

/// One group of four inputs for two row pairs (see [`row_pairs_smlad`]): the
/// activations' two words in r8, r9; a pair's two weight words in r10, r11,
/// their low bytes (`UXTB16`) in r12; the raw halves into r4 (r6), the low
/// bytes into r5 (r7).
macro_rules! uxtb_group2 {
    () => {
        concat!(
            "ldrd r8, r9, [r0], #8\n",
            "ldrd r10, r11, [r1], #8\n",
            "uxtb16 r12, r10\n",
            "smlad r4, r10, r8, r4\n",
            "smlad r5, r12, r8, r5\n",
            "uxtb16 r12, r11\n",
            "smlad r4, r11, r9, r4\n",
            "smlad r5, r12, r9, r5\n",
            "ldrd r10, r11, [r2], #8\n",
            "uxtb16 r12, r10\n",
            "smlad r6, r10, r8, r6\n",
            "smlad r7, r12, r8, r7\n",
            "uxtb16 r12, r11\n",
            "smlad r6, r11, r9, r6\n",
            "smlad r7, r12, r9, r7\n",
        )
    };
}

/// The kernel of [`dense_row_pairs`] (see its safety argument): the first
/// block's weights in r0, the [`RowPairs`] in r1. Per block of four rows: the
/// sums start at zero (r4–r7: `R`, `U` of the first pair, then the second's),
/// 15 instructions per group of four inputs (32 per 32 MACs with the loop's
/// `SUBS`/`BNE`), then the biases and the two corrections
/// ([`dense_row_pairs`]) and the four sums stored. A naked function, so that
/// it may use r4–r11 and lr, which stable Rust does not all let inline
/// assembly name on this target.
#[unsafe(naked)]
unsafe extern "C" fn row_pairs_smlad(w: *const i8, io: *mut RowPairs) {
    core::arch::naked_asm!(
        "push {{r1, r4, r5, r6, r7, r8, r9, r10, r11, lr}}", // r1: `io`, at [sp]
        "mov r1, r0",                                        // the block's first pair
        "5:",
        "ldr r12, [sp]",
        "ldr r0, [r12]",     // x
        "ldr r3, [r12, #4]", // groups
        "ldr r2, [r12, #8]", // stride
        "add r2, r1, r2",    // the block's second pair
        "movs r4, #0",
        "movs r5, #0",
        "movs r6, #0",
        "movs r7, #0",
        "lsrs lr, r3, #1", // passes of two groups
        "beq 3f",
        "2:",
        uxtb_group2!(),
        uxtb_group2!(),
        "subs lr, lr, #1",
        "bne 2b",
        "3:",
        "tst r3, #1", // an odd group left
        "beq 4f",
        uxtb_group2!(),
        "4:",
        "ldr r12, [sp]",
        "ldr r3, [r12, #24]",     // 128·Σx
        "ldr r8, [r12, #16]",     // biases
        "ldrd r9, r10, [r8], #8", // b0, b1
        "sub r11, r4, r5",        // R − U = 256·Σ w₁·x
        "add r10, r10, r11, asr #8",
        "sub r5, r5, r3", // U − 128·Σx = Σ w₀·x
        "add r9, r9, r5",
        "sub r11, r6, r7",
        "sub r7, r7, r3",
        "ldrd r5, r6, [r8], #8", // b2, b3
        "add r5, r5, r7",
        "add r6, r6, r11, asr #8",
        "str r8, [r12, #16]",
        "ldr r8, [r12, #20]", // sums
        "strd r9, r10, [r8], #8",
        "strd r5, r6, [r8], #8",
        "str r8, [r12, #20]",
        "mov r1, r2", // the second pair ends where the next block starts
        "ldr r3, [r12, #12]",
        "subs r3, r3, #1",
        "str r3, [r12, #12]",
        "bne 5b",
        "pop {{r1, r4, r5, r6, r7, r8, r9, r10, r11, pc}}",
    );
}

/// `dsp::narrow` for whole row pairs in the row-pair layout (see
/// [`dense_row_pairs`]): one to three inputs kept in registers, both rows of a
/// pair per pass. Returns `false` (nothing written) unless there are one to
/// three inputs and the lengths agree.
#[inline(never)]
pub(crate) fn narrow_row_pairs(w: &[i8], b: &[i32], x: &[i16], acc: &mut [i32]) -> bool {
    if w.len() != x.len() * acc.len() || b.len() != acc.len() {
        return false;
    }
    match *x {
        [x0] => narrow_pairs_n(w, b, [x0], acc),
        [x0, x1] => narrow_pairs_n(w, b, [x0, x1], acc),
        [x0, x1, x2] => narrow_pairs_n(w, b, [x0, x1, x2], acc),
        _ => return false,
    }
    true
}

/// [`narrow_row_pairs`] with `N` inputs, unrolled: a pair's first row reads
/// its stored byte as `w + 128`.
#[inline(always)]
fn narrow_pairs_n<const N: usize>(w: &[i8], b: &[i32], x: [i16; N], acc: &mut [i32]) {
    let x = x.map(i32::from);
    for ((pair, bb), a) in w.chunks_exact(2 * N).zip(b.chunks_exact(2)).zip(acc.chunks_exact_mut(2)) {
        if let ([b0, b1], [a0, a1]) = (bb, a) {
            let (mut s0, mut s1) = (*b0, *b1);
            for (wk, xk) in pair.chunks_exact(2).zip(x) {
                if let [u, v] = *wk {
                    s0 = s0.wrapping_add((i32::from(u as u8) - 128) * xk);
                    s1 = s1.wrapping_add(i32::from(v) * xk);
                }
            }
            *a0 = s0;
            *a1 = s1;
        }
    }
}
