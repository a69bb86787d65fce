//! `floe export onnx`: every bundled model exports to a well-formed graph. (The
//! numbers are checked by ONNX Runtime itself in `cargo xtask onnx`.)

use std::collections::HashSet;
use std::path::PathBuf;

use floe_exporter::freeze::LoadedModel;
use onnx_protobuf::{Message, ModelProto};

fn bundled() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in [root.join("firmware/assets"), root.join("fuzz/seeds")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "floe") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_bundled_model_exports_a_well_formed_graph() {
    let models = bundled();
    assert!(models.len() >= 12, "{models:?}");
    for path in models {
        let loaded = LoadedModel::read(&path).unwrap();
        let m = loaded.model();
        let bytes = floe_exporter::onnx::export_bytes(m, loaded.bytes()).unwrap();
        // What was written parses back.
        let proto = ModelProto::parse_from_bytes(&bytes).unwrap();
        assert_eq!(proto.opset_import[0].version, floe_exporter::onnx::OPSET);
        let g = proto.graph.as_ref().unwrap();
        let inputs: Vec<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        let want: &[&str] = if m.context_dim() > 0 { &["x", "context"] } else { &["x"] };
        assert_eq!(inputs, want, "{}", path.display());
        assert_eq!(g.output.len(), 1);
        assert_eq!(g.output[0].name, "log_prob");
        // Every node reads values defined before it: graph inputs, initializers
        // or earlier nodes' outputs (ONNX graphs are topologically sorted).
        let mut defined: HashSet<&str> = inputs.iter().copied().collect();
        defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
        for n in &g.node {
            for i in &n.input {
                assert!(defined.contains(i.as_str()), "{}: {} reads undefined {i}", path.display(), n.op_type);
            }
            for o in &n.output {
                assert!(defined.insert(o.as_str()), "{}: {o} defined twice", path.display());
            }
        }
        assert!(defined.contains("log_prob"));
        // Constants are exactly their data: no initializer without raw bytes of
        // its shape's size.
        for t in &g.initializer {
            let n: i64 = t.dims.iter().product();
            let size = match t.data_type {
                1 | 6 => 4,
                7 => 8,
                dt => panic!("{}: initializer {} of type {dt}", path.display(), t.name),
            };
            assert_eq!(t.raw_data.len() as i64, n * size, "{}", t.name);
        }
        // A spline model's graph holds the bin search.
        let ops: HashSet<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        let kinds: Vec<_> = (0..m.n_layers()).map(|i| m.layer_info(i).unwrap().record.kind.name()).collect();
        // Derivatives: softplus, or zuko's exp of a soft clip (layer flag).
        let zuko =
            (0..m.n_layers()).any(|i| m.layer_info(i).unwrap().record.flags & floe_runtime::format::FLAG_ZUKO != 0);
        if kinds.iter().any(|k| k.contains("spline")) {
            let derivative = if zuko { "Abs" } else { "Softplus" };
            for op in ["CumSum", "GatherElements", "LessOrEqual", derivative] {
                assert!(ops.contains(op), "{}: no {op}", path.display());
            }
        }
    }
}

#[test]
fn every_bundled_model_exports_a_well_formed_sampler() {
    for path in bundled() {
        let loaded = LoadedModel::read(&path).unwrap();
        let m = loaded.model();
        let bytes = floe_exporter::onnx::export_sampler_bytes(m, loaded.bytes()).unwrap();
        let proto = ModelProto::parse_from_bytes(&bytes).unwrap();
        let g = proto.graph.as_ref().unwrap();
        let inputs: Vec<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        let want: &[&str] = if m.context_dim() > 0 { &["z", "context"] } else { &["z"] };
        assert_eq!(inputs, want, "{}", path.display());
        assert_eq!(g.output.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["x"]);
        // Topologically sorted: every node input is an input, an initializer or
        // an earlier node's output.
        let mut known: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        known.extend(g.initializer.iter().map(|t| t.name.as_str()));
        for n in &g.node {
            for i in &n.input {
                assert!(known.contains(i.as_str()), "{}: {} before it is made", path.display(), i);
            }
            known.extend(n.output.iter().map(String::as_str));
        }
        // Each constant once: the D passes of a MADE inverse share their weights.
        let mut seen = HashSet::new();
        for t in &g.initializer {
            assert!(
                seen.insert((t.data_type, t.dims.clone(), t.raw_data.clone())),
                "{}: {} twice",
                path.display(),
                t.name
            );
        }
        // A MADE layer is inverted in D passes of its conditioner.
        let kinds: Vec<_> = (0..m.n_layers()).map(|i| m.layer_info(i).unwrap().record.kind.name()).collect();
        if kinds.iter().any(|k| k.starts_with("made")) {
            let passes = g.node.iter().filter(|n| n.op_type == "Where").count();
            assert!(passes >= m.dim(), "{}: {passes} Where nodes", path.display());
        }
    }
}

#[test]
fn stored_requantization_words_export_the_same_graphs() {
    // A words file's multipliers are exactly the ones its scales gave: the
    // graphs (log p and sampler) are the same bytes.
    let mut rewritten = 0;
    for path in bundled() {
        let old = LoadedModel::read(&path).unwrap();
        let (new, n) = old.store_requant_words().unwrap();
        if n == 0 {
            continue;
        }
        rewritten += 1;
        let (a, b) = (old.model(), new.model());
        assert_eq!(
            floe_exporter::onnx::export_bytes(b, new.bytes()).unwrap(),
            floe_exporter::onnx::export_bytes(a, old.bytes()).unwrap(),
            "{}",
            path.display()
        );
        assert_eq!(
            floe_exporter::onnx::export_sampler_bytes(b, new.bytes()).unwrap(),
            floe_exporter::onnx::export_sampler_bytes(a, old.bytes()).unwrap(),
            "{}: sampler",
            path.display()
        );
    }
    assert!(rewritten >= 5, "{rewritten} int8 files");
}
