//! Burn <-> runtime parity: every transform, conditioners plain and residual,
//! every base distribution, conditional and not.

use floe_exporter::data::Rows;
use floe_exporter::flow::{FlowConfig, PermChoice, TransformKind};
use floe_exporter::freeze::freeze;
use floe_runtime::format::BaseKind;
use floe_tests::{config, random_flow, rows};

fn check(cfg: &FlowConfig, seed: u64) -> f64 {
    let (flow, xs, cs) = random_flow(cfg, seed);
    let n = 64;
    let x: Vec<f32> = rows(n, cfg.dim, 1.0, seed + 10)
        .iter()
        .enumerate()
        .map(|(k, v)| v * xs.std[k % cfg.dim] + xs.mean[k % cfg.dim])
        .collect();
    let c = rows(n, cfg.context_dim, 1.0, seed + 20);
    let check_rows = Rows { dim: cfg.dim, context_dim: cfg.context_dim, x, c };
    let (_, parity) = freeze(&flow, &xs, &cs, &check_rows, 1e-4).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
    assert_eq!(parity.rows, n);
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
    for base in [BaseKind::StdNormal, BaseKind::DiagNormal, BaseKind::StudentT] {
        let mut cfg = config(TransformKind::SplineCoupling, 2, 0);
        cfg.base = base;
        let e = check(&cfg, 7);
        println!("{base:?}: max |diff| {e:.2e}");
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
