//! `cargo xtask ffi [--write]`: the C ABI, checked from the C side.
//!
//! 1. `ffi/include/floe.h` is what cbindgen generates from `ffi/src/lib.rs`
//!    (`--write` regenerates it).
//! 2. `ffi/examples/check.c` is built with the system C compiler against the
//!    static library and run on the bundled models; its output is diffed line
//!    for line (every float by its bits) with [`crate::ffi_ref::lines`], the
//!    Rust runtime's own results.
//! 3. The same program cross-built for `aarch64-unknown-linux-gnu` and run
//!    under `qemu-aarch64`: the same lines.
//! 4. The static library for `aarch64-linux-android` and `aarch64-apple-ios`
//!    (built, not linked: no NDK or Xcode here).
//! 5. The same program as Cortex-M4F firmware (`ffi/examples/m4f/`, built with
//!    `arm-none-eabi-gcc` against the `thumbv7em-none-eabihf` library) run in
//!    QEMU (`mps2-an386`): the same lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boards::root;
use crate::tools::{add_targets, cargo, fail, step};

const AARCH64: &str = "aarch64-unknown-linux-gnu";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const PHONES: [&str; 2] = ["aarch64-linux-android", "aarch64-apple-ios"];
const M4F: &str = "thumbv7em-none-eabihf";
/// What a program linking Rust's std statically needs from the C side
/// (`cargo rustc -- --print native-static-libs`).
const NATIVE_LIBS: [&str; 6] = ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"];
const CFLAGS: [&str; 6] = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"];

fn ffi_dir() -> PathBuf {
    root().join("ffi")
}

fn assets_dir() -> PathBuf {
    root().join("firmware").join("assets")
}

fn out_dir() -> PathBuf {
    root().join("target").join("ffi")
}

/// cbindgen, pinned: the version whose output `floe.h` is.
const CBINDGEN: &str = "0.29.4";

/// The cbindgen binary: installed into `target/tools` by `cargo install` when
/// missing. (A binary, not a library dependency of this xtask: the library's
/// serde/syn features would unify with the workspace's and make `cargo run -p
/// floe-exporter` rebuild Burn.)
fn cbindgen() -> PathBuf {
    let tools = root().join("target").join("tools");
    let exe = tools.join("bin").join("cbindgen");
    let version = Command::new(&exe).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !version.is_ok_and(|v| v.contains(CBINDGEN)) {
        step(
            &format!("install cbindgen {CBINDGEN}"),
            cargo().args(["install", "cbindgen", "--locked", "--version", CBINDGEN, "--root"]).arg(&tools),
        );
    }
    exe
}

/// Check (or with `write`, regenerate) `ffi/include/floe.h`.
pub fn header(write: bool) {
    let path = ffi_dir().join("include").join("floe.h");
    let fresh = out_dir().join("floe.h");
    step(
        "cbindgen: the header of ffi/src/lib.rs",
        Command::new(cbindgen())
            .current_dir(ffi_dir())
            .arg("--quiet")
            .arg("--config")
            .arg(ffi_dir().join("cbindgen.toml"))
            .arg("--output")
            .arg(&fresh)
            .arg(ffi_dir()),
    );
    let want = std::fs::read_to_string(&fresh).unwrap_or_else(|e| fail(format!("{}: {e}", fresh.display())));
    if write {
        std::fs::write(&path, &want).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
        eprintln!("== xtask: wrote {}", path.display());
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        fail(format!(
            "{} is not what cbindgen {CBINDGEN} generates from ffi/src/lib.rs: run `cargo xtask ffi --write`",
            path.display()
        ));
    }
    eprintln!("== xtask: ffi/include/floe.h is up to date ({} lines)", want.lines().count());
}

/// The reference lines (the Rust runtime's results).
fn reference() -> Vec<String> {
    let files = crate::ffi_ref::FILES.map(|f| {
        let p = assets_dir().join(f);
        std::fs::read(&p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())))
    });
    crate::ffi_ref::lines(&files).unwrap_or_else(|e| fail(format!("reference lines: {e:?}")))
}

/// Diff `got` (a program's stdout) with `want`; returns the count of floats
/// compared.
pub fn diff(what: &str, got: &str, want: &[String]) -> usize {
    let got: Vec<&str> = got.lines().collect();
    if let Some((k, (a, b))) = want.iter().zip(&got).enumerate().find(|(_, (a, b))| a != *b) {
        fail(format!("{what}: line {} differs from the Rust runtime's:\n  Rust: {a}\n  C:    {b}", k + 1));
    }
    if got.len() != want.len() {
        fail(format!("{what}: {} lines, the Rust runtime gives {}", got.len(), want.len()));
    }
    want.iter().map(|l| l.matches(" 0x").count()).sum()
}

/// Run `cmd`, require success, return its stdout.
fn run(what: &str, cmd: &mut Command) -> String {
    eprintln!("\n== xtask: {what}\n   {cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| fail(format!("cannot start {cmd:?}: {e}")));
    if !out.status.success() {
        let so = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = so.lines().rev().take(5).collect();
        fail(format!(
            "{what} exited with {}: {}\n  last lines: {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail
        ));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build the C check for a hosted target with `cc` against `lib`.
fn build_host_check(cc: &str, lib: &Path, exe: &Path) {
    let ex = ffi_dir().join("examples");
    step(
        &format!("C check builds with {cc}"),
        Command::new(cc)
            .args(CFLAGS)
            .arg("-I")
            .arg(ffi_dir().join("include"))
            .arg(ex.join("check.c"))
            .arg(ex.join("host.c"))
            .arg(lib)
            .args(NATIVE_LIBS)
            .arg("-o")
            .arg(exe),
    );
}

/// `cargo xtask ffi [--write]`.
pub fn ffi(args: &[String]) {
    let write = args.iter().any(|a| a == "--write");
    std::fs::create_dir_all(out_dir()).unwrap_or_else(|e| fail(format!("{}: {e}", out_dir().display())));
    header(write);
    let want = reference();

    // x86-64 (the host).
    step("floe-ffi static library (host)", cargo().current_dir(root()).args(["build", "-p", "floe-ffi"]));
    let exe = out_dir().join("check-host");
    build_host_check("cc", &root().join("target").join("debug").join("libfloe_ffi.a"), &exe);
    let got = run("C check on the host", Command::new(&exe).arg(assets_dir()));
    let n = diff("C check on the host", &got, &want);
    eprintln!("   host: {} lines identical to the Rust runtime's ({n} f32 bit for bit)", want.len());

    // aarch64 under qemu-aarch64.
    crate::aarch64::install_cross();
    let target_dir = root().join("target").join("aarch64");
    step(
        "floe-ffi static library (aarch64)",
        cargo()
            .current_dir(root())
            .args(["build", "-p", "floe-ffi", "--target", AARCH64, "--target-dir"])
            .arg(&target_dir),
    );
    let exe = out_dir().join("check-aarch64");
    build_host_check("aarch64-linux-gnu-gcc", &target_dir.join(AARCH64).join("debug").join("libfloe_ffi.a"), &exe);
    let got = run(
        "C check on aarch64 (qemu-aarch64)",
        Command::new("qemu-aarch64").args(["-L", SYSROOT]).arg(&exe).arg(assets_dir()),
    );
    let n = diff("C check on aarch64", &got, &want);
    eprintln!("   aarch64: {} lines identical to the Rust runtime's ({n} f32 bit for bit)", want.len());

    // Phones: the static libraries an app links, each exporting every function
    // the header declares.
    let functions = header_functions();
    add_targets(&PHONES);
    for t in PHONES {
        step(
            &format!("floe-ffi static library for {t}"),
            cargo().current_dir(root()).args(["build", "-p", "floe-ffi", "--release", "--target", t]),
        );
        let lib = root().join("target").join(t).join("release").join("libfloe_ffi.a");
        let bytes = std::fs::read(&lib).unwrap_or_else(|e| fail(format!("{}: {e}", lib.display())));
        let symbols =
            archive_symbols(&bytes).unwrap_or_else(|| fail(format!("{}: no archive symbol table", lib.display())));
        // Mach-O (iOS) names carry a leading underscore.
        let prefix = if t.contains("apple") { "_" } else { "" };
        let missing: Vec<&String> =
            functions.iter().filter(|f| !symbols.iter().any(|s| *s == format!("{prefix}{f}"))).collect();
        if !missing.is_empty() {
            fail(format!("{}: does not export {missing:?}", lib.display()));
        }
        eprintln!(
            "   {t}: {} ({} bytes) exports all {} functions of floe.h",
            lib.display(),
            bytes.len(),
            functions.len()
        );
    }

    crate::ffi_m4f::m4f(&want);
    eprintln!("\n== xtask: ffi: the C check matches the Rust runtime on x86-64, aarch64 and the Cortex-M4F");
}

/// The functions `ffi/include/floe.h` declares (`floe_…(` at a line's
/// return type).
fn header_functions() -> Vec<String> {
    let path = ffi_dir().join("include").join("floe.h");
    let h = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let mut out: Vec<String> = h
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' '))
        .filter_map(|l| {
            let i = l.find("floe_")?;
            let name: String = l[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            l[i + name.len()..].starts_with('(').then_some(name)
        })
        .collect();
    out.dedup();
    if out.len() < 20 {
        fail(format!("{}: only {} functions found", path.display(), out.len()));
    }
    out
}

/// The names in an `ar` archive's symbol table: GNU (`/`, big-endian offsets)
/// or BSD (`__.SYMDEF`, little-endian ranlib entries), the first member.
fn archive_symbols(a: &[u8]) -> Option<Vec<String>> {
    let head = a.get(8..68).filter(|_| a.starts_with(b"!<arch>\n"))?;
    let name = std::str::from_utf8(head.get(..16)?).ok()?.trim_end();
    let size: usize = std::str::from_utf8(head.get(48..58)?).ok()?.trim().parse().ok()?;
    let mut body = a.get(68..68 + size)?;
    let u32_be = |b: &[u8], i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize);
    let u32_le = |b: &[u8], i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize);
    if name == "/" {
        let n = u32_be(body, 0)?;
        let strtab = body.get(4 + 4 * n..)?;
        return Some(
            strtab
                .split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        );
    }
    if let Some(len) = name.strip_prefix("#1/") {
        // BSD long name: the name is the member's first `len` bytes.
        let len: usize = len.parse().ok()?;
        if !body.get(..len)?.starts_with(b"__.SYMDEF") {
            return None;
        }
        body = body.get(len..)?;
    } else if !name.starts_with("__.SYMDEF") {
        return None;
    }
    let ranlib = u32_le(body, 0)?;
    let strtab_len = u32_le(body, 4 + ranlib)?;
    let strtab = body.get(8 + ranlib..8 + ranlib + strtab_len)?;
    let mut out = Vec::new();
    for e in (0..ranlib / 8).map(|k| 4 + 8 * k) {
        let strx = u32_le(body, e)?;
        let s = strtab.get(strx..)?;
        out.push(String::from_utf8_lossy(s.split(|&c| c == 0).next()?).into_owned());
    }
    Some(out)
}

/// The bare-metal static library for the Cortex-M4F (release, DSP kernels).
pub fn m4f_library() -> PathBuf {
    add_targets(&[M4F]);
    step(
        "floe-ffi static library (Cortex-M4F, no std)",
        cargo().current_dir(root()).args([
            "build",
            "-p",
            "floe-ffi",
            "--release",
            "--target",
            M4F,
            "--no-default-features",
            "--features",
            "panic-halt,dsp",
        ]),
    );
    root().join("target").join(M4F).join("release").join("libfloe_ffi.a")
}

/// Paths the firmware build uses.
pub fn paths() -> (PathBuf, PathBuf, PathBuf) {
    (ffi_dir(), assets_dir(), out_dir())
}
