//! Host benchmark of the dense kernels (f32, w8, int8) and of `log_prob` on the
//! bundled demo models (f32 and int8). Prints figures and ratios measured in the
//! same run; asserts nothing about speed.
//!
//! `cargo bench -p floe-runtime --bench kernels` (or `cargo xtask bench`).

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::{calibrate, time_per_call};
use floe_runtime::kernels::{dense_f32, quant};
use floe_runtime::Model;

fn dense(n: usize) {
    let macs = (n * n) as f64;
    let w: Vec<f32> = (0..n * n).map(|k| ((k * 37 % 101) as f32 - 50.0) / 256.0).collect();
    let wq: Vec<i8> = (0..n * n).map(|k| ((k * 37 % 255) as i32 - 127) as i8).collect();
    let s = vec![0x3B80u16; n];
    let b = vec![0.25f32; n];
    let bq = vec![1000i32; n];
    let x: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
    let xq: Vec<i16> = (0..n).map(|k| ((k * 53) % 511) as i16 - 255).collect();
    let mut y = vec![0.0f32; n];
    let mut acc = vec![0i32; n];
    let run = |f: &mut dyn FnMut()| {
        let inner = calibrate(&mut *f, Duration::from_millis(50));
        time_per_call(f, inner, 9) * 1e9 / macs
    };
    let f32_ns = run(&mut || {
        dense_f32(black_box(&w), black_box(&b), black_box(&x), black_box(&mut y)).unwrap();
    });
    let w8_ns = run(&mut || {
        quant::dense_w8(black_box(&wq), black_box(&s), black_box(&b), black_box(&x), black_box(&mut y)).unwrap();
    });
    let i8_ns = run(&mut || {
        quant::dense_i8(black_box(&wq), black_box(&bq), black_box(&xq), black_box(&mut acc)).unwrap();
    });
    println!(
        "| dense {n} x {n} | {f32_ns:.3} | {w8_ns:.3} | {i8_ns:.3} | {:.2} | {:.2} |",
        w8_ns / f32_ns,
        i8_ns / f32_ns
    );
}

fn model(path: &str) -> Option<(usize, f64)> {
    let file = std::fs::read(path).ok()?;
    let mut words = vec![0u128; file.len().div_ceil(16)];
    let bytes: &mut [u8] = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..file.len()];
    bytes.copy_from_slice(&file);
    let m = Model::load(bytes).ok()?;
    let rows = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid.f32")).ok()?;
    let x: Vec<f32> = rows.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let d = m.dim();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let n = x.len() / d;
    let mut f = || {
        for i in 0..n {
            black_box(m.log_prob(black_box(&x[i * d..(i + 1) * d]), &[], &mut scratch).unwrap());
        }
    };
    let inner = calibrate(&mut f, Duration::from_millis(100));
    Some((file.len(), time_per_call(f, inner, 9) * 1e9 / n as f64))
}

fn main() {
    println!("host kernels: ns per multiply-accumulate (median of 9), ratios to f32 from the same run\n");
    println!("| kernel | f32 ns/MAC | w8 ns/MAC | int8 ns/MAC | w8 / f32 | int8 / f32 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for n in [32, 64, 256] {
        dense(n);
    }
    println!("\nhost log_prob on the bundled demo models (32 thyroid rows), ns per row\n");
    println!("| model | file bytes | ns / log_prob | ratio to f32 |");
    println!("|---|---:|---:|---:|");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/");
    let measured: Vec<(&str, Option<(usize, f64)>)> =
        [("demo f32", "thyroid.floe"), ("demo int8", "thyroid-int8.floe")]
            .into_iter()
            .map(|(name, file)| (name, model(&format!("{dir}{file}"))))
            .collect();
    let base = measured.first().and_then(|(_, m)| m.map(|(_, ns)| ns));
    for (name, m) in &measured {
        match (m, base) {
            (Some((bytes, ns)), Some(base)) => println!("| {name} | {bytes} | {ns:.0} | {:.2} |", ns / base),
            _ => println!("| {name} | missing | | |"),
        }
    }
}
