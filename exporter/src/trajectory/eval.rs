//! Evaluation on a held-out scene, through the runtime (the file as a device
//! runs it): best-of-20 ADE/FDE, the exact joint NLL of the true future, the
//! per-step position NLL from the particle mixture, the NLL after fast updates
//! vs after exact recomputation — and the constant-velocity baselines.

use floe_runtime::trajectory::{Point, Tracker};
use floe_runtime::{Model, Rng};
use serde::{Deserialize, Serialize};

use super::data::{Window, HORIZON, OBSERVED};
use crate::error::Result;

/// Sampled futures for best-of-K ADE/FDE.
pub const BEST_OF: usize = 20;
/// Particles for the per-step mixture densities and the updates.
pub const PARTICLES: usize = 64;
/// Fast updates before the NLL comparison.
pub const UPDATES: usize = 4;
/// Sensor noise of the updates, metres.
pub const SENSOR_SIGMA: f32 = 0.05;
/// Heading noise of the sampled constant-velocity baseline (Schöller et al.
/// 2020: σ = 25° suffices on ETH/UCY), radians.
pub const CV_HEADING_SIGMA: f32 = 25.0 * std::f32::consts::PI / 180.0;
/// Speed noise of the sampled constant-velocity baseline (relative).
pub const CV_SPEED_SIGMA: f32 = 0.1;

/// The figures of one model on one scene.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SceneEval {
    /// Windows for ADE/FDE and the joint NLL.
    pub windows: usize,
    /// Best-of-20 average / final displacement error, metres.
    pub ade: f64,
    /// See `ade`.
    pub fde: f64,
    /// Mean exact NLL of the true future, nats per trajectory.
    pub nll: f64,
    /// Windows of the mixture and update figures (evenly spaced; each costs
    /// thousands of conditional evaluations).
    pub mixture_windows: usize,
    /// Mean per-step position NLL (mixture over 64 particles; step 1 exact),
    /// nats per step.
    pub pos_nll: f64,
    /// After 4 fast updates along the true track: mean position NLL over the 8
    /// remaining steps.
    pub fast_nll: f64,
    /// The same after exact recomputation from the latest 8 positions.
    pub recompute_nll: f64,
    /// Mean effective sample size after the 4 updates.
    pub ess: f64,
}

/// The constant-velocity baselines on one scene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineEval {
    /// Deterministic constant velocity: ADE, FDE.
    pub cv: (f64, f64),
    /// Sampled heading and speed noise, best of 20: ADE, FDE.
    pub cv_sampled: (f64, f64),
}

fn dist(a: Point, b: Point) -> f64 {
    (((a[0] - b[0]) as f64).powi(2) + ((a[1] - b[1]) as f64).powi(2)).sqrt()
}

/// Best-of-K (ADE, FDE) of `K` candidate futures (each `HORIZON` points).
fn best_of(cands: &[[Point; HORIZON]], truth: &[Point]) -> (f64, f64) {
    let mut best = (f64::INFINITY, f64::INFINITY);
    for c in cands {
        let ade = c.iter().zip(truth).map(|(&p, &q)| dist(p, q)).sum::<f64>() / HORIZON as f64;
        let fde = dist(c[HORIZON - 1], truth[HORIZON - 1]);
        best.0 = best.0.min(ade);
        best.1 = best.1.min(fde);
    }
    best
}

/// Evenly spaced indices: at most `k` of `0..n`.
pub fn spread(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    (0..k).map(|i| i * n / k).collect()
}

/// Run `f` over `items` on two threads, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let mid = items.len() / 2;
    let (a, b) = items.split_at(mid);
    let (ra, rb) = std::thread::scope(|s| {
        let h = s.spawn(|| a.iter().enumerate().map(|(i, t)| f(i, t)).collect::<Result<Vec<R>>>());
        let rb = b.iter().enumerate().map(|(i, t)| f(mid + i, t)).collect::<Result<Vec<R>>>();
        (h.join(), rb)
    });
    let mut out = ra.map_err(|_| crate::error::FloeError::Internal("an evaluation thread panicked"))??;
    out.extend(rb?);
    Ok(out)
}

/// Evaluate a trajectory file on `windows`; the mixture and update figures on at
/// most `mixture_windows` of them.
pub fn evaluate(model: &Model<'_>, windows: &[Window], mixture_windows: usize, seed: u64) -> Result<SceneEval> {
    // ADE/FDE and joint NLL on every window.
    let per: Vec<(f64, f64, f64)> = par_map(windows, |i, w| {
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let mut t = Tracker::<BEST_OF, HORIZON>::new(*model, seed ^ (i as u64).wrapping_mul(0x9E37_79B9))?;
        t.predict(w.history(), &mut scratch)?;
        let mut cands = [[[0.0f32; 2]; HORIZON]; BEST_OF];
        for (k, c) in cands.iter_mut().enumerate() {
            for (s, p) in c.iter_mut().enumerate() {
                *p = t.position(k, s + 1).ok_or(crate::error::FloeError::Internal("particle position"))?;
            }
        }
        let (ade, fde) = best_of(&cands, w.future());
        let lp = t.log_prob_future(w.future(), &mut scratch)? as f64;
        Ok((ade, fde, lp))
    })?;
    let n = per.len().max(1) as f64;
    let mut out = SceneEval {
        windows: per.len(),
        ade: per.iter().map(|p| p.0).sum::<f64>() / n,
        fde: per.iter().map(|p| p.1).sum::<f64>() / n,
        nll: -per.iter().map(|p| p.2).sum::<f64>() / n,
        ..SceneEval::default()
    };
    // Mixture densities and updates on a spread of windows.
    let picked: Vec<Window> = spread(windows.len(), mixture_windows).into_iter().map(|i| windows[i]).collect();
    let mix: Vec<(f64, f64, f64, f64)> = par_map(&picked, |i, w| {
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let mut t = Tracker::<PARTICLES, HORIZON>::new(*model, seed ^ 0xA5A5 ^ (i as u64).wrapping_mul(0x9E37_79B9))?;
        t.predict(w.history(), &mut scratch)?;
        let fut = w.future();
        let mut pos = 0.0;
        for (s, &q) in fut.iter().enumerate() {
            pos -= t.log_density(s + 1, q, &mut scratch)? as f64;
        }
        for &q in &fut[..UPDATES] {
            t.update(q, SENSOR_SIGMA)?;
        }
        let ess = t.ess() as f64;
        let rest = &fut[UPDATES..];
        let mut fast = 0.0;
        for (s, &q) in rest.iter().enumerate() {
            fast -= t.log_density(s + 1, q, &mut scratch)? as f64;
        }
        t.recompute(&mut scratch)?;
        let mut exact = 0.0;
        for (s, &q) in rest.iter().enumerate() {
            exact -= t.log_density(s + 1, q, &mut scratch)? as f64;
        }
        let r = rest.len() as f64;
        Ok((pos / HORIZON as f64, fast / r, exact / r, ess))
    })?;
    let m = mix.len().max(1) as f64;
    out.mixture_windows = mix.len();
    out.pos_nll = mix.iter().map(|v| v.0).sum::<f64>() / m;
    out.fast_nll = mix.iter().map(|v| v.1).sum::<f64>() / m;
    out.recompute_nll = mix.iter().map(|v| v.2).sum::<f64>() / m;
    out.ess = mix.iter().map(|v| v.3).sum::<f64>() / m;
    Ok(out)
}

/// The constant-velocity baselines: the last observed displacement repeated,
/// and 20 futures with its heading and speed perturbed (best of 20).
pub fn baselines(windows: &[Window], seed: u64) -> BaselineEval {
    let mut rng = Rng::new(seed);
    let (mut cv, mut cvs) = ((0.0, 0.0), (0.0, 0.0));
    for w in windows {
        let h = w.history();
        let (last, prev) = (h[OBSERVED - 1], h[OBSERVED - 2]);
        let v = [last[0] - prev[0], last[1] - prev[1]];
        let path = |v: Point| {
            let mut c = [[0.0f32; 2]; HORIZON];
            for (s, p) in c.iter_mut().enumerate() {
                let k = (s + 1) as f32;
                *p = [last[0] + k * v[0], last[1] + k * v[1]];
            }
            c
        };
        let (a, f) = best_of(&[path(v)], w.future());
        cv.0 += a;
        cv.1 += f;
        let cands: Vec<[Point; HORIZON]> = (0..BEST_OF)
            .map(|_| {
                let th = CV_HEADING_SIGMA * rng.normal();
                let sc = 1.0 + CV_SPEED_SIGMA * rng.normal();
                let (c, s) = (th.cos() * sc, th.sin() * sc);
                path([c * v[0] - s * v[1], s * v[0] + c * v[1]])
            })
            .collect();
        let (a, f) = best_of(&cands, w.future());
        cvs.0 += a;
        cvs.1 += f;
    }
    let n = windows.len().max(1) as f64;
    BaselineEval { cv: (cv.0 / n, cv.1 / n), cv_sampled: (cvs.0 / n, cvs.1 / n) }
}
