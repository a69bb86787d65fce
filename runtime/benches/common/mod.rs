//! Timing helpers the host benchmarks share (each bench uses what it needs).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Median over `reps` of the seconds per call of `f` (each rep runs `inner` calls).
pub fn time_per_call(mut f: impl FnMut(), inner: usize, reps: usize) -> f64 {
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

/// Enough calls for about `target` per rep.
pub fn calibrate(mut f: impl FnMut(), target: Duration) -> usize {
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed() < target / 10 {
        f();
        n += 1;
    }
    (n * 10).max(1)
}
