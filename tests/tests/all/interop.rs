//! `floe import`: flows trained in zuko and nflows, brought in from their state
//! dicts, reproduce the libraries' own `log_prob` through the runtime, and
//! sample the same distribution. The fixtures (tests/fixtures/interop) were
//! made by the real libraries (`cargo xtask interop`; torch, zuko 1.6.0,
//! nflows 0.14), so this test needs no Python.

use std::path::{Path, PathBuf};

use floe_exporter::error::FloeError;
use floe_exporter::freeze::LoadedModel;
use floe_exporter::import::{self, ImportOptions, Library};
use floe_runtime::Rng;

/// The runtime within 1e-4 nats of the library, plus 1e-6·|log p| (a few f32
/// ulps of log p itself: the libraries compute in f32 too): floe's freeze rule.
fn tolerance(log_p: f64) -> f64 {
    1e-4 + 1e-6 * log_p.abs()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/interop")
}

struct Fixture {
    library: Library,
    dim: usize,
    /// Each row's context (empty rows for an unconditional flow).
    context: Vec<Vec<f32>>,
    /// The context of each library sample.
    sample_context: Vec<Vec<f32>>,
    x: Vec<Vec<f32>>,
    log_prob: Vec<f64>,
    log_prob_f64: Vec<f64>,
    samples: Vec<Vec<f32>>,
}

fn fixture(name: &str) -> Fixture {
    let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = |k: &str| -> Vec<Vec<f32>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
            .collect()
    };
    Fixture {
        library: match v["library"].as_str().unwrap() {
            "zuko" => Library::Zuko,
            "nflows" => Library::Nflows,
            l => panic!("library {l}"),
        },
        dim: v["dim"].as_u64().unwrap() as usize,
        context: rows("context"),
        sample_context: rows("sample_context"),
        x: rows("x"),
        log_prob: v["log_prob"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect(),
        log_prob_f64: v["log_prob_f64"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect(),
        samples: rows("samples"),
    }
}

fn import_file(lib: Library, path: &Path, opts: &ImportOptions) -> floe_exporter::Result<LoadedModel> {
    let imported = import::import(lib, path, opts, &floe_exporter::train::device::cpu())?;
    let (loaded, parity) = import::freeze_imported(&imported.flow)?;
    assert!(parity.rows >= 1000 && parity.beyond_tolerance == 0, "{parity:?}");
    Ok(loaded)
}

/// Largest KS distance between the empirical CDFs of `a` and `b`.
fn ks(mut a: Vec<f32>, mut b: Vec<f32>) -> f64 {
    a.sort_by(f32::total_cmp);
    b.sort_by(f32::total_cmp);
    let (mut i, mut j, mut worst) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        worst = worst.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    worst
}

fn check(name: &str) {
    let f = fixture(name);
    let path = dir().join(format!("{name}.safetensors"));
    let imported =
        import::import(f.library, &path, &ImportOptions::default(), &floe_exporter::train::device::cpu()).unwrap();
    let id = floe_exporter::data::Standardization::identity;
    let c = f.context.first().map_or(0, Vec::len);
    let loaded = floe_exporter::freeze::fold(&imported.flow, &id(f.dim), &id(c)).unwrap().load().unwrap();
    let m = loaded.model();
    assert_eq!((m.dim(), m.context_dim()), (f.dim, c));
    let mut scratch = vec![0.0f32; m.scratch_len()];

    // log-densities: the library's own values (f32, as it runs), row by row,
    // within the freeze rule.
    let ours: Vec<f64> =
        f.x.iter().zip(&f.context).map(|(x, c)| f64::from(m.log_prob(x, c, &mut scratch).unwrap())).collect();
    let lib = f.library.name();
    let (mut worst, mut beyond) = (0.0f64, 0);
    for ((x, &got), &want) in f.x.iter().zip(&ours).zip(&f.log_prob) {
        let e = (got - want).abs();
        assert!(e <= tolerance(want), "{name}: row {x:?}: floe {got}, {lib} {want}");
        beyond += usize::from(e > 1e-4);
        worst = worst.max(e);
    }
    println!(
        "{name}: {} rows, max |log p_floe − log p_{lib}| = {worst:.2e} nats, {beyond} rows beyond 1e-4",
        f.x.len()
    );
    // Against the same library run in f64 (the exact value, up to f64
    // rounding): floe is within the rule, or no further from it than twice the
    // library's own f32 evaluation is, or within the freeze's allowance for the
    // row's f32 sensitivity (rows where a steep spline amplifies f32 rounding,
    // whoever evaluates it).
    let (mut worst, mut worst_lib) = (0.0f64, 0.0f64);
    for ((((x, c), &got), &exact), &theirs) in
        f.x.iter().zip(&f.context).zip(&ours).zip(&f.log_prob_f64).zip(&f.log_prob)
    {
        let (e, e_lib) = ((got - exact).abs(), (theirs - exact).abs());
        // Failing that, the freeze's allowance for the row's own f32 sensitivity.
        let allowance = || {
            let s = floe_exporter::freeze::parity::ulp_sensitivity(m, x, c).unwrap();
            floe_exporter::freeze::parity::conditioning_factor(m) * s
        };
        assert!(
            e <= tolerance(exact) || e <= 2.0 * e_lib + 1e-5 || e <= tolerance(exact) + allowance(),
            "{name}: row {x:?}: floe {got}, {lib} in f64 {exact}, {lib} in f32 {theirs}"
        );
        worst = worst.max(e);
        worst_lib = worst_lib.max(e_lib);
    }
    println!("{name}: against {lib} in f64: max error floe {worst:.2e}, {lib} in f32 {worst_lib:.2e} nats");

    // Samples: the runtime's against the library's, coordinate by coordinate
    // (two-sample KS at α = 0.001), and their mean log-density under the model.
    let n = f.samples.len();
    let mut rng = Rng::new(7);
    let mut ours = vec![vec![0.0f32; f.dim]; n];
    let none = vec![vec![]; n];
    let sample_ctx = if f.sample_context.is_empty() { &none } else { &f.sample_context };
    for (row, c) in ours.iter_mut().zip(sample_ctx) {
        m.sample(&mut rng, c, row, &mut scratch).unwrap();
    }
    let critical = 1.95 * (2.0 / n as f64).sqrt();
    for j in 0..f.dim {
        let d = ks(ours.iter().map(|r| r[j]).collect(), f.samples.iter().map(|r| r[j]).collect());
        println!("{name}: coordinate {j}: KS {d:.4} (critical {critical:.4})");
        assert!(d < critical, "{name}: coordinate {j} KS distance {d} ≥ {critical}");
    }
    let lp = |rows: &[Vec<f32>], scratch: &mut [f32]| -> (f64, f64) {
        let v: Vec<f64> =
            rows.iter().zip(sample_ctx).map(|(r, c)| f64::from(m.log_prob(r, c, scratch).unwrap())).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64)
    };
    let (a, va) = lp(&ours, &mut scratch);
    let (b, vb) = lp(&f.samples, &mut scratch);
    let se = ((va + vb) / n as f64).sqrt();
    println!("{name}: mean log p of samples: floe {a:.4}, {} {b:.4} (se {se:.4})", f.library.name());
    assert!((a - b).abs() < 4.0 * se, "{name}: mean log p {a} vs {b}, se {se}");
    // And the import's own freeze: Burn against the runtime, the usual rule.
    import_file(f.library, &path, &ImportOptions::default()).unwrap();
}

#[test]
fn zuko_nsf_reproduces_zuko() {
    check("zuko_nsf");
}

#[test]
fn zuko_maf_reproduces_zuko() {
    check("zuko_maf");
}

/// A conditional zuko NSF (p(x | c), the context appended to every hyper
/// network's input; its MaskedMLP gives one hidden unit in D the context only).
#[test]
fn zuko_conditional_nsf_reproduces_zuko() {
    check("zuko_cnsf");
}

#[test]
fn nflows_spline_coupling_reproduces_nflows() {
    check("nflows_nsf");
}

#[test]
fn a_torch_save_pickle_gives_the_same_file() {
    let from_st =
        import_file(Library::Nflows, &dir().join("nflows_nsf.safetensors"), &ImportOptions::default()).unwrap();
    // A pickle has no metadata: which flow it is, and the tail bound, must be given.
    let pt = dir().join("nflows_nsf.pt");
    let e = import_file(Library::Nflows, &pt, &ImportOptions::default()).unwrap_err();
    assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains("--flow")), "{e}");
    let opts = ImportOptions { flow: Some("rq-coupling".into()), ..Default::default() };
    let e = import_file(Library::Nflows, &pt, &opts).unwrap_err();
    assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains("tail_bound")), "{e}");
    let opts = ImportOptions { bound: Some(4.0), ..opts };
    let from_pt = import_file(Library::Nflows, &pt, &opts).unwrap();
    assert_eq!(from_st.bytes(), from_pt.bytes());
}

#[test]
fn bad_state_dicts_are_typed_errors() {
    let cpu = floe_exporter::train::device::cpu();
    let opts = ImportOptions::default();
    // The wrong library: the metadata says so.
    let e = import::import(Library::Nflows, &dir().join("zuko_nsf.safetensors"), &opts, &cpu).unwrap_err();
    assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains("zuko")), "{e}");
    // A missing file.
    let e = import::import(Library::Zuko, &dir().join("missing.safetensors"), &opts, &cpu).unwrap_err();
    assert!(matches!(e, FloeError::Io { .. }), "{e}");
    // A truncated file, and one that is not a state dict.
    let tmp = std::env::temp_dir().join(format!("floe-interop-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let bytes = std::fs::read(dir().join("zuko_maf.safetensors")).unwrap();
    for (name, b) in [("cut.safetensors", &bytes[..bytes.len() / 2]), ("junk.pt", &b"not a pickle"[..])] {
        let p = tmp.join(name);
        std::fs::write(&p, b).unwrap();
        let e = import::import(Library::Zuko, &p, &opts, &cpu).unwrap_err();
        assert!(matches!(e, FloeError::Import { .. }), "{name}: {e}");
    }
    // A zuko state dict whose mask was tampered with so that a weight crosses the
    // autoregressive order: refused before anything is frozen.
    let mut sd = import::StateDict::read(&dir().join("zuko_maf.safetensors")).unwrap();
    assert!(sd.tensors.len() > 4);
    let key = "transform.transforms.0.hyper.0.mask";
    let m = sd.tensors.get_mut(key).unwrap();
    let cols = m.shape[1];
    // Hidden unit 0 has degree 1: it may see input 0 only; open input `cols − 1`.
    m.values[cols - 1] = 1.0;
    let w = sd.tensors.get_mut("transform.transforms.0.hyper.0.weight").unwrap();
    w.values[cols - 1] = 0.5;
    let e = import::import_state(Library::Zuko, &sd, &opts, &cpu).unwrap_err();
    assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains("degree")), "{e}");

    // Structures floe does not map are refused, not dropped: a residual
    // MaskedMLP block, a transform after a parameter-free one (a gap), a tensor
    // of another kind; and a flow named for the other library or none.
    let sd = import::StateDict::read(&dir().join("zuko_nsf.safetensors")).unwrap();
    let some = sd.tensors.values().next().unwrap().clone();
    type Edit = Box<dyn Fn(&mut import::StateDict)>;
    let edits: [(&str, Edit); 4] = [
        (
            "transform.transforms.0.hyper.1.0.weight",
            Box::new(move |s| {
                s.tensors.insert("transform.transforms.0.hyper.1.0.weight".into(), some.clone());
            }),
        ),
        (
            "transform.transforms.3.",
            Box::new(|s| {
                let moved: Vec<_> =
                    s.tensors.keys().filter(|k| k.starts_with("transform.transforms.2.")).cloned().collect();
                for k in moved {
                    let v = s.tensors.remove(&k).unwrap();
                    s.tensors.insert(k.replace("transforms.2.", "transforms.3."), v);
                }
            }),
        ),
        (
            "flow",
            Box::new(|s| {
                s.metadata.remove("flow");
            }),
        ),
        (
            "this is zuko",
            Box::new(|s| {
                s.metadata.insert("flow".into(), "rq-coupling".into());
            }),
        ),
    ];
    for (needle, edit) in edits {
        let mut bad = sd.clone();
        edit(&mut bad);
        let e = import::import_state(Library::Zuko, &bad, &opts, &cpu).unwrap_err();
        assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains(needle)), "{needle}: {e}");
    }
    // nflows: an incomplete residual block.
    let mut bad = import::StateDict::read(&dir().join("nflows_nsf.safetensors")).unwrap();
    bad.tensors.retain(|k, _| !k.ends_with("blocks.1.linear_layers.0.weight") || !k.contains("_transforms.1."));
    let e = import::import_state(Library::Nflows, &bad, &opts, &cpu).unwrap_err();
    assert!(matches!(&e, FloeError::Import { msg, .. } if msg.contains("block")), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}

/// An imported flow quantized without its training data (calibrated on its own
/// samples) stays close to the library on the real rows.
#[test]
fn imported_flows_quantize_to_int8_on_their_own_samples() {
    use floe_runtime::format::Precision;
    for name in ["zuko_nsf", "nflows_nsf"] {
        let f = fixture(name);
        let path = dir().join(format!("{name}.safetensors"));
        let imported =
            import::import(f.library, &path, &ImportOptions::default(), &floe_exporter::train::device::cpu()).unwrap();
        let q = import::quantize_imported(&imported.flow, Precision::Int8, 0.01).unwrap();
        assert!(q.verified.rows > 0 && q.verified.values > 0);
        // Residual conditioners (nflows' ResidualNet) take w8: int8 is for plain ReLU ones.
        let int8 = q.choices.iter().filter(|c| c.precision == Precision::Int8).count();
        let w8 = q.choices.iter().filter(|c| c.precision == Precision::W8).count();
        let m = q.loaded.model();
        let mut scratch = vec![0.0f32; m.scratch_len()];
        let ours: Vec<f64> = f.x.iter().map(|x| f64::from(m.log_prob(x, &[], &mut scratch).unwrap())).collect();
        let n = ours.len() as f64;
        let shift = (f.log_prob.iter().sum::<f64>() - ours.iter().sum::<f64>()) / n / f.dim as f64;
        let mean_abs = ours.iter().zip(&f.log_prob).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
        println!(
            "{name} --quantize int8: {int8} of {} conditioners int8, {w8} w8, {} bytes; NLL on the fixture rows \
             {:+.5} nats/dim vs {}, mean |Δ log p| {mean_abs:.4} nats",
            q.choices.len(),
            q.loaded.bytes().len(),
            shift,
            f.library.name()
        );
        assert!(int8 + w8 >= 1, "{name}: no layer quantized");
        assert!(shift.abs() < 0.05 && mean_abs < 0.5, "{name}: shift {shift}, mean |Δ| {mean_abs}");
    }
}

/// The conditional zuko flow's MADE layers rest on the format's zuko mask rule
/// (hidden degrees `j mod D`): with the zuko flag cleared, the runtime's load
/// finds weights the plain MADE rule masks, and refuses the file.
#[test]
fn a_conditional_zuko_flow_needs_the_zuko_mask_rule() {
    use floe_runtime::format::layout::layer;
    use floe_runtime::format::{crc32, LayerKind, FLAG_ZUKO, HEADER_LEN, LAYER_RECORD_LEN};
    let path = dir().join("zuko_cnsf.safetensors");
    let loaded = import_file(Library::Zuko, &path, &ImportOptions::default()).unwrap();
    let m = loaded.model();
    assert_eq!(m.context_dim(), 2);
    let made = (0..m.n_layers()).find(|&i| m.layer_info(i).unwrap().record.kind == LayerKind::MadeSpline).unwrap();
    let mut b = floe_exporter::freeze::AlignedBytes::new(loaded.bytes());
    b[HEADER_LEN + made * LAYER_RECORD_LEN + layer::FLAGS] &= !FLAG_ZUKO;
    let n = b.len();
    let c = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&c.to_le_bytes());
    assert_eq!(floe_runtime::Model::load(&b).err(), Some(floe_runtime::Error::InvalidParameter(made as u16)));
}
