//! Host benchmark of the trajectory tracker on the bundled int8 model and real
//! zara1 windows: predict (N·T conditional samples), the fast update, a point
//! query (next step: one exact conditional; step 6: the mixture over the
//! particles), and 64 × 64 density maps. Prints figures and the ratios the
//! issue asks for, measured in the same run; asserts nothing about speed.
//!
//! `cargo bench -p floe-runtime --bench trajectory` (or `cargo xtask bench`).

use std::hint::black_box;
use std::time::Instant;

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

/// Median seconds per call over `reps` runs of `inner` calls.
fn median(reps: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                f();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let model = Model::load(&MODEL.0).expect("the bundled trajectory model loads");
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let w = window(0);
    let (history, future) = w.split_at(8);
    let mut t = Box::new(Tracker::<N, T>::new(model, 1).expect("tracker"));
    let predict = median(5, 2, || t.predict(black_box(history), &mut scratch).expect("predict"));
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
    let next = median(5, 200, || {
        black_box(t.log_density(1, black_box(future[0]), &mut scratch).expect("query"));
    });
    let step6 = median(5, 4, || {
        black_box(t.log_density(6, black_box(future[5]), &mut scratch).expect("query"));
    });
    let mut map = vec![0.0f32; 64 * 64];
    let origin = [future[0][0] - 1.6, future[0][1] - 1.6];
    let map_next = median(3, 1, || t.log_density_grid(1, origin, 0.05, 64, 64, &mut map, &mut scratch).expect("map"));
    let map6 = median(1, 1, || t.log_density_grid(6, origin, 0.05, 64, 64, &mut map, &mut scratch).expect("map"));
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
