//! `cargo xtask assets`: regenerate the models and rows the firmware embeds.

use crate::boards::{firmware_dir, root};
use crate::host::aligned;
use crate::tools::{cargo, fail, step};

/// `cargo xtask assets`: regenerate `firmware/assets/` (trains the demo model,
/// freezes it in f32 and int8, keeps its first `ROWS` held-out rows; trains the
/// int8 stream model on the UCR series and writes its test series; the same for
/// a three-channel accelerometer stream (Daphnet); trains the
/// int8 shared-step trajectory model with zara1 held out and keeps three real
/// zara1 windows).
pub fn assets() {
    const ROWS: usize = 32;
    let out = root().join("target").join("firmware-assets");
    step(
        "demo (trains and freezes the model)",
        cargo()
            .current_dir(root())
            .args(["run", "-p", "floe-exporter", "--bin", "floe", "--", "demo", "--quiet", "--out"])
            .arg(&out),
    );
    let dir = firmware_dir().join("assets");
    step(
        "int8 model",
        cargo()
            .current_dir(root())
            .args(["run", "-p", "floe-exporter", "--bin", "floe", "--", "freeze", "--quantize", "int8", "--checkpoint"])
            .arg(out.join("checkpoint"))
            .arg("--out")
            .arg(dir.join("thyroid-int8.floe")),
    );
    // The stream models: small int8 window flows (2 × 16, K = 4, first
    // differences), each with its test series as raw f32 for the firmware.
    let stream = |what: &str, name: &str, window: &str, data: &[&str]| {
        step(
            what,
            cargo()
                .current_dir(root())
                .args(["run", "-p", "floe-exporter", "--bin", "floe", "--", "anomaly", "stream", "--quiet"])
                .args(data)
                .args(["--window", window, "--diff", "--quantize", "int8", "--hidden", "16", "--steps", "2"])
                .args(["--bins", "4", "--out"])
                .arg(dir.join(format!("{name}-int8.floe")))
                .arg("--series-out")
                .arg(dir.join(format!("{name}-test.f32"))),
        )
    };
    stream(
        "int8 stream model (UCR InternalBleeding16)",
        "ucr",
        "32",
        &[
            "--train",
            "data/streams/135_UCR_Anomaly_InternalBleeding16_TRAIN.csv",
            "--test",
            "data/streams/135_UCR_Anomaly_InternalBleeding16_TEST.csv",
        ],
    );
    stream(
        "int8 three-channel stream model (Daphnet S06R02E0 ankle accelerometer)",
        "daphnet",
        "16",
        &[
            "--train",
            "data/streams/Daphnet_S06R02E0.csv",
            "--train-range",
            "0..4000",
            "--test",
            "data/streams/Daphnet_S06R02E0.csv",
            "--test-range",
            "6000..7040",
            "--column",
            "ankle_horiz_fwd,ankle_vert,ankle_horiz_lateral",
        ],
    );
    step(
        "int8 trajectory model (ETH/UCY, zara1 held out) and real zara1 windows",
        cargo()
            .current_dir(root())
            .args(["run", "-p", "floe-exporter", "--bin", "floe", "--", "trajectory", "train"])
            .args(["--test-scene", "zara1", "--quantize", "int8", "--quiet", "--no-eval", "--windows", "3", "--out"])
            .arg(out.join("trajectory"))
            .arg("--windows-out")
            .arg(dir.join("traj-windows.f32")),
    );
    let traj = out.join("trajectory").join("traj-zara1-int8.floe");
    std::fs::copy(&traj, dir.join("traj-int8.floe")).unwrap_or_else(|e| fail(format!("{}: {e}", traj.display())));
    let model = std::fs::read(out.join("thyroid.floe")).unwrap_or_else(|e| fail(format!("demo model: {e}")));
    let rows = std::fs::read(out.join("thyroid-test.f32")).unwrap_or_else(|e| fail(format!("demo rows: {e}")));
    let words = aligned(&model);
    let m = floe_runtime::Model::load(&bytemuck::cast_slice::<u128, u8>(&words)[..model.len()])
        .unwrap_or_else(|e| fail(format!("demo model: {e:?}")));
    let width = 4 * (m.dim() + m.context_dim());
    let keep = rows.len().min(ROWS * width);
    std::fs::write(dir.join("thyroid.floe"), &model).unwrap_or_else(|e| fail(format!("write model: {e}")));
    std::fs::write(dir.join("thyroid.f32"), &rows[..keep]).unwrap_or_else(|e| fail(format!("write rows: {e}")));
    println!("wrote {} ({} bytes) and {} rows", dir.display(), model.len(), keep / width);
}
