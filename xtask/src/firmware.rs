//! `cargo xtask qemu | size | assets`: the firmware under QEMU, diffed against the
//! host runtime bit for bit, and its cost (instructions, sizes, stack).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../firmware/src/script.rs"]
#[allow(dead_code)]
mod script;

use floe_runtime::Error;
use script::Sink;

/// A board QEMU emulates, with the Rust target that runs on it.
pub struct Board {
    /// Rust target triple.
    pub target: &'static str,
    /// QEMU machine.
    pub machine: &'static str,
    /// QEMU system emulator.
    pub qemu: &'static str,
    /// Extra QEMU arguments (CPU).
    pub cpu: &'static [&'static str],
    /// Human name.
    pub name: &'static str,
    /// Instructions per SysTick tick under `-icount shift=0` (1 ns per instruction):
    /// 1 GHz over the SysTick clock. Checked on every run with a loop of known length.
    pub instructions_per_tick: f64,
}

/// The boards `cargo xtask qemu` runs on.
pub const BOARDS: [Board; 3] = [
    Board {
        target: "thumbv7em-none-eabihf",
        machine: "mps2-an386",
        qemu: "qemu-system-arm",
        cpu: &["-cpu", "cortex-m4"],
        name: "Cortex-M4F (mps2-an386)",
        instructions_per_tick: 40.0, // 25 MHz
    },
    Board {
        target: "thumbv6m-none-eabi",
        machine: "microbit",
        qemu: "qemu-system-arm",
        cpu: &[],
        name: "Cortex-M0 (microbit)",
        instructions_per_tick: 62.5, // 16 MHz
    },
    Board {
        target: "riscv32imac-unknown-none-elf",
        machine: "virt",
        qemu: "qemu-system-riscv32",
        cpu: &["-bios", "none"],
        name: "RV32IMAC (virt)",
        instructions_per_tick: 1.0, // minstret
    },
];

/// The firmware programs (`firmware/src/bin`).
const PROGRAMS: [&str; 3] = ["golden", "cost", "stream"];

/// Seconds a program may run in QEMU.
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("xtask: {msg}");
    exit(1)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

pub fn firmware_dir() -> PathBuf {
    root().join("firmware")
}

/// Lines the host runtime prints: the expected output.
#[derive(Default)]
struct HostSink {
    lines: Vec<String>,
}

impl Sink for HostSink {
    fn begin(&mut self, name: &str) {
        self.lines.push(format!("begin {name}"));
    }

    fn int(&mut self, what: &'static str, i: u32, j: u32, v: i32) {
        self.lines.push(format!("{what} {i} {j} {v}"));
    }

    fn model(&mut self, bytes: u32, dim: u32, context_dim: u32, layers: u32, scratch_words: u32) {
        self.lines.push(format!(
            "model bytes={bytes} dim={dim} context={context_dim} layers={layers} scratch={scratch_words}"
        ));
    }

    fn value(&mut self, what: &'static str, i: u32, j: u32, v: f32) {
        // defmt-print renders `{=f32}` with ryu; so does the reference.
        self.lines.push(format!("{what} {i} {j} {:#010x} {}", v.to_bits(), ryu::Buffer::new().format(v)));
    }

    fn error(&mut self, what: &'static str, i: u32, e: Error) {
        self.lines.push(format!("{what} {i} error {e:?}"));
    }

    fn cost(&mut self, _what: &'static str, _calls: u32, _instructions: u64) {}
}

struct NoClock;

impl script::Clock for NoClock {
    fn now(&mut self) -> u64 {
        0
    }
}

/// The models and input rows the firmware embeds (`firmware/assets/models.txt`).
pub struct Assets {
    /// (name, model bytes, input rows)
    models: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (name, stream model bytes, series) from `firmware/assets/streams.txt`
    streams: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// `name file file` lines of an assets list, files read.
fn read_list(list_path: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let dir = list_path.parent().unwrap_or(Path::new("."));
    let list = std::fs::read_to_string(list_path)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", list_path.display())));
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", p.display())));
    let mut out = Vec::new();
    for line in list.lines() {
        let f: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
        match f.as_slice() {
            [] => {}
            [name, a, b] => out.push(((*name).to_owned(), read(&dir.join(a)), read(&dir.join(b)))),
            _ => fail(format!("{}: bad line {line:?}", list_path.display())),
        }
    }
    out
}

impl Assets {
    fn load() -> Assets {
        let dir = firmware_dir().join("assets");
        let models = read_list(&dir.join("models.txt"));
        if models.is_empty() {
            fail("firmware/assets/models.txt lists no models");
        }
        Assets { models, streams: read_list(&dir.join("streams.txt")) }
    }

    /// The same assets with the first model's file replaced.
    fn with_first_model(&self, bytes: Vec<u8>) -> Assets {
        let mut models = self.models.clone();
        models[0].1 = bytes;
        Assets { models, streams: self.streams.clone() }
    }

    /// The same assets with the first input row's first value moved by 0.01 %
    /// (one ulp can round away in the outputs).
    fn with_nudged_input(&self) -> Assets {
        let mut models = self.models.clone();
        let inputs = &mut models[0].2;
        let v = f32::from_le_bytes([inputs[0], inputs[1], inputs[2], inputs[3]]);
        inputs[..4].copy_from_slice(&(v * 1.0001 + 1e-6).to_le_bytes());
        Assets { models, streams: self.streams.clone() }
    }
}

/// A 16-byte aligned copy of a model file (the runtime reads tensors in place).
fn aligned(model: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; model.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..model.len()].copy_from_slice(model);
    words
}

/// Run a program on the host runtime over every model; returns its lines.
fn host_lines(program: &str, assets: &Assets) -> Result<Vec<String>, Error> {
    let copies: Vec<Vec<u128>> = assets.models.iter().map(|(_, m, _)| aligned(m)).collect();
    let mut refs = Vec::new();
    let (mut max_row, mut max_scratch) = (0, 0);
    for ((name, m, inputs), words) in assets.models.iter().zip(&copies) {
        let bytes = &bytemuck::cast_slice::<u128, u8>(words)[..m.len()];
        let model = floe_runtime::Model::load(bytes)?;
        max_row = max_row.max(model.dim() + model.context_dim());
        max_scratch = max_scratch.max(model.scratch_len());
        refs.push((name.as_str(), bytes, inputs.as_slice()));
    }
    let mut row = vec![0.0f32; max_row];
    let mut scratch = vec![0.0f32; max_scratch];
    let mut sink = HostSink::default();
    match program {
        "golden" => script::each_model(&refs, &mut row, &mut scratch, &mut sink, &mut |b, i, x, c, s, k| {
            script::golden(b, i, x, c, s, k)
        })?,
        "cost" => {
            script::each_model(&refs, &mut row, &mut scratch, &mut sink, &mut |b, i, x, c, s, k| {
                script::cost(b, i, x, c, s, k, &mut NoClock)
            })?;
            script::kernel_cost(&mut sink, &mut NoClock)?;
        }
        "stream" => {
            for (name, m, series) in &assets.streams {
                let words = aligned(m);
                let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..m.len()];
                let model = floe_runtime::Model::load(bytes)?;
                let mut scratch = vec![0.0f32; model.scratch_len()];
                sink.begin(name);
                script::stream(bytes, series, &mut scratch, &mut sink, &mut NoClock)?;
            }
        }
        other => fail(format!("unknown program {other}")),
    }
    Ok(sink.lines)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn step(what: &str, cmd: &mut Command) {
    eprintln!("\n== xtask: {what}\n   {cmd:?}");
    let status = cmd.status().unwrap_or_else(|e| fail(format!("cannot start {cmd:?}: {e}")));
    if !status.success() {
        fail(format!("{what} failed ({status})"));
    }
}

/// Install what the firmware checks need when it is missing: the rustup targets,
/// QEMU (apt) and defmt-print (cargo install).
pub fn install_tools(targets: &[&str]) {
    if have("rustup", "--version") {
        step("install firmware targets", Command::new("rustup").args(["target", "add"]).args(targets));
    }
    let mut packages = Vec::new();
    if !have("qemu-system-arm", "--version") {
        packages.push("qemu-system-arm");
    }
    if !have("qemu-system-riscv32", "--version") {
        packages.push("qemu-system-misc");
    }
    if !packages.is_empty() {
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
            "install QEMU",
            apt(&[&["install", "-y", "-q", "--no-install-recommends"][..], &packages].concat())
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }
    if !have(&defmt_print(), "--version") {
        // Into the repository's target/ so it is found whatever PATH holds.
        step(
            "install defmt-print",
            cargo().args(["install", "defmt-print", "--locked", "--version", "1.2.0", "--root"]).arg(tools_root()),
        );
    }
}

fn tools_root() -> PathBuf {
    root().join("target").join("tools")
}

/// defmt-print: the one `cargo xtask` installed, else the one on PATH.
fn defmt_print() -> String {
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

fn elf_path(target: &str, program: &str) -> PathBuf {
    firmware_dir().join("target").join(target).join("release").join(program)
}

fn build_firmware(target: &str, extra: &[&str]) {
    step(
        &format!("firmware builds for {target} {}", extra.join(" ")),
        cargo().current_dir(firmware_dir()).args(["build", "--release", "--bins", "--target", target]).args(extra),
    );
}

/// Run `elf` in QEMU; returns (exit status code, decoded defmt lines).
fn run_qemu(board: &Board, elf: &Path) -> (i32, Vec<String>) {
    let mut qemu = Command::new(board.qemu);
    qemu.args(board.cpu)
        .args(["-machine", board.machine, "-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = qemu.spawn().unwrap_or_else(|e| fail(format!("cannot start {qemu:?}: {e}")));
    let mut out = child.stdout.take().unwrap_or_else(|| fail("no stdout from QEMU"));
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap_or_else(|e| fail(format!("waiting for QEMU: {e}"))) {
            break s;
        }
        if start.elapsed() > QEMU_TIMEOUT {
            let _ = child.kill();
            fail(format!("{} did not finish in {} s under QEMU", elf.display(), QEMU_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let raw = reader.join().ok().and_then(|r| r.ok()).unwrap_or_else(|| fail("reading QEMU's output failed"));
    let mut dp = Command::new(defmt_print())
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start defmt-print: {e}")));
    let mut stdin = dp.stdin.take().unwrap_or_else(|| fail("no stdin for defmt-print"));
    let writer = std::thread::spawn(move || stdin.write_all(&raw));
    let decoded = dp.wait_with_output().unwrap_or_else(|e| fail(format!("defmt-print: {e}")));
    let _ = writer.join();
    let text = String::from_utf8_lossy(&decoded.stdout).into_owned();
    let code = status.code().unwrap_or(-1);
    (code, text.lines().map(str::to_owned).collect())
}

/// Lines that carry measurements (differ by target; not diffed).
fn is_measurement(line: &str) -> bool {
    line.starts_with("cost ") || line.starts_with("measure ")
}

/// First difference between expected and actual, if any.
fn first_difference(expected: &[String], actual: &[String]) -> Option<String> {
    let n = expected.len().max(actual.len());
    for k in 0..n {
        let (e, a) = (expected.get(k), actual.get(k));
        if e != a {
            return Some(format!(
                "line {}:\n  host:   {}\n  device: {}",
                k + 1,
                e.map_or("<end of output>", |s| s),
                a.map_or("<end of output>", |s| s)
            ));
        }
    }
    None
}

fn count_differences(expected: &[String], actual: &[String]) -> usize {
    let n = expected.len().max(actual.len());
    (0..n).filter(|&k| expected.get(k) != actual.get(k)).count()
}

/// One section header of an ELF32 file.
struct Section {
    name: String,
    flags: usize,
    offset: usize,
    size: usize,
}

fn le16(b: &[u8], o: usize) -> Option<usize> {
    b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
}

fn le32(b: &[u8], o: usize) -> Option<usize> {
    b.get(o..o + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The bytes and section headers of an ELF32 file.
fn elf(path: &Path) -> (Vec<u8>, Vec<Section>) {
    let b = std::fs::read(path).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())));
    let parse = || -> Option<Vec<Section>> {
        if b.get(..5)? != b"\x7fELF\x01" {
            return None;
        }
        let (shoff, shentsize, shnum, shstrndx) = (le32(&b, 0x20)?, le16(&b, 0x2E)?, le16(&b, 0x30)?, le16(&b, 0x32)?);
        let sh = |i: usize| shoff + i * shentsize;
        let stroff = le32(&b, sh(shstrndx) + 16)?;
        (0..shnum)
            .map(|i| {
                let name_off = stroff + le32(&b, sh(i))?;
                let end = b.get(name_off..)?.iter().position(|&c| c == 0)?;
                Some(Section {
                    name: String::from_utf8_lossy(&b[name_off..name_off + end]).into_owned(),
                    flags: le32(&b, sh(i) + 8)?,
                    offset: le32(&b, sh(i) + 16)?,
                    size: le32(&b, sh(i) + 20)?,
                })
            })
            .collect()
    };
    let sections = parse().unwrap_or_else(|| fail(format!("{} is not a 32-bit ELF file", path.display())));
    (b, sections)
}

/// Count Thumb-2 `SMLAD` instructions (`1111 1011 0010 nnnn | aaaa dddd 0000 mmmm`,
/// `aaaa` ≠ 1111) in the executable sections of an ELF32 file, decoding the
/// instruction stream in order (a halfword starting `11101`, `11110` or `11111`
/// opens a 32-bit instruction), so halves of other instructions do not count.
fn count_smlad(path: &Path) -> usize {
    let (b, sections) = elf(path);
    let mut n = 0;
    for sec in sections.iter().filter(|s| s.flags & 4 != 0) {
        // SHF_EXECINSTR
        let mut k = sec.offset;
        while k + 4 <= sec.offset + sec.size {
            let (Some(h1), Some(h2)) = (le16(&b, k), le16(&b, k + 2)) else { break };
            if matches!(h1 >> 11, 0b11101..=0b11111) {
                if h1 & 0xFFF0 == 0xFB20 && h2 & 0x00F0 == 0 && h2 >> 12 != 0xF {
                    n += 1;
                }
                k += 4;
            } else {
                k += 2;
            }
        }
    }
    n
}

/// Sizes of the sections that occupy flash or RAM (SHF_ALLOC): name -> bytes.
fn elf_sections(path: &Path) -> BTreeMap<String, u64> {
    elf(path).1.into_iter().filter(|s| s.flags & 2 != 0).map(|s| (s.name, s.size as u64)).collect()
}

/// Flash / RAM figures of one program.
#[derive(Clone, Copy)]
struct Sizes {
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
    vector: u64,
}

fn sizes(elf: &Path) -> Sizes {
    let s = elf_sections(elf);
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    Sizes {
        text: get(".text"),
        rodata: get(".rodata"),
        data: get(".data"),
        bss: get(".bss") + get(".uninit"),
        vector: get(".vector_table"),
    }
}

/// Measurements parsed from a device run.
#[derive(Default, Clone)]
struct Measured {
    /// what -> (calls, instructions)
    cost: BTreeMap<String, (u64, u64)>,
    stack: Option<(u64, u64)>,
    arena: Option<u64>,
    /// Sections of the golden program.
    sizes: Option<Sizes>,
}

/// Kernel and clock measurements are global; the others belong to the model of
/// the preceding `begin` line (key `model/what`).
fn parse_measurements(lines: &[String], m: &mut Measured) {
    let mut current = String::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["begin", name] => current = (*name).to_owned(),
            ["cost", what, calls, instr] => {
                if let (Ok(c), Ok(i)) = (calls.parse(), instr.parse()) {
                    let key = if what.starts_with("dense-") || *what == "calibrate" {
                        (*what).to_owned()
                    } else {
                        format!("{current}/{what}")
                    };
                    m.cost.insert(key, (c, i));
                }
            }
            ["measure", "stack", used, "of", size, "arena", arena] => {
                if let (Ok(u), Ok(s), Ok(a)) = (used.parse(), size.parse(), arena.parse()) {
                    m.stack = Some((u, s));
                    m.arena = Some(a);
                }
            }
            _ => {}
        }
    }
}

/// Instructions per call of `what`.
fn per_call(board: &Board, m: &Measured, what: &str) -> Option<f64> {
    m.cost.get(what).filter(|(c, t)| *c > 0 && *t > 0).map(|(c, t)| *t as f64 * board.instructions_per_tick / *c as f64)
}

/// The counter's factor is right if a loop of `2 n` instructions reads as that,
/// to within a tick at each end.
fn check_clock(board: &Board, m: &Measured) {
    let Some(&(n, ticks)) = m.cost.get("calibrate") else {
        fail(format!("{}: the cost program reported no calibration", board.name))
    };
    let counted = ticks as f64 * board.instructions_per_tick;
    let expected = 2.0 * n as f64;
    // One tick at each end, plus the counter's own read (a few instructions).
    if (counted - expected).abs() > 2.0 * board.instructions_per_tick + 16.0 {
        fail(format!(
            "{}: a loop of {expected} instructions counted as {counted}: the ticks-to-instructions factor {} is wrong",
            board.name, board.instructions_per_tick
        ));
    }
}

/// Flip one bit of a weight in the middle of the model's largest tensor and fix
/// the CRC: a model the runtime loads, differing from the original in one number.
fn tampered_model(model: &[u8]) -> Vec<u8> {
    let words = aligned(model);
    let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..model.len()];
    let m = floe_runtime::Model::load(bytes).unwrap_or_else(|e| fail(format!("model: {e:?}")));
    let n_tensors = m.header().n_tensors;
    let largest = (0..n_tensors)
        .filter_map(|i| m.tensor_record(i).ok())
        .max_by_key(|r| r.rows * r.cols)
        .unwrap_or_else(|| fail("model has no tensors"));
    let mut out = model.to_vec();
    let at = largest.offset as usize + 4 * (largest.rows * largest.cols / 2) as usize;
    out[at + 2] ^= 0x01; // bit 16 of the f32: a 2^-7 relative change
    let n = out.len();
    let crc = floe_runtime::format::crc32(&out[..n - 4]);
    out[n - 4..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// `cargo xtask qemu`.
pub fn qemu() {
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    install_tools(&targets);
    let assets = Assets::load();
    let out_dir = root().join("target").join("qemu");
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| fail(format!("cannot create {}: {e}", out_dir.display())));

    // 1. The host reference, from the host runtime on the same model and inputs.
    let mut expected = BTreeMap::new();
    for p in PROGRAMS {
        let lines = host_lines(p, &assets).unwrap_or_else(|e| fail(format!("host reference for {p}: {e:?}")));
        let file = out_dir.join(format!("{p}.expected"));
        std::fs::write(&file, lines.join("\n") + "\n").unwrap_or_else(|e| fail(format!("{}: {e}", file.display())));
        expected.insert(p, lines);
    }

    // 2. The comparison catches a wrong model on the device: the golden program
    //    built with one weight changed (a file the runtime loads: CRC fixed) must
    //    fail the diff against the genuine host reference.
    let tampered = tampered_model(&assets.models[0].1);
    let tampered_path = out_dir.join("tampered.floe");
    std::fs::write(&tampered_path, &tampered).unwrap_or_else(|e| fail(format!("{}: {e}", tampered_path.display())));
    let board = &BOARDS[0];
    step(
        &format!("golden built with a tampered model for {}", board.target),
        cargo()
            .current_dir(firmware_dir())
            .args(["build", "--release", "--bin", "golden", "--target", board.target])
            .env("FLOE_MODEL", &tampered_path),
    );
    let (code, lines) = run_qemu(board, &elf_path(board.target, "golden"));
    let results: Vec<String> = lines.iter().filter(|l| !is_measurement(l)).cloned().collect();
    let n_device = count_differences(&expected["golden"], &results);
    eprintln!("   the tampered firmware (exit {code}) differs from the host reference in {n_device} lines");
    if code != 0 || n_device == 0 {
        fail("the device diff did not detect a firmware built with a changed model");
    }

    // 3. Each program on each board, decoded and diffed.
    let mut report = Vec::new();
    let mut golden_device = Vec::new();
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        let mut measured = Measured::default();
        for p in PROGRAMS {
            let elf = elf_path(board.target, p);
            eprintln!("\n== xtask: run {p} on {} under QEMU", board.name);
            let t = Instant::now();
            let (code, lines) = run_qemu(board, &elf);
            let log = out_dir.join(format!("{p}.{}.out", board.target));
            std::fs::write(&log, lines.join("\n") + "\n").unwrap_or_else(|e| fail(format!("{}: {e}", log.display())));
            if code != 0 {
                let tail: Vec<&String> = lines.iter().rev().take(5).collect();
                fail(format!("{p} on {} exited with status {code}; last lines: {tail:?}", board.name));
            }
            let results: Vec<String> = lines.iter().filter(|l| !is_measurement(l)).cloned().collect();
            let exp = &expected[p];
            if let Some(d) = first_difference(exp, &results) {
                fail(format!(
                    "{p} on {} differs from the host ({} of {} lines; {} vs {}):\n{d}",
                    board.name,
                    count_differences(exp, &results),
                    exp.len(),
                    out_dir.join(format!("{p}.expected")).display(),
                    log.display()
                ));
            }
            let n_values = results.iter().filter(|l| l.contains(" 0x")).count();
            eprintln!(
                "   ok: {} lines identical to the host ({n_values} f32 compared bit for bit), {:.1} s",
                results.len(),
                t.elapsed().as_secs_f64()
            );
            parse_measurements(&lines, &mut measured);
            if p == "golden" {
                measured.sizes = Some(sizes(&elf));
            }
            if p == "cost" && board.target.starts_with("thumb") {
                // The int8 kernel uses the DSP extension on the Cortex-M4F, and
                // nothing else does (the Cortex-M0 has none).
                let n = count_smlad(&elf);
                eprintln!("   {n} SMLAD instructions in {}", elf.display());
                let dsp = board.target.starts_with("thumbv7em");
                if dsp != (n > 0) {
                    fail(format!("{n} SMLAD instructions in the {} build", board.name));
                }
            }
            if p == "golden" && board.target == BOARDS[0].target {
                golden_device = results;
            }
        }
        check_clock(board, &measured);
        report.push((board, measured));
    }

    // 4. The comparison is sensitive on the host side too: the reference from the
    //    changed model, or from an input moved by 0.01 %, fails the device output.
    let lines =
        host_lines("golden", &assets.with_first_model(tampered)).unwrap_or_else(|e| fail(format!("tampered: {e:?}")));
    let n_model = count_differences(&lines, &golden_device);
    let lines = host_lines("golden", &assets.with_nudged_input()).unwrap_or_else(|e| fail(format!("nudged: {e:?}")));
    let n_input = count_differences(&lines, &golden_device);
    eprintln!(
        "\n== xtask: sensitivity: one weight changed -> {n_model} lines differ; first input moved by 0.01 % -> {n_input} lines differ"
    );
    if n_model == 0 || n_input == 0 {
        fail("the comparison did not detect a changed model or input");
    }

    // 5. The RTT transport (real boards) builds; in its own target directory, so
    //    the ELFs QEMU runs stay the semihosting ones.
    let rtt_dir = firmware_dir().join("target").join("rtt");
    build_firmware(
        BOARDS[0].target,
        &["--no-default-features", "--features", "rtt", "--target-dir", &rtt_dir.to_string_lossy()],
    );

    println!("{}", table(&report, &assets));
}

fn table(report: &[(&Board, Measured)], assets: &Assets) -> String {
    let mut s = String::new();
    let f = |v: Option<f64>| v.map_or("n/a".to_owned(), |x| format!("{x:.0}"));
    let f2 = |v: Option<f64>| v.map_or("n/a".to_owned(), |x| format!("{x:.2}"));
    let _ = writeln!(
        s,
        "\nfirmware cost (release build; QEMU -icount shift=0: instructions = SysTick ticks x 1 GHz / SysTick clock, minstret on RISC-V)\n"
    );
    let _ = writeln!(
        s,
        "| board | .text | .rodata | .data | .bss | max stack | arena | f32 MAC | w8 MAC | int8 MAC | clock check |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (board, m) in report {
        let Some(z) = m.sizes else { continue };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            board.name,
            z.text + z.vector,
            z.rodata,
            z.data,
            z.bss,
            m.stack.map_or("n/a".into(), |(u, _)| u.to_string()),
            m.arena.map_or("n/a".into(), |a| a.to_string()),
            f2(per_call(board, m, "dense-f32-mac")),
            f2(per_call(board, m, "dense-w8-mac")),
            f2(per_call(board, m, "dense-int8-mac")),
            f2(per_call(board, m, "calibrate")),
        );
    }
    let _ = writeln!(s, "\n| board | model | file bytes | Model::load | log_prob | sample |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    for (board, m) in report {
        for (name, bytes, _) in &assets.models {
            let _ = writeln!(
                s,
                "| {} | {name} | {} | {} | {} | {} |",
                board.name,
                bytes.len(),
                f(per_call(board, m, &format!("{name}/load"))),
                f(per_call(board, m, &format!("{name}/log_prob"))),
                f(per_call(board, m, &format!("{name}/sample"))),
            );
        }
    }
    if !assets.streams.is_empty() {
        let _ = writeln!(s, "\n| board | stream model | instructions per window (push + score) |");
        let _ = writeln!(s, "|---|---|---:|");
        for (board, m) in report {
            for (name, _, _) in &assets.streams {
                let _ = writeln!(
                    s,
                    "| {} | {name} | {} |",
                    board.name,
                    f(per_call(board, m, &format!("{name}/stream-window")))
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nsizes in bytes of the golden program (.text includes the vector table; .rodata the models); max stack\n\
         and arena in bytes; MAC = instructions per multiply-accumulate of a 32 x 32 dense kernel; load / log_prob /\n\
         sample in instructions per call; clock check = instructions counted per iteration of a 2-instruction loop."
    );
    s
}

/// `cargo xtask bench`: the host kernel benchmark, then the cost program on every
/// board under QEMU; prints instructions per MAC and per `log_prob`, int8 against
/// f32, measured in the same run.
pub fn bench() {
    step(
        "host kernel benchmark",
        cargo().current_dir(root()).args(["bench", "-p", "floe-runtime", "--bench", "kernels"]),
    );
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    install_tools(&targets);
    let assets = Assets::load();
    let mut out = String::from(
        "\nQEMU (-icount shift=0), instructions per call, ratios int8 / f32 from the same run\n\n\
         | board | f32 MAC | int8 MAC | int8 / f32 | log_prob f32 | log_prob int8 | int8 / f32 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        let (code, lines) = run_qemu(board, &elf_path(board.target, "cost"));
        if code != 0 {
            fail(format!("cost on {} exited with status {code}", board.name));
        }
        let mut m = Measured::default();
        parse_measurements(&lines, &mut m);
        check_clock(board, &m);
        let (fm, im) = (per_call(board, &m, "dense-f32-mac"), per_call(board, &m, "dense-int8-mac"));
        let names: Vec<&str> = assets.models.iter().map(|(n, _, _)| n.as_str()).collect();
        let lp = |suffix: &str| {
            names.iter().find(|n| n.ends_with(suffix)).and_then(|n| per_call(board, &m, &format!("{n}/log_prob")))
        };
        let (fl, il) = (lp("-f32"), lp("-int8"));
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}", b / a),
            _ => "n/a".into(),
        };
        let g = |v: Option<f64>, p: usize| v.map_or("n/a".into(), |x| format!("{x:.p$}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            board.name,
            g(fm, 2),
            g(im, 2),
            r(fm, im),
            g(fl, 0),
            g(il, 0),
            r(fl, il)
        );
    }
    println!("{out}");
}

/// `cargo xtask size`: build the firmware and print its sections.
pub fn size() {
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    if have("rustup", "--version") {
        step("install firmware targets", Command::new("rustup").args(["target", "add"]).args(&targets));
    }
    println!("| target | program | .vector_table | .text | .rodata | .data | .bss | flash | RAM (static) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        for p in PROGRAMS {
            let z = sizes(&elf_path(board.target, p));
            println!(
                "| {} | {p} | {} | {} | {} | {} | {} | {} | {} |",
                board.target,
                z.vector,
                z.text,
                z.rodata,
                z.data,
                z.bss,
                z.vector + z.text + z.rodata + z.data,
                z.data + z.bss
            );
        }
    }
}

/// `cargo xtask assets`: regenerate `firmware/assets/` (trains the demo model,
/// freezes it in f32 and int8, keeps its first `ROWS` held-out rows; trains the
/// int8 stream model on the UCR series and writes its test series).
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
    step(
        "int8 stream model (UCR InternalBleeding16)",
        cargo()
            .current_dir(root())
            .args(["run", "-p", "floe-exporter", "--bin", "floe", "--", "anomaly", "stream", "--quiet"])
            .args(["--train", "data/streams/135_UCR_Anomaly_InternalBleeding16_TRAIN.csv"])
            .args(["--test", "data/streams/135_UCR_Anomaly_InternalBleeding16_TEST.csv"])
            .args(["--window", "32", "--diff", "--quantize", "int8", "--hidden", "16", "--steps", "2", "--bins", "4"])
            .arg("--out")
            .arg(dir.join("ucr-int8.floe"))
            .arg("--series-out")
            .arg(dir.join("ucr-test.f32")),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> Assets {
        Assets::load()
    }

    #[test]
    fn host_reference_covers_every_row_sample_and_bad_call() {
        let a = assets();
        let lines = host_lines("golden", &a).expect("golden runs on the host");
        let rows: usize = a.models.iter().map(|(_, _, inputs)| inputs.len() / (4 * 6)).sum();
        assert_eq!(lines.iter().filter(|l| l.starts_with("logp ")).count(), rows);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("sample-logp ")).count(),
            a.models.len() * script::N_SAMPLES as usize
        );
        assert_eq!(lines.iter().filter(|l| l.starts_with("begin ")).count(), a.models.len());
        assert!(lines.contains(&"nan-input 0 error NonFiniteInput".to_owned()), "{lines:?}");
        assert!(lines.contains(&"short-input 0 error DimMismatch { expected: 6, got: 5 }".to_owned()));
        // A sample's log p equals log_prob evaluated at it (to f32 round-off).
        for i in 0..script::N_SAMPLES {
            let get = |tag: &str| {
                let l = lines.iter().find(|l| l.starts_with(&format!("{tag} {i} 0 "))).expect(tag);
                let bits = l.split_whitespace().nth(3).expect("bits");
                f32::from_bits(u32::from_str_radix(bits.trim_start_matches("0x"), 16).expect("hex"))
            };
            let (a, b) = (get("sample-logp"), get("sample-logp-eval"));
            assert!((a - b).abs() <= 1e-3 * (1.0 + a.abs()), "sample {i}: {a} vs {b}");
        }
    }

    #[test]
    fn tampered_model_loads_and_differs_in_one_weight() {
        let a = assets();
        let m = &a.models[0].1;
        let t = tampered_model(m);
        let diff: Vec<usize> = (0..m.len() - 4).filter(|&k| m[k] != t[k]).collect();
        assert_eq!(diff.len(), 1, "exactly one byte of the body changes");
        let lines = host_lines("golden", &a.with_first_model(t)).expect("the tampered model still loads");
        let genuine = host_lines("golden", &a).expect("genuine");
        assert!(count_differences(&lines, &genuine) > 0);
        let nudged = host_lines("golden", &a.with_nudged_input()).expect("nudged");
        assert!(count_differences(&nudged, &genuine) > 0);
    }

    #[test]
    fn diff_reports_the_first_differing_line() {
        let e: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let d: Vec<String> = ["a", "x", "c", "d"].map(String::from).to_vec();
        assert!(first_difference(&e, &e).is_none());
        let msg = first_difference(&e, &d).expect("differs");
        assert!(msg.starts_with("line 2:") && msg.contains("host:   b") && msg.contains("device: x"), "{msg}");
        assert_eq!(count_differences(&e, &d), 2);
    }

    #[test]
    fn measurements_are_parsed_and_scaled_per_board() {
        let lines: Vec<String> =
            ["begin m", "cost calibrate 100000 5000", "cost log_prob 128 1280", "measure stack 1264 of 4096 arena 700"]
                .map(String::from)
                .to_vec();
        let mut m = Measured::default();
        parse_measurements(&lines, &mut m);
        assert_eq!(m.stack, Some((1264, 4096)));
        assert_eq!(m.arena, Some(700));
        assert_eq!(per_call(&BOARDS[0], &m, "m/log_prob"), Some(400.0));
        assert_eq!(per_call(&BOARDS[0], &m, "calibrate"), Some(2.0));
        assert!(lines.iter().skip(1).all(|l| is_measurement(l)));
        assert!(!is_measurement("logp 0 0 0x4170dfb8 15.054619"));
    }
}
