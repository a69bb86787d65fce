//! `cargo xtask onnx`: `floe export onnx` checked by ONNX Runtime.
//!
//! Every bundled model (the files `firmware/assets/*.txt` list — the demo
//! models, the stream models, the trajectory model — and every fuzz seed:
//! every transform, base and conditioner precision, with and without a
//! context) is
//! exported with the `floe` CLI; rows are drawn from each model with the
//! runtime's seeded sampler (a quarter of them pushed three times further from
//! the mean, past the splines' bounds), plus the bundled real rows where there
//! are some; the runtime's `log_prob` of each row is the reference. A Python
//! virtual environment under `target/onnx/` (ONNX Runtime from the package
//! registry) evaluates the graphs (`xtask/onnx/check.py`), and the run fails
//! if a row differs from the runtime by more than `1e-4 + 1e-6·|log p|` nats
//! (the freeze rule), or, for the trajectory model (peaked splines feeding
//! int8 conditioners: see the script), if its median row does or any row
//! differs by more than 1 nat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use floe_runtime::{Model, Rng};

use crate::boards::{firmware_dir, root};
use crate::host::aligned;
use crate::tools::{cargo, fail, step};

/// ONNX Runtime's version, pinned: the check's figures are for this one.
const ORT: &str = "onnxruntime==1.32.0";
/// Sampled rows per model.
const ROWS: usize = 256;

/// `name → (model file, real rows file)` from the asset lists, each file once.
fn bundled() -> BTreeMap<String, (PathBuf, Option<PathBuf>)> {
    let dir = firmware_dir().join("assets");
    let mut out: BTreeMap<String, (PathBuf, Option<PathBuf>)> = BTreeMap::new();
    for list in ["models.txt", "streams.txt", "trajectories.txt", "bounds.txt"] {
        let p = dir.join(list);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())));
        for line in text.lines() {
            let f: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
            let (name, model, rows) = match f.as_slice() {
                [] => continue,
                [n, m] => (*n, *m, None),
                [n, m, r] => (*n, *m, Some(*r)),
                _ => fail(format!("{}: bad line {line:?}", p.display())),
            };
            let model = dir.join(model);
            if out.values().any(|(m, _)| *m == model) {
                continue;
            }
            // Real rows only where they are rows of the model (models.txt).
            let rows = rows.filter(|_| list == "models.txt").map(|r| dir.join(r));
            out.insert(name.to_owned(), (model, rows));
        }
    }
    // The fuzz seeds the lists leave out (the mixture base's).
    let seeds = root().join("fuzz").join("seeds");
    let mut extra: Vec<PathBuf> = std::fs::read_dir(&seeds)
        .unwrap_or_else(|e| fail(format!("{}: {e}", seeds.display())))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "floe"))
        .collect();
    extra.sort();
    for p in extra {
        let known = out.values().any(|(m, _)| std::fs::canonicalize(m).ok() == std::fs::canonicalize(&p).ok());
        if !known {
            let name = p.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            out.insert(name, (p, None));
        }
    }
    out
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
}

/// The freeze's allowance for a row's own f32 conditioning
/// (`floe_exporter::freeze::parity`): (layers + 1) × the largest change of the
/// runtime's log p when one input coordinate moves by one f32 step (the larger
/// of its ulp and ε·std).
fn allowance(model: &Model<'_>, x: &[f32], ctx: &[f32], scratch: &mut [f32]) -> f32 {
    let mut y = vec![0.0f32; x.len()];
    let s = floe_runtime::exporter_hooks::ulp_sensitivity(model, x, ctx, &mut y, scratch).unwrap_or(0.0);
    ((model.n_layers() + 1) as f64 * s) as f32
}

/// The sampler's reference for the check rows `xs` (contexts `cs`): each row's
/// base point `z` (the runtime's forward), the runtime's inverse of it, and the
/// row's allowance in standardized units: (layers + 1) × the largest change of
/// any coordinate of that inverse (divided by its std) when one coordinate of z
/// moves by one f32 step.
fn sampler_reference(model: &Model<'_>, xs: &[f32], cs: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, c) = (model.dim(), model.context_dim());
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let (mut zs, mut xinv, mut allow) = (Vec::new(), Vec::new(), Vec::new());
    let (mut z, mut x, mut y, mut zz) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
    let k = (model.n_layers() + 1) as f32;
    for (i, row) in xs.chunks_exact(d).enumerate() {
        let ctx = &cs[i * c..(i + 1) * c];
        model.forward(row, ctx, &mut z, &mut scratch).unwrap_or_else(|e| fail(format!("runtime forward: {e:?}")));
        model.inverse(&z, ctx, &mut x, &mut scratch).unwrap_or_else(|e| fail(format!("runtime inverse: {e:?}")));
        let mut worst = 0.0f32;
        for j in 0..d {
            let step = (z[j].abs() * f32::EPSILON).max(f32::EPSILON);
            for sign in [-1.0f32, 1.0] {
                zz.copy_from_slice(&z);
                zz[j] += sign * step;
                if model.inverse(&zz, ctx, &mut y, &mut scratch).is_ok() {
                    for ((a, b), s) in x.iter().zip(&y).zip(model.standardization().1) {
                        if (a - b).is_finite() {
                            worst = worst.max((a - b).abs() / s);
                        }
                    }
                }
            }
        }
        zs.extend_from_slice(&z);
        xinv.extend_from_slice(&x);
        allow.push(k * worst);
    }
    (zs, xinv, allow)
}

/// Rows, contexts, the runtime's log-densities and each row's [`allowance`] for
/// one model.
fn reference(model: &Model<'_>, real: Option<&[u8]>) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, c) = (model.dim(), model.context_dim());
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut rng = Rng::new(0x4F4E_4E58);
    let (mean, _) = model.standardization();
    let (cmean, cstd) = model.context_standardization();
    let (mut xs, mut cs, mut lps, mut allow) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut push = |x: &[f32], ctx: &[f32], scratch: &mut [f32]| {
        let lp = model.log_prob(x, ctx, scratch).unwrap_or_else(|e| fail(format!("runtime log_prob: {e:?}")));
        xs.extend_from_slice(x);
        cs.extend_from_slice(ctx);
        lps.push(lp);
        allow.push(allowance(model, x, ctx, scratch));
    };
    if let Some(real) = real {
        let v: Vec<f32> = real.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        for row in v.chunks_exact(d + c) {
            push(&row[..d], &row[d..], &mut scratch);
        }
    }
    let mut x = vec![0.0f32; d];
    let mut ctx = vec![0.0f32; c];
    for k in 0..ROWS {
        for ((o, &m), &s) in ctx.iter_mut().zip(cmean).zip(cstd) {
            *o = m + s * rng.normal();
        }
        model.sample(&mut rng, &ctx, &mut x, &mut scratch).unwrap_or_else(|e| fail(format!("runtime sample: {e:?}")));
        if k % 4 == 3 {
            for (v, &m) in x.iter_mut().zip(mean) {
                *v = m + 3.0 * (*v - m);
            }
        }
        push(&x, &ctx, &mut scratch);
    }
    (xs, cs, lps, allow)
}

/// The virtual environment's python, with ONNX Runtime installed.
fn python() -> PathBuf {
    crate::tools::venv("onnx", "onnxruntime, numpy", &[ORT, "numpy"])
}

/// `cargo xtask onnx`.
pub fn onnx() {
    let out = root().join("target").join("onnx");
    std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    let models = bundled();
    let mut manifest = String::new();
    for (name, (path, rows)) in &models {
        let onnx = out.join(format!("{name}.onnx"));
        step(
            &format!("floe export onnx {}", path.display()),
            cargo()
                .current_dir(root())
                .args(["run", "-q", "-p", "floe-exporter", "--bin", "floe", "--", "export", "onnx"])
                .arg(path)
                .arg("--out")
                .arg(&onnx),
        );
        let bytes = std::fs::read(path).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
        let words = aligned(&bytes);
        let model = Model::load(&bytemuck::cast_slice::<u128, u8>(&words)[..bytes.len()])
            .unwrap_or_else(|e| fail(format!("{}: {e:?}", path.display())));
        let real = rows.as_ref().map(|r| std::fs::read(r).unwrap_or_else(|e| fail(format!("{}: {e}", r.display()))));
        let (xs, cs, lps, allow) = reference(&model, real.as_deref());
        write_f32(&out.join(format!("{name}.x.f32")), &xs);
        write_f32(&out.join(format!("{name}.context.f32")), &cs);
        write_f32(&out.join(format!("{name}.logp.f32")), &lps);
        write_f32(&out.join(format!("{name}.allow.f32")), &allow);
        let sampler = out.join(format!("{name}.sampler.onnx"));
        step(
            &format!("floe export onnx --sampler {}", path.display()),
            cargo()
                .current_dir(root())
                .args(["run", "-q", "-p", "floe-exporter", "--bin", "floe", "--", "export", "onnx", "--sampler"])
                .arg(path)
                .arg("--out")
                .arg(&sampler),
        );
        let (zs, xinv, xallow) = sampler_reference(&model, &xs, &cs);
        write_f32(&out.join(format!("{name}.z.f32")), &zs);
        write_f32(&out.join(format!("{name}.xinv.f32")), &xinv);
        write_f32(&out.join(format!("{name}.xallow.f32")), &xallow);
        write_f32(&out.join(format!("{name}.xstd.f32")), model.standardization().1);
        write_f32(&out.join(format!("{name}.xmean.f32")), model.standardization().0);
        let trajectory = u8::from(model.trajectory_layout().is_some());
        manifest.push_str(&format!("{name} {} {} {} {trajectory}\n", model.dim(), model.context_dim(), lps.len()));
    }
    let list = out.join("manifest.txt");
    std::fs::write(&list, manifest).unwrap_or_else(|e| fail(format!("{}: {e}", list.display())));
    let python = python();
    step(
        &format!("ONNX Runtime ({ORT}) against the runtime on {} bundled models", models.len()),
        Command::new(python).arg(root().join("xtask").join("onnx").join("check.py")).arg(&out),
    );
}
