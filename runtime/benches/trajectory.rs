//! Host benchmark of the trajectory tracker on the bundled int8 model and real
//! zara1 windows: predict (N·T conditional samples), the fast update, a point
//! query (next step: one exact conditional; step 6: the mixture over the
//! particles), and 64 × 64 density maps. Prints figures and the ratios the
//! issue asks for, measured in the same run; asserts nothing about speed.
//!
//! `cargo bench -p floe-runtime --bench trajectory` (or `cargo xtask bench`).

use std::hint::black_box;
use std::time::Instant;

mod common;

use common::time_per_call;
use floe_runtime::trajectory::{Point, Tracker};
use floe_runtime::Model;

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);
static MODEL: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/traj-int8.floe")));
static WINDOWS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/traj-windows.f32"));

const N: usize = 64;
const T: usize = 12;

fn window(k: usize) -> [Point; 20] {
    let mut w = [[0.0f32; 2]; 20];
    for (p, b) in w.iter_mut().zip(WINDOWS[k * 160..(k + 1) * 160].chunks_exact(8)) {
        *p = [f32::from_le_bytes([b[0], b[1], b[2], b[3]]), f32::from_le_bytes([b[4], b[5], b[6], b[7]])];
    }
    w
}

fn main() {
    let model = Model::load(&MODEL.0).expect("the bundled trajectory model loads");
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let w = window(0);
    let (history, future) = w.split_at(8);
    let mut t = Box::new(Tracker::<N, T>::new(model, 1).expect("tracker"));
    let predict = time_per_call(|| t.predict(black_box(history), &mut scratch).expect("predict"), 2, 5);
    // One update reweights N particles for one step; predict again before each
    // batch of T updates so every update has a step left.
    let mut updates = Vec::new();
    for _ in 0..9 {
        t.predict(history, &mut scratch).expect("predict");
        let s = Instant::now();
        for &y in future {
            black_box(t.update(black_box(y), 0.05).expect("update"));
        }
        updates.push(s.elapsed().as_secs_f64() / T as f64);
    }
    updates.sort_by(f64::total_cmp);
    let update = updates[updates.len() / 2];
    t.predict(history, &mut scratch).expect("predict");
    let next = time_per_call(
        || {
            black_box(t.log_density(1, black_box(future[0]), &mut scratch).expect("query"));
        },
        200,
        5,
    );
    let step6 = time_per_call(
        || {
            black_box(t.log_density(6, black_box(future[5]), &mut scratch).expect("query"));
        },
        4,
        5,
    );
    let mut map = vec![0.0f32; 64 * 64];
    let origin = [future[0][0] - 1.6, future[0][1] - 1.6];
    let map_next =
        time_per_call(|| t.log_density_grid(1, origin, 0.05, 64, 64, &mut map, &mut scratch).expect("map"), 1, 3);
    let map6 =
        time_per_call(|| t.log_density_grid(6, origin, 0.05, 64, 64, &mut map, &mut scratch).expect("map"), 1, 1);
    let us = |s: f64| s * 1e6;
    println!(
        "trajectory tracker on the host (bundled int8 model, {} bytes; N = {N} particles, T = {T} steps)",
        MODEL.0.len()
    );
    println!(
        "  predict (N·T = {} conditional samples)  {:>10.1} us   ({:.2} us per sample)",
        N * T,
        us(predict),
        us(predict) / (N * T) as f64
    );
    println!(
        "  update (N particles, one step)          {:>10.3} us   ({:.1} ns per particle·step)",
        us(update),
        update * 1e9 / N as f64
    );
    println!("  predict / update                        {:>10.0}", predict / update);
    println!("  query, next step (one exact conditional) {:>9.1} us", us(next));
    println!("  query, step 6 (mixture over N particles) {:>9.1} us", us(step6));
    println!("  64 x 64 map, next step                  {:>10.3} s", map_next);
    println!("  64 x 64 map, step 6                     {:>10.3} s", map6);
}
