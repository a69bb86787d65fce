//! Build script: picks the memory map for the target board and embeds the model.
//!
//! The models and their input rows are listed in `assets/models.txt` (`name
//! model-file inputs-file` per line); `FLOE_MODEL` (a path) replaces the first
//! model's file. Every model is validated here with the same
//! `floe_runtime::Model::load` the firmware runs, so an invalid file fails the
//! build; `$OUT_DIR/models.rs` gets the table of models (16-byte aligned bytes,
//! inputs, dimensions, scratch) and the arena size (the largest scratch).

use std::env;
use std::fs;
use std::path::PathBuf;

/// The `memory.x` linker script of the board a target runs on.
fn memory_x(target: &str) -> String {
    let (flash, flash_len, ram, ram_len) = if target.starts_with("thumbv6m") {
        // BBC micro:bit v1 (nRF51822, Cortex-M0): QEMU `-machine microbit`.
        (0x0000_0000u32, 256 * 1024, 0x2000_0000u32, 16 * 1024)
    } else if target.starts_with("riscv32") {
        // QEMU `-machine virt` loads the program into RAM at 0x8000_0000: "flash"
        // is the first 4 MiB of it, RAM the next 4 MiB.
        (0x8000_0000, 4 * 1024 * 1024, 0x8040_0000, 4 * 1024 * 1024)
    } else {
        // Arm MPS2 AN386 (Cortex-M4F): QEMU `-machine mps2-an386`.
        (0x0000_0000, 4 * 1024 * 1024, 0x2000_0000, 4 * 1024 * 1024)
    };
    let mut s = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = {flash:#010x}, LENGTH = {flash_len}\n  RAM : ORIGIN = {ram:#010x}, LENGTH = {ram_len}\n}}\n"
    );
    if target.starts_with("riscv") {
        for (alias, region) in [
            ("REGION_TEXT", "FLASH"),
            ("REGION_RODATA", "FLASH"),
            ("REGION_DATA", "RAM"),
            ("REGION_BSS", "RAM"),
            ("REGION_HEAP", "RAM"),
            ("REGION_STACK", "RAM"),
        ] {
            s += &format!("REGION_ALIAS(\"{alias}\", {region});\n");
        }
    }
    s
}

/// What the build needs to know about a model file.
struct Facts {
    bytes: Vec<u8>,
    dim: usize,
    context_dim: usize,
    scratch: usize,
    stream: Option<floe_runtime::format::StreamLayout>,
    trajectory: bool,
}

/// Read a model file and validate it with the runtime's own loader (in a 16-byte
/// aligned copy, as the firmware embeds it). For the Cortex-M4F (the one target
/// built with the runtime's `dsp` kernels) its int8 conditioners are stored in
/// the row-pair layout first, the one that kernel reads fastest (docs/FORMAT.md;
/// `floe repack` does the same); on every board the int8 hidden units'
/// requantization words are stored: the same model, the same bits.
fn validated(path: &std::path::Path) -> Facts {
    let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read model {}: {e}", path.display()));
    if env::var("TARGET").is_ok_and(|t| t == "thumbv7em-none-eabihf") {
        let mut scratch = vec![0i8; bytes.len()];
        floe_runtime::format::row_pairs::relayout_file(&mut bytes, &mut scratch, true)
            .unwrap_or_else(|e| panic!("{}: int8 row pairs: {e:?}", path.display()));
    }
    // Every board: the int8 hidden units' requantization words stored, so no
    // evaluation derives them (`floe repack --requant-words` does the same).
    let words = |e| format!("{}: requantization words: {e:?}", path.display());
    let stored = floe_runtime::format::requant_words::stored_len(&bytes).and_then(|n| {
        let mut stored = vec![0u8; n];
        floe_runtime::format::requant_words::store(&bytes, &mut stored).map(|(n, _)| stored[..n].to_vec())
    });
    let bytes = stored.unwrap_or_else(|e| panic!("{}", words(e)));
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    buf[..bytes.len()].copy_from_slice(&bytes);
    let m = floe_runtime::Model::load(&buf[..bytes.len()])
        .unwrap_or_else(|e| panic!("{} is not a valid floe model: {e:?}", path.display()));
    let (dim, context_dim, scratch, stream) = (m.dim(), m.context_dim(), m.scratch_len(), m.stream_layout());
    let trajectory = m.trajectory_layout().is_some();
    Facts { bytes, dim, context_dim, scratch, stream, trajectory }
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");

    let memory_x = memory_x(&target);
    fs::write(out.join("memory.x"), memory_x).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");

    let list_path = manifest.join("assets/models.txt");
    println!("cargo:rerun-if-changed={}", list_path.display());
    println!("cargo:rerun-if-env-changed=FLOE_MODEL");
    let list = fs::read_to_string(&list_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", list_path.display()));
    let mut table = String::new();
    let mut statics = String::new();
    let (mut max_dim, mut max_cdim, mut max_scratch) = (0, 0, 0);
    let entries: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect();
    assert!(!entries.is_empty(), "{}: no models listed", list_path.display());
    for (k, f) in entries.iter().enumerate() {
        let [name, model_file, inputs_file] = f.as_slice() else {
            panic!("{}: each line is `name model-file inputs-file`, got {f:?}", list_path.display())
        };
        // FLOE_MODEL replaces the first model's file (the xtask's tamper check).
        let model_path = match (k, env::var_os("FLOE_MODEL")) {
            (0, Some(p)) => PathBuf::from(p),
            _ => manifest.join("assets").join(model_file),
        };
        let inputs_path = manifest.join("assets").join(inputs_file);
        println!("cargo:rerun-if-changed={}", model_path.display());
        println!("cargo:rerun-if-changed={}", inputs_path.display());
        let model = validated(&model_path);
        let bytes = &model.bytes;
        let rows =
            fs::read(&inputs_path).unwrap_or_else(|e| panic!("cannot read inputs {}: {e}", inputs_path.display()));
        let row_bytes = 4 * (model.dim + model.context_dim);
        assert!(
            !rows.is_empty() && rows.len().is_multiple_of(row_bytes),
            "{}: {} bytes is not a whole number of rows of {} little-endian f32 (dim + context dim)",
            inputs_path.display(),
            rows.len(),
            row_bytes / 4
        );
        let (m, r) = (out.join(format!("model{k}.floe")), out.join(format!("inputs{k}.f32")));
        fs::write(&m, bytes).expect("copy model");
        fs::write(&r, &rows).expect("copy inputs");
        statics +=
            &format!("static MODEL{k}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({m:?}));\n", len = bytes.len());
        table += &format!(
            "    ModelAsset {{ name: {name:?}, bytes: &MODEL{k}.0, inputs: include_bytes!({r:?}), dim: {dim}, \
             context_dim: {cdim}, scratch_words: {scratch} }},\n",
            dim = model.dim,
            cdim = model.context_dim,
            scratch = model.scratch,
        );
        max_dim = max_dim.max(model.dim);
        max_cdim = max_cdim.max(model.context_dim);
        max_scratch = max_scratch.max(model.scratch);
    }
    // The minimal program: the last int8 model of `assets/models.txt` and its
    // first row, with the log-density the host runtime gives (the program exits 0
    // only if the device reproduces its bits).
    let minimal = entries
        .iter()
        .enumerate()
        .rev()
        .find(|(_, f)| f.first().is_some_and(|n| n.ends_with("-int8")))
        .map(|(k, _)| k)
        .expect("assets/models.txt lists an int8 model (named *-int8) for the minimal program");
    {
        let f = &entries[minimal];
        let model_path = manifest.join("assets").join(f[1]);
        let model = validated(&model_path);
        let rows = fs::read(manifest.join("assets").join(f[2])).expect("inputs read above");
        let n = model.dim + model.context_dim;
        let row: Vec<f32> =
            rows[..4 * n].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let mut words = vec![0u128; model.bytes.len().div_ceil(16)];
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        buf[..model.bytes.len()].copy_from_slice(&model.bytes);
        let m = floe_runtime::Model::load(&buf[..model.bytes.len()]).expect("validated above");
        let mut scratch = vec![0.0f32; model.scratch];
        let lp = m
            .log_prob(&row[..model.dim], &row[model.dim..], &mut scratch)
            .unwrap_or_else(|e| panic!("{}: log_prob of its first row: {e:?}", f[0]));
        let bits = |v: &[f32]| {
            v.iter().map(|x| format!("f32::from_bits({:#010x})", x.to_bits())).collect::<Vec<_>>().join(", ")
        };
        let path = out.join("minimal.floe");
        fs::write(&path, &model.bytes).expect("copy minimal model");
        let src = format!(
            "// Generated by build.rs ({name}, first row of {inputs}); do not edit.\n\
             static MODEL: Aligned<[u8; {len}]> = Aligned(*include_bytes!({path:?}));\n\
             const X: [f32; {d}] = [{x}];\n\
             const CONTEXT: [f32; {c}] = [{ctx}];\n\
             const SCRATCH: usize = {scratch};\n\
             /// `log_prob(X, CONTEXT)` on the host: {lp}.\n\
             const EXPECTED: u32 = {bits:#010x};\n",
            name = f[0],
            inputs = f[2],
            len = model.bytes.len(),
            d = model.dim,
            x = bits(&row[..model.dim]),
            c = model.context_dim,
            ctx = bits(&row[model.dim..]),
            scratch = model.scratch.max(1),
            bits = lp.to_bits(),
        );
        fs::write(out.join("minimal.rs"), src).expect("write minimal.rs");
    }
    // Stream models and their series (`assets/streams.txt`: name model series).
    let streams_path = manifest.join("assets/streams.txt");
    println!("cargo:rerun-if-changed={}", streams_path.display());
    let streams = fs::read_to_string(&streams_path).unwrap_or_default();
    let mut stream_table = String::new();
    let mut n_streams = 0;
    for f in streams
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
    {
        let [name, model_file, series_file] = f.as_slice() else {
            panic!("{}: each line is `name model-file series-file`, got {f:?}", streams_path.display())
        };
        let (model_path, series_path) =
            (manifest.join("assets").join(model_file), manifest.join("assets").join(series_file));
        println!("cargo:rerun-if-changed={}", model_path.display());
        println!("cargo:rerun-if-changed={}", series_path.display());
        let model = validated(&model_path);
        let bytes = &model.bytes;
        let layout = model.stream.unwrap_or_else(|| panic!("{} has no stream layout", model_path.display()));
        let series = fs::read(&series_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", series_path.display()));
        assert!(
            series.len().is_multiple_of(4 * layout.channels as usize),
            "{}: not whole samples",
            series_path.display()
        );
        let k = n_streams;
        let (m, r) = (out.join(format!("stream{k}.floe")), out.join(format!("series{k}.f32")));
        fs::write(&m, bytes).expect("copy stream model");
        fs::write(&r, &series).expect("copy series");
        statics +=
            &format!("static STREAM{k}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({m:?}));\n", len = bytes.len());
        stream_table +=
            &format!("    StreamAsset {{ name: {name:?}, bytes: &STREAM{k}.0, series: include_bytes!({r:?}) }},\n");
        max_scratch = max_scratch.max(model.scratch);
        n_streams += 1;
    }
    // Trajectory models and real windows (`assets/trajectories.txt`: name model
    // windows; 20 positions of x, y per window).
    let traj_path = manifest.join("assets/trajectories.txt");
    println!("cargo:rerun-if-changed={}", traj_path.display());
    let trajs = fs::read_to_string(&traj_path).unwrap_or_default();
    let mut traj_table = String::new();
    let mut n_trajs = 0;
    for f in trajs
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
    {
        let [name, model_file, windows_file] = f.as_slice() else {
            panic!("{}: each line is `name model-file windows-file`, got {f:?}", traj_path.display())
        };
        let (model_path, windows_path) =
            (manifest.join("assets").join(model_file), manifest.join("assets").join(windows_file));
        println!("cargo:rerun-if-changed={}", model_path.display());
        println!("cargo:rerun-if-changed={}", windows_path.display());
        let model = validated(&model_path);
        assert!(model.trajectory, "{} is not a trajectory model", model_path.display());
        let windows = fs::read(&windows_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", windows_path.display()));
        assert!(
            !windows.is_empty() && windows.len().is_multiple_of(8 * 20),
            "{}: not whole windows of 20 positions",
            windows_path.display()
        );
        let k = n_trajs;
        let (m, r) = (out.join(format!("traj{k}.floe")), out.join(format!("windows{k}.f32")));
        fs::write(&m, &model.bytes).expect("copy trajectory model");
        fs::write(&r, &windows).expect("copy windows");
        statics += &format!(
            "static TRAJ{k}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({m:?}));\n",
            len = model.bytes.len()
        );
        traj_table +=
            &format!("    TrajectoryAsset {{ name: {name:?}, bytes: &TRAJ{k}.0, windows: include_bytes!({r:?}) }},\n");
        max_scratch = max_scratch.max(model.scratch);
        n_trajs += 1;
    }
    // Models the bounds program measures (`assets/bounds.txt`: name model). A
    // board with less than 1 MiB of flash embeds only files of at most 64 KiB
    // (the same rule as `xtask/src/host.rs`, `bounds_models`).
    let bounds_path = manifest.join("assets/bounds.txt");
    println!("cargo:rerun-if-changed={}", bounds_path.display());
    let bounds =
        fs::read_to_string(&bounds_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", bounds_path.display()));
    let small_flash = target.starts_with("thumbv6m");
    let mut bounds_table = String::new();
    let mut n_bounds = 0;
    let mut bounds_row = 0;
    for f in bounds
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
    {
        let [name, model_file] = f.as_slice() else {
            panic!("{}: each line is `name model-file`, got {f:?}", bounds_path.display())
        };
        let model_path = manifest.join("assets").join(model_file);
        println!("cargo:rerun-if-changed={}", model_path.display());
        let model = validated(&model_path);
        if small_flash && model.bytes.len() > 64 * 1024 {
            continue;
        }
        let k = n_bounds;
        let m = out.join(format!("bounds{k}.floe"));
        fs::write(&m, &model.bytes).expect("copy bounds model");
        statics += &format!(
            "static BOUNDS{k}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({m:?}));\n",
            len = model.bytes.len()
        );
        bounds_table += &format!("    BoundsAsset {{ name: {name:?}, bytes: &BOUNDS{k}.0 }},\n");
        bounds_row = bounds_row.max(2 * model.dim + model.context_dim);
        max_scratch = max_scratch.max(model.scratch);
        n_bounds += 1;
    }
    let consts = format!(
        "// Generated by build.rs from {list}; do not edit.\n\
         {statics}\
         /// The embedded models, in the order of `assets/models.txt`.\n\
         pub static MODELS: [ModelAsset; {n}] = [\n{table}];\n\
         /// The embedded stream models, in the order of `assets/streams.txt`.\n\
         pub static STREAMS: [StreamAsset; {n_streams}] = [\n{stream_table}];\n\
         /// The embedded trajectory models, in the order of `assets/trajectories.txt`.\n\
         pub static TRAJECTORIES: [TrajectoryAsset; {n_trajs}] = [\n{traj_table}];\n\
         /// The models the bounds program measures, in the order of `assets/bounds.txt`.\n\
         pub static BOUNDS: [BoundsAsset; {n_bounds}] = [\n{bounds_table}];\n\
         /// Values of the bounds program's row: the largest `2 D + C` of its models.\npub const BOUNDS_ROW: usize = {bounds_row};\n\
         /// Largest data dimension of the embedded models.\npub const MAX_DIM: usize = {max_dim};\n\
         /// Largest context dimension.\npub const MAX_CONTEXT_DIM: usize = {max_cdim};\n\
         /// Largest scratch (f32 words): the size of the arena.\npub const SCRATCH_WORDS: usize = {max_scratch};\n",
        list = list_path.display(),
        n = entries.len(),
    );
    fs::write(out.join("models.rs"), consts).expect("write models.rs");
}
