//! The tools the firmware checks need, installed when missing, and running commands.

use std::path::PathBuf;
use std::process::{exit, Command, Stdio};

use crate::boards::root;

/// Print `msg` and exit with status 1.
pub fn fail(msg: impl std::fmt::Display) -> ! {
    // Under `cargo test` a failure panics, so a test can expect it.
    if cfg!(test) {
        panic!("xtask: {msg}");
    }
    eprintln!("xtask: {msg}");
    exit(1)
}

/// The cargo that runs this xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Whether `cmd arg` runs and succeeds.
pub fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Run `cmd` as the step `what`; exit on failure.
pub fn step(what: &str, cmd: &mut Command) {
    eprintln!("\n== xtask: {what}\n   {cmd:?}");
    let start = std::time::Instant::now();
    let status = cmd.status().unwrap_or_else(|e| fail(format!("cannot start {cmd:?}: {e}")));
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        fail(format!("{what} failed ({status}) after {secs:.0} s"));
    }
    eprintln!("== xtask: {what}: ok in {secs:.0} s");
}

/// Add rustup targets (when rustup is there).
pub fn add_targets(targets: &[&str]) {
    if have("rustup", "--version") {
        step("install targets", Command::new("rustup").args(["target", "add"]).args(targets));
    }
}

/// Install what the firmware checks need when it is missing: the rustup targets,
/// QEMU (apt) and defmt-print (cargo install).
pub fn install_tools(targets: &[&str]) {
    add_targets(targets);
    let mut packages = Vec::new();
    if !have("qemu-system-arm", "--version") {
        packages.push("qemu-system-arm");
    }
    if !have("qemu-system-riscv32", "--version") {
        packages.push("qemu-system-misc");
    }
    apt_install("install QEMU", &packages);
    if !have(&defmt_print(), "--version") {
        // Into the repository's target/ so it is found whatever PATH holds.
        step(
            "install defmt-print",
            cargo().args(["install", "defmt-print", "--locked", "--version", "1.2.0", "--root"]).arg(tools_root()),
        );
    }
}

/// Install Debian packages with apt-get (through sudo when not root); nothing
/// when `packages` is empty.
pub fn apt_install(what: &str, packages: &[&str]) {
    if packages.is_empty() {
        return;
    }
    // `--no-install-recommends`: QEMU's recommended block modules conflict with
    // a newer qemu-utils on some Debian images.
    let sudo = !is_root() && have("sudo", "--version");
    let apt = |args: &[&str]| {
        let mut c = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            c.arg("apt-get");
        }
        c.args(args);
        c
    };
    step("apt-get update", &mut apt(&["update", "-q"]));
    step(
        what,
        apt(&[&["install", "-y", "-q", "--no-install-recommends"][..], packages].concat())
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
}

/// Vulkan on the CPU for the GPU-path tests: Mesa's lavapipe (Debian's
/// mesa-vulkan-drivers) and the Vulkan loader, installed when no lavapipe
/// driver manifest is there.
pub fn install_lavapipe() {
    let manifests = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    let found = manifests.iter().any(|dir| {
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd")))
            .unwrap_or(false)
    });
    let loader = std::path::Path::new("/usr/lib/x86_64-linux-gnu/libvulkan.so.1").exists()
        || std::path::Path::new("/usr/lib/aarch64-linux-gnu/libvulkan.so.1").exists();
    if !found || !loader {
        apt_install("install Mesa lavapipe (Vulkan on the CPU)", &["mesa-vulkan-drivers", "libvulkan1"]);
    }
}

fn tools_root() -> PathBuf {
    root().join("target").join("tools")
}

/// defmt-print: the one `cargo xtask` installed, else the one on PATH.
pub fn defmt_print() -> String {
    let local = tools_root().join("bin").join("defmt-print");
    if local.exists() {
        local.to_string_lossy().into_owned()
    } else {
        "defmt-print".to_owned()
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A Python virtual environment at `target/<name>/venv` whose python can
/// `import <modules>` (comma-separated), installing `packages` from the package
/// registry when it cannot (and python3 with venv from apt when missing).
/// Returns its python.
pub fn venv(name: &str, modules: &str, packages: &[&str]) -> PathBuf {
    let venv = root().join("target").join(name).join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        if !have("python3", "--version")
            || !Command::new("python3").args(["-m", "venv", "--help"]).output().is_ok_and(|o| o.status.success())
        {
            apt_install("install Python 3 and venv", &["python3", "python3-venv"]);
        }
        step("python virtual environment", Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    if !Command::new(&python).args(["-c", &format!("import {modules}")]).status().is_ok_and(|s| s.success()) {
        step(
            &format!("install {} (package registry)", packages.join(" ")),
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "-q", "--disable-pip-version-check"])
                .args(packages),
        );
    }
    python
}
