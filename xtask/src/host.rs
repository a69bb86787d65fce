//! The host reference: the firmware's script compiled for the host, printing the
//! lines the device must print.

use std::path::Path;

#[path = "../../firmware/src/script.rs"]
#[allow(dead_code)]
pub(crate) mod script;

#[path = "../../firmware/src/bounds.rs"]
pub(crate) mod bounds;

#[path = "../../firmware/src/kernel_cost.rs"]
pub(crate) mod kernel_cost;

use floe_runtime::Error;
use script::Sink;

use crate::boards::firmware_dir;
use crate::tools::fail;

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

    fn bound(&mut self, _what: &'static str, _i: u32, _ticks: u64, _stack: u32) {}
}

/// The host has no stack to paint.
struct NoStack;

impl bounds::Stack for NoStack {
    fn paint(&mut self) {}
    fn depth(&mut self) -> u32 {
        0
    }
    fn high_water(&mut self) -> u32 {
        0
    }
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
    pub models: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (name, stream model bytes, series) from `firmware/assets/streams.txt`
    pub streams: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (name, trajectory model bytes, windows) from `firmware/assets/trajectories.txt`
    pub trajectories: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (name, model bytes) from `firmware/assets/bounds.txt`
    pub bounds: Vec<(String, Vec<u8>)>,
}

/// The models of `firmware/assets/bounds.txt` a board embeds: all of them, or on
/// a board with less than 1 MiB of flash (the micro:bit) the files of at most
/// 64 KiB (the same rule as `firmware/build.rs`).
pub fn bounds_models<'a>(assets: &'a Assets, target: &str) -> Vec<&'a (String, Vec<u8>)> {
    let small_flash = target.starts_with("thumbv6m");
    assets.bounds.iter().filter(|(_, m)| !small_flash || m.len() <= 64 * 1024).collect()
}

/// `name file` lines of `bounds.txt`, files read.
fn read_bounds(list_path: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = list_path.parent().unwrap_or(Path::new("."));
    let list = std::fs::read_to_string(list_path)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", list_path.display())));
    let mut out = Vec::new();
    for line in list.lines() {
        match line.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>().as_slice() {
            [] => {}
            [name, file] => {
                let p = dir.join(file);
                let bytes = std::fs::read(&p).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", p.display())));
                out.push(((*name).to_owned(), bytes));
            }
            _ => fail(format!("{}: bad line {line:?}", list_path.display())),
        }
    }
    out
}

/// The bounds program's lines on the host for the models `target` embeds.
pub fn host_bounds_lines(assets: &Assets, target: &str) -> Result<Vec<String>, Error> {
    let mut sink = HostSink::default();
    for (name, m) in bounds_models(assets, target) {
        let words = aligned(m);
        let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..m.len()];
        let model = floe_runtime::Model::load(bytes)?;
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let mut row = vec![0.0f32; 2 * model.dim() + model.context_dim()];
        sink.begin(name);
        let mut probe = bounds::Probe { sink: &mut sink, clock: &mut NoClock, stack: &mut NoStack };
        bounds::bounds(bytes, &mut row, &mut scratch, &mut probe)?;
    }
    Ok(sink.lines)
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
    /// The assets as the firmware embeds them ([`Assets::committed`], each
    /// model with its requantization words stored, as `firmware/build.rs` does).
    pub fn load() -> Assets {
        let c = Assets::committed();
        let embed = |list: Vec<(String, Vec<u8>, Vec<u8>)>| {
            list.into_iter().map(|(name, m, rows)| (name, as_embedded(m), rows)).collect::<Vec<_>>()
        };
        Assets {
            models: embed(c.models),
            streams: embed(c.streams),
            trajectories: embed(c.trajectories),
            bounds: c.bounds.into_iter().map(|(n, m)| (n, as_embedded(m))).collect(),
        }
    }

    /// The files of `firmware/assets/` as committed (int8 models with bf16 scales).
    pub fn committed() -> Assets {
        let dir = firmware_dir().join("assets");
        let models = read_list(&dir.join("models.txt"));
        if models.is_empty() {
            fail("firmware/assets/models.txt lists no models");
        }
        Assets {
            models,
            streams: read_list(&dir.join("streams.txt")),
            trajectories: read_list(&dir.join("trajectories.txt")),
            bounds: read_bounds(&dir.join("bounds.txt")),
        }
    }

    /// The same assets with the first model's file replaced.
    pub fn with_first_model(&self, bytes: Vec<u8>) -> Assets {
        let mut models = self.models.clone();
        models[0].1 = bytes;
        Assets {
            models,
            streams: self.streams.clone(),
            trajectories: self.trajectories.clone(),
            bounds: self.bounds.clone(),
        }
    }

    /// The same assets with the first input row's first value moved by 0.01 %
    /// (one ulp can round away in the outputs).
    pub fn with_nudged_input(&self) -> Assets {
        let mut models = self.models.clone();
        let inputs = &mut models[0].2;
        let v = f32::from_le_bytes([inputs[0], inputs[1], inputs[2], inputs[3]]);
        inputs[..4].copy_from_slice(&(v * 1.0001 + 1e-6).to_le_bytes());
        Assets {
            models,
            streams: self.streams.clone(),
            trajectories: self.trajectories.clone(),
            bounds: self.bounds.clone(),
        }
    }
}

/// The model file as `firmware/build.rs` embeds it on every board: its int8
/// hidden units' requantization words stored (the same model, the same bits,
/// a longer file). The Cortex-M4F's row-pair layout keeps the length, and the
/// results, so the host reads row-major weights.
fn as_embedded(model: Vec<u8>) -> Vec<u8> {
    use floe_runtime::format::requant_words::{store, stored_len};
    let stored = stored_len(&model).and_then(|n| {
        let mut out = vec![0u8; n];
        store(&model, &mut out).map(|(n, _)| out[..n].to_vec())
    });
    stored.unwrap_or_else(|e| fail(format!("a bundled model: requantization words: {e:?}")))
}

/// A 16-byte aligned copy of a model file (the runtime reads tensors in place).
pub fn aligned(model: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; model.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..model.len()].copy_from_slice(model);
    words
}

/// Run a program on the host runtime over every model; returns its lines.
pub fn host_lines(program: &str, assets: &Assets) -> Result<Vec<String>, Error> {
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
        "cost" => script::each_model(&refs, &mut row, &mut scratch, &mut sink, &mut |b, i, x, c, s, k| {
            script::cost(b, i, x, c, s, k, &mut NoClock)
        })?,
        "kernels" => kernel_cost::kernel_cost(&mut sink, &mut NoClock)?,
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
        "trajectory" => {
            for (name, m, windows) in &assets.trajectories {
                let words = aligned(m);
                let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..m.len()];
                let model = floe_runtime::Model::load(bytes)?;
                let mut scratch = vec![0.0f32; model.scratch_len()];
                sink.begin(name);
                let mut tracker = Box::new(script::TrajTracker::new(model, script::SAMPLE_SEED)?);
                script::trajectory(windows, &mut tracker, &mut scratch, &mut sink, &mut NoClock)?;
            }
        }
        other => fail(format!("unknown program {other}")),
    }
    Ok(sink.lines)
}

/// Flip one bit of a weight in the middle of the model's largest tensor and fix
/// the CRC: a model the runtime loads, differing from the original in one number.
pub fn tampered_model(model: &[u8]) -> Vec<u8> {
    let words = aligned(model);
    let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..model.len()];
    let m = floe_runtime::Model::load(bytes).unwrap_or_else(|e| fail(format!("model: {e:?}")));
    let n_tensors = m.header().n_tensors;
    let largest = (0..n_tensors)
        .filter_map(|i| floe_runtime::exporter_hooks::tensor_record(&m, i).ok())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::count_differences;

    fn assets() -> Assets {
        Assets::load()
    }

    #[test]
    fn host_reference_covers_every_row_sample_and_bad_call() {
        let a = assets();
        let lines = host_lines("golden", &a).expect("golden runs on the host");
        // Rows of dim + context f32 each (header bytes 16..20: D, C).
        let width = |m: &[u8]| usize::from(u16::from_le_bytes([m[16], m[17]]) + u16::from_le_bytes([m[18], m[19]]));
        let rows: usize = a.models.iter().map(|(_, m, inputs)| inputs.len() / (4 * width(m))).sum();
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
}
