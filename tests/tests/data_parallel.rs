//! Data-parallel training on two CPU devices gives the one-device result.
//!
//! In its own test binary, so its own process: run in one process after the GPU
//! path's training test (tests/all/gpu.rs), the one- and two-device runs here
//! differed by 2.4e-2 to 5.7e-2 nats/dim — some state that training leaves in
//! the process (Burn's or ours; not found yet) changes CPU training after it.
//! Alone they agree to 7.6e-8.

use floe_exporter::train::cpu;

#[test]
fn two_cpu_devices_give_the_one_device_result() {
    let data = floe_exporter::demo::demo_data().expect("bundled data");
    let mut e = floe_exporter::demo::experiment(&data, 3, 0);
    e.train.dequantize = false;
    let dir = |name: &str| {
        let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let one = e.run(&cpu(), &dir("dp-one"), false).expect("one device");
    let two = e.run_on(&[cpu(), cpu()], &dir("dp-two"), false).expect("two devices");
    let (h1, h2) = (&one.checkpoint.history, &two.checkpoint.history);
    let gap = h1
        .train_nll
        .iter()
        .zip(&h2.train_nll)
        .chain(h1.val_nll.iter().zip(&h2.val_nll))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert_eq!(h1.train_nll.len(), h2.train_nll.len());
    eprintln!("cpu vs cpu,cpu: largest per-epoch NLL gap {gap:.2e} nats/dim");
    assert!(gap <= 1e-3, "two CPU devices differ from one by {gap:e} nats/dim");
    assert!((one.test_nll - two.test_nll).abs() <= 1e-3, "{} vs {}", one.test_nll, two.test_nll);
}
