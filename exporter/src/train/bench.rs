//! Training throughput: rows per second of whole Adam steps (forward, backward,
//! optimizer) for a flow on a device, and the spline op alone (forward and
//! backward) fused vs the Burn-ops reference. `floe bench-train` prints them
//! as a table; `cargo xtask bench-train` runs that in release.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::flow::{fused, spline, Flow, FlowConfig};

/// Standard-normal-ish host rows `[n, d]` (a sum of uniforms), seeded.
fn host_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * d).map(|_| (0..4).map(|_| rng.gen_range(-0.866f32..0.866)).sum()).collect()
}

/// Seconds per call of `f` after `warmup` calls, over `reps` calls (each call
/// ends in a read back to the host, so the device's queue is drained).
fn time(warmup: usize, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let t0 = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / reps.max(1) as f64)
}

/// Rows per second of training steps of a flow `cfg` at `batch` on `device`.
pub fn train_rows_per_s(cfg: &FlowConfig, device: &Device, batch: usize, warmup: usize, reps: usize) -> Result<f64> {
    let dev = device.clone().autodiff();
    let mut model = Some(super::device::seeded(&dev, 1, || Flow::new(cfg, &dev))?);
    let mut optim = AdamConfig::new().init();
    let x = host_rows(batch, cfg.dim, 3);
    let secs = time(warmup, reps, || {
        let xb = Tensor::<2>::from_data(TensorData::new(x.clone(), [batch, cfg.dim]), &dev);
        let m = model.take().ok_or(crate::error::FloeError::Internal("bench: model"))?;
        let loss = m.log_prob(xb, None).mean_dim(0).neg();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = optim.step(1e-4, m, grads);
        // Read a parameter back: the step is done when this returns.
        let _ = loss.into_scalar::<f32>();
        model = Some(m);
        Ok(())
    })?;
    Ok(batch as f64 / secs)
}

/// Elements per second of the spline op alone, forward and backward, on
/// `device` (fused kernel or the Burn-ops reference), for `n` elements, K bins.
pub fn spline_elems_per_s(
    device: &Device,
    fused_kernel: bool,
    n: usize,
    bins: usize,
    warmup: usize,
    reps: usize,
) -> Result<f64> {
    let dev = device.clone().autodiff();
    let x = host_rows(n, 1, 5);
    let p = host_rows(n, 3 * bins - 1, 6);
    let secs = time(warmup, reps, || {
        let xt = Tensor::<1>::from_data(TensorData::new(x.clone(), [n]), &dev).require_grad();
        let pt = Tensor::<2>::from_data(TensorData::new(p.clone(), [n, 3 * bins - 1]), &dev).require_grad();
        let (y, ld) = if fused_kernel {
            fused::forward(xt.clone(), pt.clone(), bins, 3.0)
        } else {
            spline::rqs_forward_reference(xt.clone(), pt.clone(), bins, 3.0)
        };
        let g = (y + ld).sum().backward();
        let gp = pt.grad(&g).ok_or(crate::error::FloeError::Internal("bench: no gradient"))?;
        let _ = gp.sum().into_scalar::<f32>();
        Ok(())
    })?;
    Ok(n as f64 / secs)
}
