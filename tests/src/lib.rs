//! Shared helpers for the cross-crate tests.

use floe_exporter::data::Standardization;
use floe_exporter::flow::{perturb, Flow, FlowConfig, PermChoice, TransformKind};
use floe_exporter::freeze::AlignedBytes;
use floe_exporter::train::{cpu, materialize, seeded};
use floe_runtime::format::BaseKind;
use rand::{Rng, SeedableRng};

/// A small random flow (every parameter perturbed away from the identity) on the
/// plain CPU device, with a random standardization.
pub fn random_flow(cfg: &FlowConfig, seed: u64) -> (Flow, Standardization, Standardization) {
    random_flow_scaled(cfg, seed, 0.15)
}

/// As [`random_flow`], with parameter noise of standard deviation `scale`.
pub fn random_flow_scaled(cfg: &FlowConfig, seed: u64, scale: f32) -> (Flow, Standardization, Standardization) {
    let dev = cpu();
    let flow = seeded(&dev, seed, || {
        let flow = Flow::new(cfg, &dev).expect("valid config");
        // Either way every weight is drawn here, under the lock: `perturb`
        // reads each one, and Burn would otherwise draw them on first use.
        if scale > 0.0 {
            perturb(flow, scale)
        } else {
            materialize(flow)
        }
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let st = |d: usize, rng: &mut rand::rngs::StdRng| Standardization {
        mean: (0..d).map(|_| rng.gen_range(-2.0..2.0)).collect(),
        std: (0..d).map(|_| rng.gen_range(0.5..2.0)).collect(),
    };
    let xs = st(cfg.dim, &mut rng);
    let cs = st(cfg.context_dim, &mut rng);
    (flow, xs, cs)
}

/// A base configuration for tests.
pub fn config(transform: TransformKind, dim: usize, context_dim: usize) -> FlowConfig {
    FlowConfig {
        dim,
        context_dim,
        transform,
        steps: 2,
        hidden: 8,
        blocks: 2,
        residual: false,
        tanh: false,
        bins: 5,
        tail_bound: 3.0,
        clamp: 2.0,
        actnorm: true,
        lu: true,
        permutation: PermChoice::Random,
        base: BaseKind::StdNormal,
        components: 3,
        seed: 1,
        zero_init: true,
    }
}

/// `n` random rows of width `d` (standard normal times `scale`).
pub fn rows(n: usize, d: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * d)
        .map(|_| {
            let u: f32 = rng.gen_range(-1.0..1.0);
            let v: f32 = rng.gen_range(-1.0..1.0);
            (u + v) * scale
        })
        .collect()
}

/// The frozen bytes of a random flow, in an aligned buffer.
pub fn model_bytes(cfg: &FlowConfig, seed: u64) -> AlignedBytes {
    let (flow, xs, cs) = random_flow(cfg, seed);
    let bytes = flow.frozen(&xs, &cs).expect("freeze").to_bytes().expect("serialize");
    AlignedBytes::new(&bytes)
}
