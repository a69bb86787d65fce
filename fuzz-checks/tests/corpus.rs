//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and every crash
//! the fuzzer found (`fuzz/regressions/<target>/`) through the same checks
//! libFuzzer runs, so that CI re-checks them on every push without nightly.

use std::path::{Path, PathBuf};

use floe_fuzz_checks::{assert_canonical, load, Aligned, SEEDS, TARGETS};
use floe_runtime::format::{Header, TensorRecord, TENSOR_RECORD_LEN};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn every_seed_loads_and_survives_every_target() {
    for s in SEEDS {
        let buf = Aligned::new(s.bytes);
        floe_runtime::Model::load(buf.bytes()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        load(s.bytes);
    }
    for (_, f) in TARGETS {
        for k in 0..=255u8 {
            f(&[k, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        }
        f(&[]);
    }
}

/// The encoder reproduces every bundled and seed model byte for byte from its
/// decoded records and tensors, and a file moved off the canonical layout is
/// caught by the check (so the check can fail).
#[test]
fn every_seed_is_its_own_canonical_encoding() {
    for s in SEEDS {
        assert_canonical(Aligned::new(s.bytes).bytes());
    }
    // A file of the same length with one padding byte set (CRC fixed): every
    // record and tensor decodes the same, only the bytes differ.
    let seed = SEEDS.iter().find(|s| s.name == "spline-coupling.floe").expect("seed").bytes;
    let h = Header::decode(seed).expect("header");
    let record = |i: u32| {
        let at = h.tensor_table as usize + i as usize * TENSOR_RECORD_LEN;
        TensorRecord::decode(&seed[at..at + TENSOR_RECORD_LEN], i).expect("record")
    };
    let pad = (1..h.n_tensors)
        .map(|i| (record(i - 1), record(i)))
        .find_map(|(a, b)| (a.offset as usize + a.n_bytes() < b.offset as usize).then(|| b.offset as usize - 1))
        .expect("the seed has padding before some tensor");
    let mut moved = seed.to_vec();
    moved[pad] = 0x5A;
    let n = moved.len();
    let crc = floe_runtime::format::crc32(&moved[..n - 4]);
    moved[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let caught = std::panic::catch_unwind(|| assert_canonical(Aligned::new(&moved).bytes()));
    assert!(caught.is_err(), "a non-zero padding byte went unnoticed");
}

#[test]
fn every_crash_found_stays_fixed() {
    for (name, f) in TARGETS {
        for p in files(&fuzz_dir().join("regressions").join(name)) {
            eprintln!("{name}: {}", p.display());
            f(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
        }
    }
}

#[test]
fn the_corpus_replays_clean() {
    let mut total = 0;
    for (name, f) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty: run `cargo xtask fuzz`");
        for p in &corpus {
            f(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
            total += 1;
        }
    }
    eprintln!("replayed {total} corpus inputs");
}
