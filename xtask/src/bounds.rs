//! The bounds program's measurements: each call's worst instruction count and
//! own stack per model, checked against the bounds stated as functions of the
//! model's records (README "Bounds"), and their table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::boards::Board;
use crate::host::{aligned, bounds_models, Assets};
use crate::tools::fail;
use floe_runtime::exporter_hooks::{log_prob_work, Work};

/// The Cortex-M4F bounds (README "Bounds"), in instructions: `Model::load` of a
/// file, and one `log_prob` on any input. Each MAC constant is the dense
/// kernel's measured cost (`cost` program: 5.05 f32, 7.73 w8, 2.59 int8); the
/// other constants are a non-negative least-squares fit of the eleven models'
/// worst cases (`firmware/assets/bounds.txt`, 2026-12-02) raised by 15 % and
/// rounded up. Every measured call must stay below them.
pub const M4F_LOAD: LoadBound = LoadBound { per_byte: 9.0, per_tensor: 520.0, per_masked_weight: 25.0, fixed: 2000.0 };
/// See [`M4F_LOAD`].
pub const M4F_LOG_PROB: LogProbBound = LogProbBound {
    mac_f32: 5.1,
    mac_w8: 7.8,
    mac_int8: 2.6,
    int8_row: 65.0,
    spline_bin: 430.0,
    coord: 10.0,
    layer: 1600.0,
    fixed: 2000.0,
};
/// The Cortex-M4F bound on each call's own stack, bytes, whatever the model:
/// the runtime keeps everything model-sized in the caller's scratch (a
/// tracker's particles live in the tracker, outside the calls' stack).
pub const M4F_STACK: [(&str, u64); 6] =
    [("load", 800), ("log_prob", 1200), ("score", 1200), ("forward", 1200), ("inverse", 1200), ("sample", 1200)];
/// The same for the calls of stream and trajectory models, where present
/// (measured 2026-12-02: 1,108 / 2,084 / 1,724 / 1,732 / 84 bytes; the
/// bounds are about 1.15 times that, rounded up).
pub const M4F_STACK_STATEFUL: [(&str, u64); 5] =
    [("stream-push", 1300), ("predict", 2400), ("log_prob_future", 2000), ("log_density", 2000), ("update", 200)];

/// Instructions of `Model::load`: linear in the file's size, its tensor count
/// and its MADE weights (each mask checked).
pub struct LoadBound {
    pub per_byte: f64,
    pub per_tensor: f64,
    pub per_masked_weight: f64,
    pub fixed: f64,
}

impl LoadBound {
    pub fn of(&self, t: &Terms) -> f64 {
        self.per_byte * t.file_len as f64
            + self.per_tensor * t.n_tensors as f64
            + self.per_masked_weight * t.work.masked_weights as f64
            + self.fixed
    }
}

/// Instructions of one `log_prob`: linear in the counts of [`Work`].
pub struct LogProbBound {
    pub mac_f32: f64,
    pub mac_w8: f64,
    pub mac_int8: f64,
    pub int8_row: f64,
    pub spline_bin: f64,
    pub coord: f64,
    pub layer: f64,
    pub fixed: f64,
}

impl LogProbBound {
    pub fn of(&self, w: &Work) -> f64 {
        self.mac_f32 * (w.macs_f32 + w.macs_lu) as f64
            + self.mac_w8 * w.macs_w8 as f64
            + self.mac_int8 * w.macs_int8 as f64
            + self.int8_row * w.int8_rows as f64
            + self.spline_bin * w.spline_bins as f64
            + self.coord * w.coords as f64
            + self.layer * w.layers as f64
            + self.fixed
    }
}

/// The terms of a model's bounds: its header's sizes and the work of one
/// `log_prob`.
#[derive(Debug, Clone, Copy)]
pub struct Terms {
    pub file_len: usize,
    pub n_tensors: usize,
    pub work: Work,
}

/// The terms of a model file.
pub fn terms(file: &[u8]) -> Terms {
    let words = aligned(file);
    let bytes = &bytemuck::cast_slice::<u128, u8>(&words)[..file.len()];
    let m = floe_runtime::Model::load(bytes).unwrap_or_else(|e| fail(format!("bounds model: {e:?}")));
    let work = log_prob_work(&m).unwrap_or_else(|e| fail(format!("bounds model: {e:?}")));
    Terms { file_len: file.len(), n_tensors: m.header().n_tensors as usize, work }
}

/// The worst of each call on one model: what -> (instructions, stack bytes,
/// the case of the worst instruction count).
pub type Worst = BTreeMap<String, (f64, u64, u32)>;

/// One model's measurements: the worst of each call, and `log_prob`'s
/// instructions per input case.
#[derive(Default)]
pub struct ModelCalls {
    pub worst: Worst,
    pub log_prob_cases: BTreeMap<u32, f64>,
}

/// `measure bound` lines, per model (in the order of the `begin` lines).
pub fn parse(board: &Board, lines: &[String]) -> Vec<(String, ModelCalls)> {
    let mut out: Vec<(String, ModelCalls)> = Vec::new();
    for l in lines {
        match l.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["begin", name] => out.push(((*name).to_owned(), ModelCalls::default())),
            ["measure", "bound", what, case, ticks, stack] => {
                let (Ok(case), Ok(ticks), Ok(stack)) =
                    (case.parse::<u32>(), ticks.parse::<u64>(), stack.parse::<u64>())
                else {
                    fail(format!("bad bounds line {l:?}"))
                };
                let Some((_, calls)) = out.last_mut() else { fail(format!("bounds line before any model: {l:?}")) };
                let instr = ticks as f64 * board.instructions_per_tick;
                if *what == "log_prob" {
                    calls.log_prob_cases.insert(case, instr);
                }
                let e = calls.worst.entry((*what).to_owned()).or_insert((0.0, 0, case));
                if instr > e.0 {
                    (e.0, e.2) = (instr, case);
                }
                e.1 = e.1.max(stack);
            }
            _ => {}
        }
    }
    out
}

/// Check a board's measurements against the bounds (Cortex-M4F) and return the
/// table. Fails on a model without measurements, a call above its bound, or an
/// early-rejected input (NaN, ∞) that is not cheap.
pub fn check(board: &Board, lines: &[String], assets: &Assets) -> String {
    let measured = parse(board, lines);
    let models = bounds_models(assets, board.target);
    if measured.len() != models.len() {
        fail(format!("{}: bounds measured for {} models, {} embedded", board.name, measured.len(), models.len()));
    }
    let m4f = board.target.starts_with("thumbv7em");
    let mut s = String::new();
    let _ = writeln!(s, "\nbounds on {} (worst over the inputs; instructions, own stack in bytes)\n", board.name);
    let _ = writeln!(
        s,
        "| model | file bytes | load | load bound | log_prob (worst input) | log_prob bound | NaN input | sample | inverse | stack load | stack log_prob | stack sample |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((name, calls), (want, file)) in measured.iter().zip(models) {
        let worst = &calls.worst;
        if name != want {
            fail(format!("{}: bounds for {name}, expected {want}", board.name));
        }
        let t = terms(file);
        let get = |what: &str| {
            *worst.get(what).unwrap_or_else(|| fail(format!("{}: no `{what}` measured for {name}", board.name)))
        };
        let (load, load_stack, _) = get("load");
        let (lp, lp_stack, lp_case) = get("log_prob");
        let (sample, sample_stack, _) = get("sample");
        let (inverse, _, _) = get("inverse");
        let (load_bound, lp_bound) = (M4F_LOAD.of(&t), M4F_LOG_PROB.of(&t.work));
        // The NaN case (8) is rejected on entry: it must cost next to nothing.
        let nan = *calls
            .log_prob_cases
            .get(&8)
            .unwrap_or_else(|| fail(format!("{}: no NaN-input log_prob for {name}", board.name)));
        // A count is exact to one tick (62.5 instructions on the Cortex-M0): fail
        // only when the rejection certainly took more than 400.
        if nan - board.instructions_per_tick > 400.0 {
            fail(format!("{}: {name}: a NaN input took {nan} instructions before its rejection", board.name));
        }
        if m4f {
            if load > load_bound || lp > lp_bound {
                fail(format!(
                    "{name} on {}: load {load} (bound {load_bound:.0}), log_prob {lp} (bound {lp_bound:.0}): above the README's bounds",
                    board.name
                ));
            }
            let stateful = M4F_STACK_STATEFUL.iter().filter_map(|&(w, l)| worst.get(w).map(|&(_, u, _)| (w, u, l)));
            for (what, used, limit) in M4F_STACK.iter().map(|&(w, l)| (w, get(w).1, l)).chain(stateful) {
                if used > limit {
                    fail(format!("{name} on {}: {what} used {used} bytes of stack, bound {limit}", board.name));
                }
            }
        }
        let bound = |b: f64, v: f64| if m4f { format!("{b:.0} ({:.2})", v / b) } else { "-".to_owned() };
        let _ = writeln!(
            s,
            "| {name} | {} | {load:.0} | {} | {lp:.0} (case {lp_case}) | {} | {nan:.0} | {sample:.0} | {inverse:.0} | {load_stack} | {lp_stack} | {sample_stack} |",
            t.file_len,
            bound(load_bound, load),
            bound(lp_bound, lp),
        );
    }
    // The stream and tracker calls, where a model has them.
    let _ = writeln!(s, "\n| model | call | worst instructions | own stack (bytes) |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for (name, calls) in &measured {
        for (what, _) in M4F_STACK_STATEFUL {
            if let Some((instr, stack, _)) = calls.worst.get(what) {
                let _ = writeln!(s, "| {name} | {what} | {instr:.0} | {stack} |");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boards::BOARDS;

    /// The bounds grow with what they count, and a model's measured worst case
    /// that exceeds them fails the check.
    #[test]
    fn terms_count_the_work_and_the_check_can_fail() {
        let assets = Assets::load();
        let thyroid = terms(&assets.bounds[0].1);
        // Four spline couplings of 3 of 6 coordinates with 8 bins, and four
        // 6 x 6 LU layers; 3 -> 64 -> 64 -> 69 f32 conditioners.
        assert_eq!(thyroid.work.spline_bins, 4 * 3 * 8);
        assert_eq!(thyroid.work.macs_lu, 4 * 36);
        assert_eq!(thyroid.work.macs_f32, 4 * (3 * 64 + 64 * 64 + 64 * 69));
        let maf = terms(&assets.bounds.iter().find(|(n, _)| n == "maf").expect("maf").1);
        assert!(maf.work.masked_weights > 0 && thyroid.work.masked_weights == 0);
        // Device lines for every model, each call at half its bound: passes;
        // then one log_prob over its bound: the check fails.
        let board = &BOARDS[0];
        let mut lines = Vec::new();
        for (name, file) in bounds_models(&assets, board.target) {
            let t = terms(file);
            lines.push(format!("begin {name}"));
            let tick = |v: f64| (v / board.instructions_per_tick) as u64;
            lines.push(format!("measure bound load 0 {} 700", tick(M4F_LOAD.of(&t) / 2.0)));
            for k in 0..10 {
                let v = if k >= 8 { 2 } else { tick(M4F_LOG_PROB.of(&t.work) / 2.0) };
                lines.push(format!("measure bound log_prob {k} {v} 1000"));
            }
            for what in ["score", "forward", "inverse", "sample"] {
                lines.push(format!("measure bound {what} 1 {} 1000", tick(M4F_LOG_PROB.of(&t.work) / 2.0)));
            }
        }
        let table = check(board, &lines, &assets);
        assert!(table.contains("| thyroid-f32 | 144408 |"), "{table}");
        let over: Vec<String> = lines
            .iter()
            .map(|l| {
                if l.starts_with("measure bound log_prob 1 ") {
                    format!("measure bound log_prob 1 {} 1000", u64::MAX / 1_000_000)
                } else {
                    l.clone()
                }
            })
            .collect();
        let failed = std::panic::catch_unwind(|| check(board, &over, &assets));
        assert!(failed.is_err(), "a log_prob above its bound passed the check");
    }
}
