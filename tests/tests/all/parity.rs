//! Burn <-> runtime parity: every transform, conditioners plain and residual,
//! every base distribution, conditional and not.

use floe_exporter::data::Rows;
use floe_exporter::flow::{FlowConfig, PermChoice, TransformKind};
use floe_exporter::freeze::freeze;
use floe_runtime::format::BaseKind;
use floe_tests::{config, random_flow, rows};

/// Burn's and the runtime's log-densities of 128 rows agree within 1e-4 nats
/// (plus 1e-6 of |log p|, the freeze rule); returns the largest difference.
/// Half the rows lie 3 times wider (standardized values up to ±6, a quarter of
/// them past the splines' tail bound of 3), so the tails and the bins next to
/// them are compared too, not only the middle.
pub(crate) fn check(cfg: &FlowConfig, seed: u64) -> f64 {
    let (flow, xs, cs) = random_flow(cfg, seed);
    let (n_mid, n_wide) = (64, 64);
    let mut u = rows(n_mid, cfg.dim, 1.0, seed + 10);
    u.extend(rows(n_wide, cfg.dim, 3.0, seed + 11));
    let in_tails = u.iter().filter(|v| v.abs() > cfg.tail_bound).count();
    assert!(in_tails >= n_wide * cfg.dim / 10, "only {in_tails} values past the tail bound");
    let x: Vec<f32> = u.iter().enumerate().map(|(k, v)| v * xs.std[k % cfg.dim] + xs.mean[k % cfg.dim]).collect();
    let c = rows(n_mid + n_wide, cfg.context_dim, 1.0, seed + 20);
    let check_rows = Rows { dim: cfg.dim, context_dim: cfg.context_dim, x, c };
    let (_, parity) = freeze(&flow, &xs, &cs, &check_rows, 1e-4).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
    assert_eq!(parity.rows, n_mid + n_wide);
    // Every row within the rule itself, none let through by the allowance for
    // ill-conditioned rows (`freeze` accepts those; this test does not).
    assert_eq!(parity.ill_conditioned, 0, "{cfg:?}: rows outside 1e-4 + 1e-6·|log p|");
    parity.max_abs_diff
}

#[test]
fn every_transform_matches_the_runtime() {
    for t in [
        TransformKind::SplineCoupling,
        TransformKind::AffineCoupling,
        TransformKind::MadeAffine,
        TransformKind::MadeSpline,
    ] {
        for residual in [false, true] {
            let mut cfg = config(t, 4, 0);
            cfg.residual = residual;
            let e = check(&cfg, 3);
            println!("{t:?} residual={residual}: max |diff| {e:.2e}");
        }
    }
}

#[test]
fn conditional_flows_match_the_runtime() {
    for t in [
        TransformKind::SplineCoupling,
        TransformKind::AffineCoupling,
        TransformKind::MadeAffine,
        TransformKind::MadeSpline,
    ] {
        let mut cfg = config(t, 3, 2);
        cfg.tanh = true;
        let e = check(&cfg, 5);
        println!("{t:?} conditional: max |diff| {e:.2e}");
    }
}

#[test]
fn every_base_distribution_matches_the_runtime() {
    for base in BaseKind::ALL {
        let mut cfg = config(TransformKind::SplineCoupling, 2, 0);
        cfg.base = base;
        let e = check(&cfg, 7);
        println!("{base:?}: max |diff| {e:.2e}");
    }
    // Mixtures of one and of many components, wider and conditional.
    for (components, dim, cdim) in [(1, 3, 0), (8, 5, 0), (5, 3, 2)] {
        let mut cfg = config(TransformKind::AffineCoupling, dim, cdim);
        cfg.base = BaseKind::Mixture;
        cfg.components = components;
        let e = check(&cfg, 8);
        println!("mixture of {components} in {dim} dims, context {cdim}: max |diff| {e:.2e}");
    }
}

#[test]
fn linear_flows_match_the_runtime() {
    // ActNorm → LU only: a full-covariance Gaussian, or with a mixture base a GMM
    // sharing one linear map (the family `--select` starts from).
    for (base, steps) in
        [(BaseKind::StdNormal, 1), (BaseKind::Mixture, 1), (BaseKind::FullMixture, 1), (BaseKind::StudentT, 2)]
    {
        let mut cfg = config(TransformKind::Linear, 4, 0);
        cfg.base = base;
        cfg.steps = steps;
        let e = check(&cfg, 12);
        println!("linear, {base:?}, {steps} step(s): max |diff| {e:.2e}");
    }
}

#[test]
fn one_dimensional_made_and_no_optional_layers() {
    let mut cfg = config(TransformKind::MadeSpline, 1, 0);
    cfg.lu = false;
    check(&cfg, 9);
    let mut cfg = config(TransformKind::AffineCoupling, 5, 0);
    cfg.actnorm = false;
    cfg.lu = false;
    cfg.permutation = PermChoice::Reverse;
    check(&cfg, 11);
}
