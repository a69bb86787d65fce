//! The `floe` binary end to end: a small train -> freeze -> inspect -> eval ->
//! sample run, and clear one-line errors (never a backtrace) on bad input.

use std::path::PathBuf;
use std::process::Command;

fn floe(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_floe")).args(args).output().expect("run floe");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("floe-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_clean_error(ok: bool, err: &str, needle: &str) {
    assert!(!ok, "expected failure");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "not a clean error: {err}");
}

#[test]
fn train_freeze_inspect_eval_sample() {
    let d = tmp("e2e");
    // A real 2-D slice of the bundled ETH pedestrian data: positions x, y.
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/eth_ucy/biwi_eth.txt")).unwrap();
    let mut csv = String::from("x,y\n");
    for line in src.lines().take(1500) {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv.push_str(&format!("{},{}\n", f[2], f[3]));
    }
    let data = d.join("xy.csv");
    std::fs::write(&data, csv).unwrap();
    let ck = d.join("ck");
    let model = d.join("m.floe");
    let (ok, out, err) = floe(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        ck.to_str().unwrap(),
        "--epochs",
        "3",
        "--steps",
        "2",
        "--hidden",
        "8",
        "--quiet",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("test NLL"), "{out}");
    // A settings file: [data], [flow] and [train] tables, flags override.
    let settings = d.join("s.toml");
    std::fs::write(
        &settings,
        format!(
            "[data]\npath = {:?}\n[flow]\ntransform = \"maf\"\nsteps = 2\nhidden = 8\nbase = \"student-t\"\n[train]\nepochs = 2\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let ck2 = d.join("ck2");
    let (ok, out, err) =
        floe(&["train", "--config", settings.to_str().unwrap(), "--out", ck2.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{out}{err}");
    let meta = std::fs::read_to_string(ck2.join("meta.json")).unwrap();
    assert!(meta.contains("\"transform\": \"maf\"") && meta.contains("\"epochs\": 2"), "{meta}");
    std::fs::write(&settings, "[flow]\nbogus = 1\n").unwrap();
    let (ok, _, err) =
        floe(&["train", "--config", settings.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", "x"]);
    assert_clean_error(ok, &err, "unknown field");

    let (ok, out, err) = floe(&["freeze", "--checkpoint", ck.to_str().unwrap(), "--out", model.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("runtime reproduces Burn"), "{out}");
    let (ok, out, _) = floe(&["inspect", model.to_str().unwrap()]);
    assert!(ok && out.contains("spline_coupling") && out.contains("scratch"), "{out}");
    // Layers without a conditioner show their tensors' element type.
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/maf.floe");
    let (ok, out, _) = floe(&["inspect", seed]);
    let permute = out.lines().find(|l| l.contains(" permute ")).unwrap_or_default();
    assert!(ok && permute.ends_with(" u16"), "{out}");
    let lu = out.lines().find(|l| l.contains(" lu_linear ")).unwrap_or_default();
    assert!(lu.ends_with(" f32"), "{out}");
    // Quantized: int8 file, smaller, with the report and the bit-exact check.
    let q8 = d.join("m8.floe");
    let (ok, out, err) = floe(&[
        "freeze",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--quantize",
        "int8",
        "--calib",
        "200",
        "--out",
        q8.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("file bytes") && out.contains("bit-exact") && out.contains("int8"), "{out}");
    assert!(std::fs::metadata(&q8).unwrap().len() < std::fs::metadata(&model).unwrap().len());
    let (ok, out, err) = floe(&["eval", "--model", q8.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok && out.contains("nats/dim"), "{out}{err}");
    let (ok, _, err) = floe(&["freeze", "--checkpoint", ck.to_str().unwrap(), "--quantize", "int4", "--out", "x"]);
    assert_clean_error(ok, &err, "int4");
    let (ok, out, err) = floe(&["eval", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok && out.contains("nats/dim"), "{out}{err}");
    // Per-row output: every row's log-density, bit for bit the runtime's, and
    // its mean is the printed one.
    let per_row = d.join("lp.csv");
    let (ok, out, err) = floe(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        per_row.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let text = std::fs::read_to_string(&per_row).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("log_p"));
    let lp: Vec<f32> = lines.map(|l| l.parse().unwrap()).collect();
    assert_eq!(lp.len(), 1500);
    let bytes = floe_exporter::freeze::AlignedBytes::new(&std::fs::read(&model).unwrap());
    let m = floe_runtime::Model::load(&bytes).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    for (k, line) in src.lines().take(1500).enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let x = [f[2].parse::<f32>().unwrap(), f[3].parse::<f32>().unwrap()];
        let want = m.log_prob(&x, &[], &mut scratch).unwrap();
        assert_eq!(lp[k].to_bits(), want.to_bits(), "row {k}: {} vs {want}", lp[k]);
    }
    let mean = lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len() as f64;
    assert!(out.contains(&format!("mean log p      {mean:.4} nats")), "{out}");
    let samples = d.join("s.csv");
    let (ok, out, err) =
        floe(&["sample", "--model", model.to_str().unwrap(), "-n", "10", "--out", samples.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&samples).unwrap().lines().count(), 11);
    // Far more samples than the disk holds: refused up front with one line, no
    // abort, and the earlier file is untouched.
    let (ok, _, err) = floe(&[
        "sample",
        "--model",
        model.to_str().unwrap(),
        "-n",
        "99999999999999",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert_clean_error(ok, &err, "would write");
    assert_eq!(std::fs::read_to_string(&samples).unwrap().lines().count(), 11);
    let npy = d.join("s.npy");
    let (ok, out, err) =
        floe(&["sample", "--model", model.to_str().unwrap(), "-n", "40000", "--out", npy.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (shape, v) = floe_exporter::data::parse_npy(&std::fs::read(&npy).unwrap()).unwrap();
    assert_eq!(shape[0], 40_000, "three chunks of rows, one file");
    assert!(v.iter().all(|x| x.is_finite()));
    let png = d.join("p.png");
    let (ok, out, err) = floe(&["plot", "--checkpoint", ck.to_str().unwrap(), "--out", png.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);

    // Wrong dimensions for eval: a 3-column file for a 2-D model.
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "a,b,c\n1,2,3\n").unwrap();
    let (ok, _, err) = floe(&["eval", "--model", model.to_str().unwrap(), "--data", bad.to_str().unwrap()]);
    assert_clean_error(ok, &err, "the model needs 2");

    // A corrupt model file.
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let corrupt = d.join("corrupt.floe");
    std::fs::write(&corrupt, bytes).unwrap();
    let (ok, _, err) = floe(&["inspect", corrupt.to_str().unwrap()]);
    assert_clean_error(ok, &err, "CRC-32 mismatch");
}

#[test]
fn bad_input_gets_one_clear_error() {
    let d = tmp("bad");
    let (ok, _, err) = floe(&["train", "--data", "/nonexistent/x.csv", "--out", d.join("o").to_str().unwrap()]);
    assert_clean_error(ok, &err, "/nonexistent/x.csv");
    let nan = d.join("nan.csv");
    std::fs::write(&nan, "a,b\n1,2\n3,nan\n").unwrap();
    let (ok, _, err) = floe(&["train", "--data", nan.to_str().unwrap(), "--out", d.join("o").to_str().unwrap()]);
    assert_clean_error(ok, &err, "not a finite number");
    let (ok, _, err) = floe(&["train", "--data", nan.to_str().unwrap(), "--out", "x", "--transform", "nope"]);
    assert_clean_error(ok, &err, "invalid value 'nope'");
    let (ok, _, err) = floe(&["inspect", d.join("missing.floe").to_str().unwrap()]);
    assert_clean_error(ok, &err, "missing.floe");
    let junk = d.join("junk.floe");
    std::fs::write(&junk, b"definitely not a model").unwrap();
    let (ok, _, err) = floe(&["inspect", junk.to_str().unwrap()]);
    assert_clean_error(ok, &err, "bad magic");
    let (ok, _, err) = floe(&["repack", junk.to_str().unwrap(), "--out", d.join("r.floe").to_str().unwrap()]);
    assert_clean_error(ok, &err, "bad magic");
    let m8 = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid-int8.floe");
    let (ok, _, err) = floe(&["repack", m8, "--out", "x.floe", "--int8-layout", "diagonal"]);
    assert_clean_error(ok, &err, "invalid value 'diagonal'");
    let (ok, _, err) = floe(&["frobnicate"]);
    assert_clean_error(ok, &err, "unrecognized subcommand");
    // A negative number after a flag is the flag's value, and the range check
    // answers (clap would read `-1` as a flag).
    let good = d.join("good.csv");
    let rows: String = (0..40).map(|i| format!("{},{}\n", i % 7, (i * i) % 11)).collect();
    std::fs::write(&good, format!("a,b\n{rows}")).unwrap();
    let (ok, _, err) = floe(&["train", "--data", good.to_str().unwrap(), "--out", "x", "--tail-bound", "-1"]);
    assert_clean_error(ok, &err, "tail_bound");
    // A label no row has is named.
    let bw = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/adbench/4_breastw.npz");
    let (ok, _, err) = floe(&["anomaly", "fit", "--data", bw, "--normal-label", "3", "--out", "x.floe"]);
    assert_clean_error(ok, &err, "no rows with label 3");
    // A data path that is not UTF-8 is refused before training (the checkpoint
    // records it as text), and no checkpoint is left behind.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = d.join(std::ffi::OsStr::from_bytes(b"odd\xffname.csv"));
        std::fs::write(&odd, "a,b\n1,2\n3,4\n5,6\n7,8\n9,1\n").unwrap();
        let ck = d.join("odd-ck");
        let out = Command::new(env!("CARGO_BIN_EXE_floe"))
            .arg("train")
            .arg("--data")
            .arg(&odd)
            .arg("--out")
            .arg(&ck)
            .output()
            .expect("run floe");
        assert_clean_error(out.status.success(), &String::from_utf8_lossy(&out.stderr), "UTF-8 path");
        assert!(!ck.exists(), "a checkpoint was written");
    }
    // An output folder that does not exist is named as the user wrote it.
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid.floe");
    let (ok, _, err) = floe(&["sample", "--model", model, "-n", "3", "--out", "/nonexistent/dir/s.csv"]);
    assert_clean_error(ok, &err, "/nonexistent/dir/s.csv: No such file");
}

#[test]
fn anomaly_fit_and_stream_end_to_end() {
    let d = tmp("anomaly");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let model = d.join("bw.floe");
    // breastw: the smallest bundled ADBench set (683 rows x 9), labelled.
    let data = format!("{root}/data/adbench/4_breastw.npz");
    let (ok, out, err) = floe(&[
        "anomaly",
        "fit",
        "--data",
        &data,
        "--fpr",
        "0.05",
        "--quantize",
        "int8",
        "--epochs",
        "5",
        "--hidden",
        "16",
        "--steps",
        "2",
        "--quiet",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("threshold") && out.contains("AUROC") && out.contains("flow quantized"), "{out}");
    let auroc: f64 = out
        .lines()
        .find(|l| l.contains("flow quantized"))
        .and_then(|l| l.split("AUROC ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("an AUROC figure");
    assert!(auroc > 0.8, "breastw is easy; AUROC {auroc}");
    let buf = floe_exporter::freeze::AlignedBytes::new(&std::fs::read(&model).unwrap());
    let m = floe_runtime::Model::load(&buf).unwrap();
    let t = m.anomaly_threshold().expect("threshold stored");
    assert!(t.threshold.is_finite() && (t.target_fpr - 0.05).abs() < 1e-6);
    // The detector flow: couplings with a random permutation between them, no
    // ActNorm or LU layers.
    use floe_runtime::format::LayerKind;
    let kinds = |m: &floe_runtime::Model| -> Vec<LayerKind> {
        (0..m.n_layers()).map(|i| m.layer_info(i).unwrap().record.kind).collect()
    };
    assert_eq!(kinds(&m), [LayerKind::SplineCoupling, LayerKind::Permute, LayerKind::SplineCoupling]);
    // The achieved false-alarm rate on the held-out normal rows (178 of them)
    // is the target's within three binomial standard errors.
    let test_fpr: f64 = out
        .lines()
        .find(|l| l.contains("flow quantized"))
        .and_then(|l| l.split("test false-alarm rate ").nth(1))
        .and_then(|s| s.trim_end_matches(')').trim().parse().ok())
        .expect("a test false-alarm rate");
    let se = (0.05f64 * 0.95 / 178.0).sqrt();
    assert!((test_fpr - 0.05).abs() <= 3.0 * se, "false-alarm rate {test_fpr} for a target of 0.05");
    // On the device API: every row's verdict is `score > threshold`, and both
    // verdicts occur (normal rows are `Some(false)`, most anomalies `Some(true)`).
    let spec = floe_exporter::data::DataSpec::file(std::path::Path::new(&data));
    let table = floe_exporter::data::load(&spec).expect("breastw");
    let labels = table.labels.clone().expect("labels");
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let (mut normal_ok, mut caught) = (0, 0);
    for (row, label) in table.x.chunks_exact(table.d).zip(&labels) {
        let s = m.score(row, &[], &mut scratch).expect("score");
        assert_eq!(s.anomaly, Some(s.nats > t.threshold), "the verdict is the threshold's");
        match (label, s.anomaly) {
            (0, Some(false)) => normal_ok += 1,
            (l, Some(true)) if *l != 0 => caught += 1,
            _ => {}
        }
    }
    let n_normal = labels.iter().filter(|&&l| l == 0).count();
    assert!(normal_ok as f64 >= 0.9 * n_normal as f64, "{normal_ok} of {n_normal} normal rows pass");
    assert!(caught as f64 >= 0.8 * (labels.len() - n_normal) as f64, "{caught} anomalies caught");

    // The stream case, small and quick: a window model over the UCR series.
    let train = format!("{root}/data/streams/135_UCR_Anomaly_InternalBleeding16_TRAIN.csv");
    let test = format!("{root}/data/streams/135_UCR_Anomaly_InternalBleeding16_TEST.csv");
    let sm = d.join("s.floe");
    let scores = d.join("s.csv");
    let (ok, out, err) = floe(&[
        "anomaly",
        "stream",
        "--scores-out",
        scores.to_str().unwrap(),
        "--train",
        &train,
        "--test",
        &test,
        "--window",
        "16",
        "--diff",
        "--epochs",
        "5",
        "--hidden",
        "8",
        "--steps",
        "2",
        "--bins",
        "4",
        "--quiet",
        "--out",
        sm.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("top score") && out.contains("labelled anomaly samples 4187–4198"), "{out}");
    // The top-scoring window falls on the labelled anomaly (measured: sample
    // 4202, 4 samples from the region).
    assert!(out.contains("top score HIT"), "the top window misses the labelled anomaly: {out}");
    let buf = floe_exporter::freeze::AlignedBytes::new(&std::fs::read(&sm).unwrap());
    let m = floe_runtime::Model::load(&buf).unwrap();
    assert_eq!(m.stream_layout().map(|l| (l.window, l.channels, l.differences)), Some((16, 1, true)));
    // The file carries the alarm rule the report names, chosen on normal windows
    // (m = the window), and the written scores follow it: stepping the runtime's
    // AlarmState over the `above` column gives the `alarm` and `raised` columns.
    let rule = m.alarm_rule().expect("a stream model carries an alarm rule");
    assert_eq!(rule.window, 16);
    assert!(rule.is_valid());
    let line = format!(
        "on when {} of the last 16 windows are above the threshold, off when at most {} are",
        rule.raise, rule.clear
    );
    assert!(out.contains(&line), "{out}");
    let csv = std::fs::read_to_string(&scores).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("t,nats,above,alarm,raised"));
    let mut state = floe_runtime::AlarmState::new();
    let (mut n, mut raised, mut runs, mut prev) = (0, 0, 0, false);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let above = f[2] == "1";
        let a = state.step(rule, above);
        assert_eq!((f[3] == "1", f[4] == "1"), (a.active, a.raised), "{l}");
        raised += usize::from(a.raised);
        runs += usize::from(above && !prev);
        prev = above;
        n += 1;
    }
    assert_eq!(n, 7501 - 15);
    assert!(raised >= 1 && raised <= runs, "{raised} alarms raised, {runs} runs of windows above the threshold");
    // A stream keeps the general flow (LU layers) its figures were measured with.
    assert!(kinds(&m).contains(&LayerKind::LuLinear), "{:?}", kinds(&m));

    // Without --steps: 5 coupling steps for a tabular detector, 4 for a stream.
    let couplings = |file: &std::path::Path| {
        let buf = floe_exporter::freeze::AlignedBytes::new(&std::fs::read(file).unwrap());
        let m = floe_runtime::Model::load(&buf).unwrap();
        let k = kinds(&m);
        (k.iter().filter(|&&k| k == LayerKind::SplineCoupling).count(), k.contains(&LayerKind::LuLinear))
    };
    let small = ["--epochs", "1", "--hidden", "8", "--bins", "4", "--quiet", "--out"];
    let def = d.join("default.floe");
    let (ok, out, err) = floe(&[&["anomaly", "fit", "--data", &data][..], &small, &[def.to_str().unwrap()]].concat());
    assert!(ok, "{out}{err}");
    assert_eq!(couplings(&def), (5, false));
    let (ok, out, err) = floe(
        &[
            &["anomaly", "stream", "--train", &train, "--test", &test, "--window", "16", "--diff"][..],
            &small,
            &[def.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(couplings(&def), (4, true));

    // Bad input: one clear line each.
    let (ok, _, err) = floe(&["anomaly", "fit", "--data", &data, "--fpr", "1.5", "--out", "x.floe"]);
    assert_clean_error(ok, &err, "--fpr must be in (0, 1)");
    let (ok, _, err) = floe(&["anomaly", "fit", "--data", &data, "--lr-drops", "9", "--out", "x.floe"]);
    assert_clean_error(ok, &err, "--lr-drops");
    let unlabelled = d.join("u.csv");
    std::fs::write(&unlabelled, "a,b\n1,2\n3,4\n5,6\n").unwrap();
    let (ok, _, err) = floe(&["anomaly", "fit", "--data", unlabelled.to_str().unwrap(), "--out", "x.floe"]);
    assert_clean_error(ok, &err, "needs labels");
    let (ok, _, err) =
        floe(&["anomaly", "stream", "--train", &train, "--test", &test, "--column", "nope", "--out", "x"]);
    assert_clean_error(ok, &err, "nope");
    for (rule, says) in [("4,5,0", "k <= m"), ("4,2,2", "j < k"), ("40,2,0", "m <= 32"), ("4,2", "three counts")] {
        let (ok, _, err) =
            floe(&["anomaly", "stream", "--train", &train, "--test", &test, "--alarm", rule, "--out", "x"]);
        assert_clean_error(ok, &err, says);
    }
}

/// The `--select` report's candidate lines: `(name, NLL, chosen)`; `None` for
/// one the budget never started.
fn selection_lines(out: &str) -> Vec<(String, Option<f64>, bool)> {
    out.lines()
        .filter(|l| l.contains(" epochs, ") || l.contains("not started"))
        .map(|l| {
            let name = l[..38.min(l.len())].trim().to_owned();
            let nll = l[38.min(l.len())..].split_whitespace().next().and_then(|v| v.parse::<f64>().ok());
            (name, nll, l.contains("<- chosen"))
        })
        .collect()
}

#[test]
fn anomaly_select_keeps_the_flow_most_likely_on_held_out_normal_rows() {
    let d = tmp("select");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/adbench/4_breastw.npz");
    let out_file = d.join("sel.floe");
    let fit = |budget: &str| {
        floe(&[
            "anomaly",
            "fit",
            "--data",
            data,
            "--select",
            "--budget",
            budget,
            "--epochs",
            "3",
            "--quiet",
            "--out",
            out_file.to_str().unwrap(),
        ])
    };
    let (ok, out, err) = fit("900");
    assert!(ok, "{out}{err}");
    let lines = selection_lines(&out);
    assert_eq!(lines.len(), 7, "{out}");
    assert!(lines.iter().any(|(name, ..)| name == "gmm-4 full (linear + full mixture)"), "{out}");
    assert!(lines.iter().all(|(_, nll, _)| nll.is_some()), "every candidate trains within 900 s: {out}");
    let chosen: Vec<_> = lines.iter().filter(|l| l.2).collect();
    assert_eq!(chosen.len(), 1, "{out}");
    let best = lines.iter().filter_map(|l| l.1).fold(f64::INFINITY, f64::min);
    assert_eq!(chosen[0].1, Some(best), "the chosen flow has the lowest held-out NLL: {out}");
    let buf = floe_exporter::freeze::AlignedBytes::new(&std::fs::read(&out_file).unwrap());
    assert!(floe_runtime::Model::load(&buf).unwrap().anomaly_threshold().is_some());
    // A budget spent by the first candidate: it is the choice, the rest never start.
    let (ok, out, err) = fit("0.001");
    assert!(ok, "{out}{err}");
    let lines = selection_lines(&out);
    assert_eq!(lines.len(), 7, "{out}");
    assert!(lines[0].1.is_some() && lines[0].2, "{out}");
    assert!(lines[1..].iter().all(|l| l.1.is_none() && !l.2), "{out}");
    // Bad input.
    let (ok, _, err) = fit("0");
    assert_clean_error(ok, &err, "seconds > 0");
    let (ok, _, err) = fit("nan");
    assert_clean_error(ok, &err, "seconds > 0");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let train = format!("{root}/data/streams/135_UCR_Anomaly_InternalBleeding16_TRAIN.csv");
    let test = format!("{root}/data/streams/135_UCR_Anomaly_InternalBleeding16_TEST.csv");
    let (ok, _, err) = floe(&["anomaly", "stream", "--train", &train, "--test", &test, "--select", "--out", "x"]);
    assert_clean_error(ok, &err, "--select");
    let (ok, _, err) = floe(&["anomaly", "fit", "--data", data, "--budget", "5", "--out", "x"]);
    assert_clean_error(ok, &err, "--select");
    let (ok, _, err) =
        floe(&["anomaly", "stream", "--train", &train, "--test", &test, "--test-range", "0..99999", "--out", "x"]);
    assert_clean_error(ok, &err, "--test-range must be inside the series");
}

#[test]
fn trajectory_commands_reject_bad_input_cleanly() {
    let d = tmp("traj");
    let (ok, _, err) = floe(&["trajectory", "train", "--test-scene", "univ", "--out", d.to_str().unwrap()]);
    assert_clean_error(ok, &err, "one of eth, hotel, zara1, zara2");
    let (ok, _, err) = floe(&["trajectory", "train", "--test-scene", "eth", "--data-dir", d.to_str().unwrap()]);
    assert_clean_error(ok, &err, "biwi_eth.txt");
    let (ok, _, err) = floe(&["trajectory", "train", "--test-scene", "eth", "--epochs", "0"]);
    assert_clean_error(ok, &err, "--epochs");
    // A scene file with a malformed line names the line.
    std::fs::write(d.join("biwi_eth.txt"), "0 1 2.0 3.0\n10 1 2.5 x\n").unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/traj-int8.floe");
    let (ok, _, err) =
        floe(&["trajectory", "eval", "--model", model, "--test-scene", "eth", "--data-dir", d.to_str().unwrap()]);
    assert_clean_error(ok, &err, "line 2");
    // A model that is not a trajectory model.
    let thyroid = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid.floe");
    let (ok, _, err) = floe(&["trajectory", "eval", "--model", thyroid, "--test-scene", "zara1"]);
    assert_clean_error(ok, &err, "not a trajectory model");
    let real = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/eth_ucy");
    let (ok, _, err) =
        floe(&["trajectory", "plot", "--model", model, "--test-scene", "zara1", "--data-dir", real, "--steps", "13"]);
    assert_clean_error(ok, &err, "--steps");
    // And a real one draws (the next step's exact density keeps it short).
    let (ok, out, err) = floe(&[
        "trajectory",
        "plot",
        "--model",
        model,
        "--test-scene",
        "zara1",
        "--data-dir",
        real,
        "--steps",
        "1",
        "--out",
        d.join("p.png").to_str().unwrap(),
    ]);
    assert!(ok && d.join("p.png").exists(), "{out}{err}");
}

#[test]
fn anomaly_bench_takes_any_folder_and_reports_the_held_out_nll() {
    let d = tmp("bench");
    let (ok, _, err) = floe(&["anomaly", "bench", "--dir", d.to_str().unwrap(), "--seeds", "1"]);
    assert_clean_error(ok, &err, "a folder with .npz files");
    // A user's own labelled set (here breastw under another name) and a file
    // that is not an .npz, which is skipped.
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/adbench/4_breastw.npz");
    std::fs::copy(src, d.join("my_set.npz")).unwrap();
    std::fs::write(d.join("notes.txt"), "not data").unwrap();
    let (ok, out, err) = floe(&[
        "anomaly",
        "bench",
        "--dir",
        d.to_str().unwrap(),
        "--seeds",
        "1",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--steps",
        "1",
        "--quiet",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("held-out normal NLL"), "{out}");
    let row = out.lines().find(|l| l.starts_with("| my_set | 683 x 9 |")).unwrap_or_else(|| panic!("{out}"));
    // One set evaluated: the .npz, not the text file.
    let sets = out.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| set ")).count();
    assert_eq!(sets, 1, "{out}");
    // The summary over the folder's sets: the one set's means.
    let flow: f64 = row.split('|').nth(3).unwrap().trim().split('±').next().unwrap().parse().unwrap();
    let mean = out.lines().find(|l| l.starts_with("mean AUROC over 1 set:")).unwrap_or_else(|| panic!("{out}"));
    let listed: f64 = mean.split("flow f32 ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    // The table rounds to 3 decimals, the summary to 4.
    assert!((listed - flow).abs() <= 6e-4, "{mean} vs {row}");
    assert!(mean.contains("worst set: my_set ("), "{mean}");
    let nll: Vec<f64> = row
        .rsplit('|')
        .nth(1)
        .unwrap()
        .split('/')
        .map(|s| s.trim().split('±').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nll.len(), 2, "{row}");
    assert!(nll.iter().all(|v| v.is_finite()), "{row}");
}

#[test]
fn import_writes_a_checked_model_and_refuses_bad_input() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interop");
    let st = fixtures.join("zuko_maf.safetensors");
    let out = tmp("import").join("imported.floe");
    let (ok, stdout, err) = floe(&["import", "zuko", st.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("wrote") && stdout.contains("parity"), "{stdout}");
    // The file is an ordinary model: inspect and sample read it.
    let (ok, stdout, err) = floe(&["inspect", out.to_str().unwrap()]);
    assert!(ok && stdout.contains("made_affine"), "{stdout}{err}");
    // Bad input: a missing file, the other library's flow, a bad --flow value,
    // a pickle without its settings.
    let (ok, _, err) = floe(&["import", "zuko", "missing.safetensors"]);
    assert_clean_error(ok, &err, "missing.safetensors");
    let (ok, _, err) = floe(&["import", "nflows", st.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_clean_error(ok, &err, "zuko");
    let (ok, _, err) = floe(&["import", "zuko", st.to_str().unwrap(), "--flow", "bpf"]);
    assert_clean_error(ok, &err, "bpf");
    let pt = fixtures.join("nflows_nsf.pt");
    let (ok, _, err) = floe(&["import", "nflows", pt.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_clean_error(ok, &err, "--flow");
}

#[test]
fn stream_column_all_takes_every_numeric_column() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let series = format!("{root}/data/streams/Daphnet_S06R02E0.csv");
    let model = tmp("all-columns").join("all.floe");
    let (ok, out, err) = floe(&[
        "anomaly",
        "stream",
        "--train",
        &series,
        "--train-range",
        "0..600",
        "--test",
        &series,
        "--test-range",
        "600..700",
        "--column",
        "all",
        "--window",
        "4",
        "--diff",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--steps",
        "1",
        "--bins",
        "4",
        "--quiet",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    // The nine sensor axes: not the timestamp, not the label.
    assert!(out.contains("--column all: 9 channels (ankle_horiz_fwd,"), "{out}");
    assert!(
        out.contains("trunk_horiz_lateral)") && !out.contains("timestamp") && !out.contains("is_anomaly)"),
        "{out}"
    );
    let (ok, info, err) = floe(&["inspect", model.to_str().unwrap()]);
    assert!(ok, "{err}");
    // 9 channels × 3 first differences of a 4-sample window.
    assert!(info.contains("window 4 x 9 channel(s), first differences"), "{info}");
    assert!(info.lines().any(|l| l.split_whitespace().eq(["dim", "27"])), "{info}");
}

#[test]
fn repack_writes_row_pairs_and_back_to_the_same_bytes() {
    let d = tmp("repack");
    let m8 = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/thyroid-int8.floe");
    let (pairs, rows) = (d.join("pairs.floe"), d.join("rows.floe"));
    let keep = ["--requant-words", "keep"];
    let (ok, out, err) = floe(&[&["repack", m8, "--out", pairs.to_str().unwrap()][..], &keep].concat());
    assert!(ok, "{err}");
    assert!(out.contains("4 int8 layer(s) rewritten into the row-pair layout, 0 given requantization words"), "{out}");
    let back =
        [&["repack", pairs.to_str().unwrap(), "--out", rows.to_str().unwrap(), "--int8-layout", "rows"][..], &keep];
    let (ok, out, err) = floe(&back.concat());
    assert!(ok, "{err}");
    assert!(out.contains("4 int8 layer(s) rewritten into row-major order"), "{out}");
    let original = std::fs::read(m8).unwrap();
    assert_eq!(std::fs::read(&rows).unwrap(), original, "back to the original bytes");
    assert_ne!(std::fs::read(&pairs).unwrap(), original);
    // By default the requantization words are stored too: a longer file (two
    // bytes more per hidden unit, and alignment), and a second pass has nothing to do.
    let words = d.join("words.floe");
    let (ok, out, err) = floe(&["repack", m8, "--out", words.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("4 int8 layer(s) rewritten into the row-pair layout, 4 given requantization words"), "{out}");
    assert!(out.contains("identical bit for bit"), "{out}");
    let grown = std::fs::read(&words).unwrap().len() - original.len();
    assert!((1024..1024 + 16 * 4).contains(&grown), "{grown} bytes more");
    let (ok, out, err) = floe(&["repack", words.to_str().unwrap(), "--out", words.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("0 int8 layer(s) rewritten into the row-pair layout, 0 given requantization words"), "{out}");
    assert!(out.contains("nothing to rewrite"), "{out}");
}
