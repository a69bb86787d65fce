//! Measurements from the device runs: parsing, scaling to instructions, the
//! clock check, and the cost table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::boards::Board;
use crate::elf::Sizes;
use crate::host::script::TRAJ_PARTICLES;
use crate::host::Assets;
use crate::tools::fail;

/// Measurements parsed from a device run.
#[derive(Default, Clone)]
pub struct Measured {
    /// what -> (calls, instructions)
    pub cost: BTreeMap<String, (u64, u64)>,
    /// Painted stack: (bytes used, bytes available).
    pub stack: Option<(u64, u64)>,
    /// Bytes of the static arena.
    pub arena: Option<u64>,
    /// Sections of the golden program.
    pub sizes: Option<Sizes>,
    /// The trajectory program: (stack bytes used, arena bytes, tracker bytes).
    pub trajectory: Option<(u64, u64, u64)>,
}

/// Kernel and clock measurements are global; the others belong to the model of
/// the preceding `begin` line (key `model/what`).
pub fn parse_measurements(lines: &[String], m: &mut Measured) {
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
            ["measure", "stack", used, "of", _, "arena", arena, "tracker", tracker] => {
                if let (Ok(u), Ok(a), Ok(t)) = (used.parse(), arena.parse(), tracker.parse()) {
                    m.trajectory = Some((u, a, t));
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
pub fn per_call(board: &Board, m: &Measured, what: &str) -> Option<f64> {
    m.cost.get(what).filter(|(c, t)| *c > 0 && *t > 0).map(|(c, t)| *t as f64 * board.instructions_per_tick / *c as f64)
}

/// The counter's factor is right if a loop of `2 n` instructions reads as that,
/// to within a tick at each end.
pub fn check_clock(board: &Board, m: &Measured) {
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

pub fn table(report: &[(&Board, Measured)], assets: &Assets) -> String {
    let mut s = String::new();
    // A measurement the programs did not print fails the run: a table with a
    // hole in it would look like a result.
    let f =
        |v: Option<f64>| format!("{:.0}", v.unwrap_or_else(|| fail("a measurement is missing from the device output")));
    let f2 =
        |v: Option<f64>| format!("{:.2}", v.unwrap_or_else(|| fail("a measurement is missing from the device output")));
    let _ = writeln!(
        s,
        "\nfirmware cost (release build; QEMU -icount shift=0: instructions = SysTick ticks x 1 GHz / SysTick clock, minstret on RISC-V)\n"
    );
    let _ = writeln!(
        s,
        "| board | .text | .rodata | .data | .bss | max stack | arena | f32 MAC | w8 MAC | int8 MAC | int8 MAC, plain | clock check |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (board, m) in report {
        let Some(z) = m.sizes else { fail(format!("{}: no section sizes", board.name)) };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            board.name,
            z.text + z.vector,
            z.rodata,
            z.data,
            z.bss,
            m.stack.map_or_else(|| fail(format!("{}: golden printed no stack", board.name)), |(u, _)| u.to_string()),
            m.arena.map_or_else(|| fail(format!("{}: golden printed no arena", board.name)), |a| a.to_string()),
            f2(per_call(board, m, "dense-f32-mac")),
            f2(per_call(board, m, "dense-w8-mac")),
            f2(per_call(board, m, "dense-int8-pairs-mac")),
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
    if !assets.trajectories.is_empty() {
        let _ = writeln!(
            s,
            "\n| board | trajectory model | file bytes | predict (N·T samples) | update | per particle·step | \
             predict / update | query next step | query step 6 (mixture) | tracker | arena | stack |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (board, m) in report {
            for (name, bytes, _) in &assets.trajectories {
                let predict = per_call(board, m, &format!("{name}/traj-predict"));
                let update = per_call(board, m, &format!("{name}/traj-update"));
                let per_particle = update.map(|u| u / TRAJ_PARTICLES as f64);
                let ratio = predict.zip(update).map(|(p, u)| p / u);
                let (stack, arena, tracker) = m.trajectory.map_or_else(
                    || fail(format!("{}: trajectory printed no stack", board.name)),
                    |(s, a, t)| (s.to_string(), a.to_string(), t.to_string()),
                );
                let _ = writeln!(
                    s,
                    "| {} | {name} | {} | {} | {} | {} | {} | {} | {} | {tracker} | {arena} | {stack} |",
                    board.name,
                    bytes.len(),
                    f(predict),
                    f(update),
                    f(per_particle),
                    f(ratio),
                    f(per_call(board, m, &format!("{name}/traj-query-next"))),
                    f(per_call(board, m, &format!("{name}/traj-query-step6"))),
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nsizes in bytes of the golden program (.text includes the vector table; .rodata the models); max stack\n\
         and arena in bytes; MAC = instructions per multiply-accumulate of a 32 x 32 dense kernel; load / log_prob /\n\
         sample in instructions per call; clock check = instructions counted per iteration of a 2-instruction loop;\n\
         trajectory: instructions per call, N = 64 particles, T = 12 steps; an update reweights every particle\n\
         for one step; tracker, arena and stack in bytes (the tracker lives on the stack)."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boards::BOARDS;
    use crate::qemu::is_measurement;

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
        let mut t = Measured::default();
        parse_measurements(&["measure stack 9000 of 16000 arena 956 tracker 7400".to_string()], &mut t);
        assert_eq!((t.trajectory, t.stack), (Some((9000, 956, 7400)), None));
    }

    #[test]
    fn a_missing_measurement_fails_the_table() {
        let assets = crate::host::Assets::load();
        let empty = [(&BOARDS[0], Measured::default())];
        assert!(std::panic::catch_unwind(|| table(&empty, &assets)).is_err());
    }
}
