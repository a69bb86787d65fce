//! floe's side of `cargo xtask bench-peers`: the f32 demo model's `log_prob` on
//! the host at batch 1 (latency of one call), and over 4096 rows (per row): the
//! single-row call in a loop, and `log_prob_batch` on one thread and on every
//! CPU (rows split over scoped threads, one scratch each).
//! Prints one `key value` line per figure (microseconds), like the FlowJAX side.
//! `FLOE_PEERS_MODEL=thyroid-int8.floe` runs it on the int8 demo model.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{calibrate, time_per_call};
use floe_runtime::Model;

const BATCH: usize = 4096;

fn main() {
    // `FLOE_PEERS_MODEL=thyroid-int8.floe` measures the int8 demo model instead.
    let name = std::env::var("FLOE_PEERS_MODEL").unwrap_or_else(|_| "thyroid.floe".into());
    let path = format!("{}/../firmware/assets/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).expect("a bundled demo model");
    let mut words = vec![0u128; file.len().div_ceil(16)];
    let bytes: &mut [u8] = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..file.len()];
    bytes.copy_from_slice(&file);
    let m = Model::load(bytes).expect("the demo model loads");
    let rows = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid.f32")).expect("rows");
    let bundled: Vec<f32> = rows.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let d = m.dim();
    // 4096 rows: the bundled rows, repeated.
    let x: Vec<f32> = bundled.iter().copied().cycle().take(BATCH * d).collect();
    let mut scratch = vec![0.0f32; m.scratch_len()];

    let mut one = || {
        black_box(m.log_prob(black_box(&x[..d]), &[], &mut scratch).expect("log_prob"));
    };
    let inner = calibrate(&mut one, Duration::from_millis(200));
    let batch1 = time_per_call(one, inner, 9);

    let mut out = vec![0.0f32; BATCH];
    let mut batch_scratch = vec![0.0f32; m.batch_scratch_len()];
    let mut batched = || {
        m.log_prob_batch(&x, &[], &mut out, &mut batch_scratch).expect("log_prob_batch");
        black_box(&out);
    };
    let inner = calibrate(&mut batched, Duration::from_millis(200));
    let batch_row = time_per_call(batched, inner, 9) / BATCH as f64;

    let mut serial = || {
        for (row, o) in x.chunks_exact(d).zip(out.iter_mut()) {
            *o = m.log_prob(row, &[], &mut scratch).expect("log_prob");
        }
        black_box(&out);
    };
    let inner = calibrate(&mut serial, Duration::from_millis(200));
    let serial_row = time_per_call(serial, inner, 9) / BATCH as f64;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = BATCH.div_ceil(threads);
    let mut parallel = || {
        std::thread::scope(|s| {
            for (xs, os) in x.chunks(chunk * d).zip(out.chunks_mut(chunk)) {
                let m = &m;
                s.spawn(move || {
                    let mut scratch = vec![0.0f32; m.batch_scratch_len()];
                    m.log_prob_batch(xs, &[], os, &mut scratch).expect("log_prob_batch");
                });
            }
        });
        black_box(&out);
    };
    let inner = calibrate(&mut parallel, Duration::from_millis(200));
    let parallel_row = time_per_call(parallel, inner, 9) / BATCH as f64;

    println!("threads {threads}");
    println!("batch1_us {:.3}", batch1 * 1e6);
    println!("rows4096_us_per_row_1 {:.4}", serial_row * 1e6);
    println!("batch4096_us_per_row_1 {:.4}", batch_row * 1e6);
    println!("batch4096_us_per_row_all {:.4}", parallel_row * 1e6);
}
