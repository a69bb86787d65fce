//! Writes `fuzz/seeds/*.floe`: small random models of every transform, base and
//! precision, with and without a context — the structure-aware fuzz targets'
//! starting points besides the bundled models (`floe_fuzz_checks::SEEDS`).
//!
//! Also the zuko flows of the interop fixtures, imported (`floe import zuko`):
//! the layer flag of zuko's parameterization.
//!
//! `cargo run -p floe-tests --features seeds --example fuzz_seeds`

use floe_exporter::data::Rows;
use floe_exporter::flow::TransformKind;
use floe_exporter::quant::{quantize, QuantConfig};
use floe_runtime::format::{BaseKind, Precision};
use floe_tests::{config, random_flow, rows};

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    std::fs::create_dir_all(&dir).expect("fuzz/seeds");
    let cases = [
        ("spline-coupling", TransformKind::SplineCoupling, BaseKind::StdNormal, 0, Some(Precision::Int8)),
        ("affine-coupling", TransformKind::AffineCoupling, BaseKind::DiagNormal, 2, Some(Precision::W8)),
        ("maf", TransformKind::MadeAffine, BaseKind::StudentT, 0, Some(Precision::Int8)),
        ("made-spline", TransformKind::MadeSpline, BaseKind::DiagNormal, 2, None),
        ("linear-mixture", TransformKind::Linear, BaseKind::Mixture, 0, None),
        ("spline-full-mixture", TransformKind::SplineCoupling, BaseKind::FullMixture, 0, Some(Precision::Int8)),
    ];
    for (name, t, base, cdim, quant) in cases {
        // The full-covariance mixture in four dimensions: its packed lower
        // triangles' row order then differs from a column order.
        let d = if base == BaseKind::FullMixture { 4 } else { 3 };
        let mut cfg = config(t, d, cdim);
        cfg.base = base;
        let (flow, xs, cs) = random_flow(&cfg, 11);
        let model = flow.frozen(&xs, &cs).expect("freeze");
        let path = dir.join(format!("{name}.floe"));
        std::fs::write(&path, model.to_bytes().expect("bytes")).expect("write");
        println!("{}", path.display());
        if let Some(p) = quant {
            let set =
                |n, seed| Rows { dim: d, context_dim: cdim, x: rows(n, d, 1.0, seed), c: rows(n, cdim, 1.0, seed + 1) };
            let q = quantize(
                &model,
                QuantConfig { precision: p, max_layer_cost: f64::INFINITY },
                &set(200, 1),
                &set(100, 3),
                &set(100, 5),
            )
            .expect("quantize");
            let path = dir.join(format!("{name}-{}.floe", format!("{p:?}").to_lowercase()));
            std::fs::write(&path, q.model.to_bytes().expect("bytes")).expect("write");
            println!("{}", path.display());
        }
    }
    let fixtures = dir.join("../../tests/fixtures/interop");
    for name in ["zuko_nsf", "zuko_maf", "zuko_cnsf"] {
        let opts = floe_exporter::import::ImportOptions::default();
        let cpu = floe_exporter::train::device::cpu();
        let state = fixtures.join(format!("{name}.safetensors"));
        let imported =
            floe_exporter::import::import(floe_exporter::import::Library::Zuko, &state, &opts, &cpu).expect("import");
        let (loaded, _) = floe_exporter::import::freeze_imported(&imported.flow).expect("freeze");
        let path = dir.join(format!("{}.floe", name.replace('_', "-")));
        std::fs::write(&path, loaded.bytes()).expect("write");
        println!("{}", path.display());
    }
}
