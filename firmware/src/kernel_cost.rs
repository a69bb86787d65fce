//! The cost program's kernel timings: the three dense kernels (f32, w8, int8),
//! each `DENSE_N x DENSE_N` with weights in flash, and two small int8 layers
//! that take the Cortex-M4F kernel's other paths. Like `script.rs`, compiled into
//! the firmware and into `cargo xtask qemu` (the host's lines are the expected
//! output).

use super::script::{Clock, Sink, COST_REPEATS, DENSE_N};
use floe_runtime::Error;

/// A deterministic weight for the timed dense layer.
const fn dense_weight(k: usize) -> f32 {
    ((k * 37 % 101) as f32 - 50.0) / 256.0
}

const fn dense_weights() -> [f32; DENSE_N * DENSE_N] {
    let mut w = [0.0; DENSE_N * DENSE_N];
    let mut k = 0;
    while k < w.len() {
        w[k] = dense_weight(k);
        k += 1;
    }
    w
}

/// The timed dense layer's weights (in flash on the device, as model weights are).
static DENSE_W: [f32; DENSE_N * DENSE_N] = dense_weights();

/// A deterministic int8 weight for the timed int8 and w8 dense layers.
const fn dense_weight_i8(k: usize) -> i8 {
    ((k * 37 % 255) as i32 - 127) as i8
}

const fn dense_weights_i8() -> [i8; DENSE_N * DENSE_N] {
    let mut w = [0; DENSE_N * DENSE_N];
    let mut k = 0;
    while k < w.len() {
        w[k] = dense_weight_i8(k);
        k += 1;
    }
    w
}

/// Word alignment, as model tensors have (the DSP loop needs 4-byte aligned data).
#[repr(C, align(4))]
struct Align4<T>(T);

/// The timed int8 layer's weights (in flash on the device).
static DENSE_W_I8: Align4<[i8; DENSE_N * DENSE_N]> = Align4(dense_weights_i8());

/// Print `v` as the integer results `name` 0 j (one shared, out-of-line
/// copy: the Cortex-M0's flash holds this program with little to spare).
#[inline(never)]
fn ints(sink: &mut impl Sink, name: &'static str, v: &[i32]) {
    for (j, &vj) in v.iter().enumerate() {
        sink.int(name, 0, j as u32, vj);
    }
}

/// [`ints`] for f32 results.
#[inline(never)]
fn values(sink: &mut impl Sink, name: &'static str, v: &[f32]) {
    for (j, &vj) in v.iter().enumerate() {
        sink.value(name, 0, j as u32, vj);
    }
}

/// An int8 dense kernel: row-major or row pairs.
type Int8Dense = fn(&[i8], &[i32], &[i16], &mut [i32]) -> Result<(), Error>;

/// Time `kernel` on the `DENSE_N × DENSE_N` weights `w` from inputs `x`, each
/// result fed back (scaled) as the next input, [`COST_REPEATS`] times; print the
/// cost as `names.0` and the last sums as `names.1`.
#[allow(clippy::too_many_arguments)]
fn time_int8(
    sink: &mut impl Sink,
    clock: &mut impl Clock,
    kernel: Int8Dense,
    w: &[i8],
    b: &[i32],
    x: [i16; DENSE_N],
    names: (&'static str, &'static str),
    overhead: u64,
) -> Result<(), Error> {
    use core::hint::black_box;
    let macs = COST_REPEATS * (DENSE_N * DENSE_N) as u32;
    let mut acc = [0i32; DENSE_N];
    let mut xq = black_box(Align4(x));
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        kernel(black_box(w), black_box(b), black_box(&xq.0[..]), black_box(&mut acc[..]))?;
        for (xk, ak) in xq.0.iter_mut().zip(acc.iter()) {
            *xk = (*ak >> 12).clamp(-255, 255) as i16;
        }
    }
    let t1 = clock.now();
    sink.cost(names.0, macs, t1.saturating_sub(t0).saturating_sub(overhead));
    ints(sink, names.1, &acc[..]);
    Ok(())
}

/// Instructions per multiply-accumulate of the three dense kernels (f32, w8,
/// int8), each `DENSE_N x DENSE_N` with weights in flash, repeated
/// [`COST_REPEATS`] times; their outputs are results too.
pub fn kernel_cost(sink: &mut impl Sink, clock: &mut impl Clock) -> Result<(), Error> {
    use core::hint::black_box;
    use floe_runtime::kernels::{dense_f32, quant};
    let macs = COST_REPEATS * (DENSE_N * DENSE_N) as u32;
    let t0 = clock.now();
    let t1 = clock.now();
    let overhead = t1.saturating_sub(t0);

    // f32: y = W v + b, fed back as the next input.
    let mut v = [0.0f32; DENSE_N];
    let mut y = [0.0f32; DENSE_N];
    let mut b = [0.0f32; DENSE_N];
    for (k, (vk, bk)) in v.iter_mut().zip(b.iter_mut()).enumerate() {
        *vk = dense_weight(k * 7 + 3);
        *bk = dense_weight(k * 11 + 5);
    }
    let mut v = black_box(v);
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        // Slices through black_box: the kernels see run-time sizes, as in a model.
        dense_f32(black_box(&DENSE_W[..]), black_box(&b[..]), black_box(&v[..]), black_box(&mut y[..]))?;
        v.copy_from_slice(&y);
    }
    let t1 = clock.now();
    sink.cost("dense-f32-mac", macs, t1.saturating_sub(t0).saturating_sub(overhead));
    values(sink, "dense-f32", &y[..]);

    // w8: int8 weights, bf16 scales (1/256), f32 activations.
    let scale = [0x3B80u16; DENSE_N];
    let mut v = black_box(v);
    let t0 = clock.now();
    for _ in 0..COST_REPEATS {
        quant::dense_w8(
            black_box(&DENSE_W_I8.0[..]),
            black_box(&scale[..]),
            black_box(&b[..]),
            black_box(&v[..]),
            black_box(&mut y[..]),
        )?;
        for (vk, yk) in v.iter_mut().zip(y.iter()) {
            *vk = *yk * (1.0 / 16.0);
        }
    }
    let t1 = clock.now();
    sink.cost("dense-w8-mac", macs, t1.saturating_sub(t0).saturating_sub(overhead));
    values(sink, "dense-w8", &y[..]);

    // int8: centred int8 activations (i16), i32 accumulators and biases.
    let mut xq = Align4([0i16; DENSE_N]);
    let mut bq = [0i32; DENSE_N];
    for (k, (xk, bk)) in xq.0.iter_mut().zip(bq.iter_mut()).enumerate() {
        *xk = i16::from(dense_weight_i8(k * 7 + 3)) * 2;
        *bk = i32::from(dense_weight_i8(k * 11 + 5)) * 1000;
    }
    time_int8(sink, clock, quant::dense_i8, &DENSE_W_I8.0, &bq, xq.0, ("dense-int8-mac", "dense-int8"), overhead)?;
    // int8 in the row-pair layout (`floe repack`; what the Cortex-M4F firmware
    // embeds), the same weights (packed here, in RAM) and inputs: its sums
    // equal the row-major ones.
    let mut packed = Align4([0i8; DENSE_N * DENSE_N]);
    floe_runtime::format::row_pairs::pack(&DENSE_W_I8.0, DENSE_N, DENSE_N, &mut packed.0)?;
    let names = ("dense-int8-pairs-mac", "dense-int8-pairs");
    time_int8(sink, clock, quant::dense_i8_pairs, &packed.0, &bq, xq.0, names, overhead)?;

    // A 7 x 12 int8 dense (not timed): on the Cortex-M4F it takes the DSP
    // kernel's odd group of four, a block of four rows, a pair and a last row,
    // which the 32 x 32 layer (eight blocks, whole pairs of groups) never does;
    // then a 5 x 4 one (one group: the four-row kernel's loop runs no pass,
    // only its odd group) and a 6 x 3 one (fewer inputs than a group: on the
    // Cortex-M4F `dsp::narrow`, elsewhere the portable loop). The results are
    // diffed against the host's portable loop.
    let mut w12 = Align4([0i8; 7 * 12]);
    for (k, v) in w12.0.iter_mut().enumerate() {
        *v = dense_weight_i8(k * 13 + 1);
    }
    let mut x12 = Align4([0i16; 12]);
    for (k, v) in x12.0.iter_mut().enumerate() {
        *v = i16::from(dense_weight_i8(k * 5 + 2)) * 2;
    }
    let b7 = [3, -70_000, 1 << 20, 0, -1, 123_456, -(1 << 24)];
    let mut acc7 = [0i32; 7];
    quant::dense_i8(black_box(&w12.0[..]), black_box(&b7[..]), black_box(&x12.0[..]), black_box(&mut acc7[..]))?;
    ints(sink, "dense-int8-odd", &acc7[..]);
    let mut acc5 = [0i32; 5];
    quant::dense_i8(black_box(&w12.0[..20]), black_box(&b7[..5]), black_box(&x12.0[..4]), black_box(&mut acc5[..]))?;
    ints(sink, "dense-int8-one-group", &acc5[..]);
    let mut acc6 = [0i32; 6];
    quant::dense_i8(black_box(&w12.0[..18]), black_box(&b7[..6]), black_box(&x12.0[..3]), black_box(&mut acc6[..]))?;
    ints(sink, "dense-int8-narrow", &acc6[..]);

    // The row-pair kernels' other paths, on the same values: 7 x 12 (a block
    // of two pairs, a last pair and an odd row), 4 x 4 (one group: the block
    // loop runs no pass, only its odd group), 6 x 6 (not a whole number of
    // groups: the portable loop) and 5 x 3 (fewer inputs than a group).
    for (rows, cols, name) in [
        (7, 12, "dense-int8-pairs-odd"),
        (4, 4, "dense-int8-pairs-one-group"),
        (6, 6, "dense-int8-pairs-tail"),
        (5, 3, "dense-int8-pairs-narrow"),
    ] {
        let n = rows * cols;
        floe_runtime::format::row_pairs::pack(&w12.0[..n], rows, cols, &mut packed.0[..n])?;
        let mut a = [0i32; 7];
        quant::dense_i8_pairs(
            black_box(&packed.0[..n]),
            black_box(&b7[..rows]),
            black_box(&x12.0[..cols]),
            black_box(&mut a[..rows]),
        )?;
        ints(sink, name, &a[..rows]);
    }
    Ok(())
}
