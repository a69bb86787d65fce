//! The runtime's anomaly API and streaming front end: header fields round-trip,
//! malformed ones are rejected, stream windows equal hand-built ones bit for bit,
//! rejected samples leave the stream untouched, and the alarm rule raises and
//! clears as its definition says.

use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::{AlignedBytes, FrozenModel};
use floe_runtime::format::layout::header as hdr;
use floe_runtime::format::{AlarmRule, AnomalyThreshold, StreamLayout};
use floe_runtime::{Alarm, AlarmState, Error, Model, Stream};
use floe_tests::{config, random_flow, rows};

fn frozen(dim: usize) -> FrozenModel {
    let (flow, xs, cs) = random_flow(&config(TransformKind::SplineCoupling, dim, 0), 3);
    flow.frozen(&xs, &cs).expect("freeze")
}

fn stream_model(window: u16, channels: u16, differences: bool) -> AlignedBytes {
    stream_model_with(window, channels, differences, None, 7.5)
}

fn stream_model_with(
    window: u16,
    channels: u16,
    differences: bool,
    alarm: Option<AlarmRule>,
    threshold: f32,
) -> AlignedBytes {
    let layout = StreamLayout { window, channels, differences };
    let mut m = frozen(layout.dim());
    m.stream = Some(layout);
    m.anomaly = Some(AnomalyThreshold { threshold, target_fpr: 0.01 });
    m.alarm = alarm;
    AlignedBytes::new(&m.to_bytes().expect("serialize"))
}

fn recrc(b: &mut [u8]) {
    let n = b.len();
    let crc = floe_runtime::format::crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn threshold_and_layout_round_trip_and_score() {
    let buf = stream_model(5, 2, true);
    let m = Model::load(&buf).expect("loads");
    assert_eq!(m.anomaly_threshold(), Some(AnomalyThreshold { threshold: 7.5, target_fpr: 0.01 }));
    assert_eq!(m.stream_layout(), Some(StreamLayout { window: 5, channels: 2, differences: true }));
    assert_eq!(m.dim(), 8);
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let x = rows(1, 8, 1.0, 1);
    let s = m.score(&x, &[], &mut scratch).expect("score");
    let lp = m.log_prob(&x, &[], &mut scratch).expect("log_prob");
    assert_eq!(s.nats.to_bits(), (-lp).to_bits());
    assert_eq!(s.per_dim, s.nats / 8.0);
    assert_eq!(s.anomaly, Some(s.nats > 7.5));
    // Without a threshold: no verdict.
    let plain = AlignedBytes::new(&frozen(3).to_bytes().unwrap());
    let m = Model::load(&plain).unwrap();
    assert_eq!(m.score(&rows(1, 3, 1.0, 2), &[], &mut scratch).unwrap().anomaly, None);
    assert!(matches!(Stream::<16>::new(m), Err(Error::NotAStreamModel)));
}

#[test]
fn malformed_anomaly_and_stream_fields_are_bad_headers() {
    let good = stream_model(4, 1, false);
    type Edit = Box<dyn Fn(&mut [u8])>;
    let edits: Vec<(&str, Edit)> = vec![
        ("NaN threshold", Box::new(|b| b[hdr::THRESHOLD..hdr::THRESHOLD + 4].copy_from_slice(&f32::NAN.to_le_bytes()))),
        ("fpr 0", Box::new(|b| b[hdr::TARGET_FPR..hdr::TARGET_FPR + 4].copy_from_slice(&0f32.to_le_bytes()))),
        ("fpr 1", Box::new(|b| b[hdr::TARGET_FPR..hdr::TARGET_FPR + 4].copy_from_slice(&1f32.to_le_bytes()))),
        (
            "window does not match dim",
            Box::new(|b| b[hdr::WINDOW..hdr::WINDOW + 2].copy_from_slice(&5u16.to_le_bytes())),
        ),
        ("zero channels", Box::new(|b| b[hdr::CHANNELS..hdr::CHANNELS + 2].copy_from_slice(&0u16.to_le_bytes()))),
        ("unknown stream flag", Box::new(|b| b[hdr::STREAM_FLAGS] = 4)),
        ("alarm flag with a zero rule", Box::new(|b| b[hdr::STREAM_FLAGS] = 2)),
        ("unknown header flag", Box::new(|b| b[hdr::FLAGS] |= 4)),
        ("threshold without its flag", Box::new(|b| b[hdr::FLAGS] &= !1)),
        ("window without its flag", Box::new(|b| b[hdr::FLAGS] &= !2)),
        ("alarm byte without its flag", Box::new(|b| b[hdr::ALARM_CLEAR] = 1)),
    ];
    for (what, edit) in edits {
        let mut b = good.to_vec();
        edit(&mut b);
        recrc(&mut b);
        assert_eq!(Model::load(&AlignedBytes::new(&b)).err(), Some(Error::BadHeader), "{what}");
    }
}

#[test]
fn alarm_rules_round_trip_and_malformed_ones_are_bad_headers() {
    let rule = AlarmRule { window: 8, raise: 3, clear: 1 };
    let good = stream_model_with(4, 1, false, Some(rule), 7.5);
    let m = Model::load(&good).expect("loads");
    assert_eq!(m.alarm_rule(), Some(rule));
    assert_eq!(Stream::<8>::new(m).unwrap().alarm_rule(), Some(rule));
    // No stored rule: the stream steps the per-window verdict.
    let plain = stream_model(4, 1, false);
    let pm = Model::load(&plain).unwrap();
    assert_eq!(pm.alarm_rule(), None);
    assert_eq!(Stream::<8>::new(pm).unwrap().alarm_rule(), Some(AlarmRule::PER_WINDOW));
    type Edit = Box<dyn Fn(&mut [u8])>;
    let edits: Vec<(&str, Edit)> = vec![
        ("m = 0", Box::new(|b| b[hdr::ALARM_WINDOW] = 0)),
        ("m = 33", Box::new(|b| b[hdr::ALARM_WINDOW] = 33)),
        ("k = 0", Box::new(|b| (b[hdr::ALARM_RAISE], b[hdr::ALARM_CLEAR]) = (0, 0))),
        ("k > m", Box::new(|b| b[hdr::ALARM_RAISE] = 9)),
        ("j = k", Box::new(|b| b[hdr::ALARM_CLEAR] = 3)),
        (
            "a rule without a threshold",
            Box::new(|b| {
                b[hdr::FLAGS] &= !1;
                b[hdr::THRESHOLD..hdr::WINDOW].fill(0);
            }),
        ),
        ("a rule without its flag", Box::new(|b| b[hdr::STREAM_FLAGS] &= !2)),
    ];
    for (what, edit) in edits {
        let mut b = good.to_vec();
        edit(&mut b);
        recrc(&mut b);
        assert_eq!(Model::load(&AlignedBytes::new(&b)).err(), Some(Error::BadHeader), "{what}");
    }
    // The encoder refuses what the reader would.
    let layout = StreamLayout { window: 4, channels: 1, differences: false };
    let mut f = frozen(4);
    f.stream = Some(layout);
    f.alarm = Some(rule);
    assert!(f.to_bytes().is_err(), "a rule without a threshold");
    f.anomaly = Some(AnomalyThreshold { threshold: 1.0, target_fpr: 0.01 });
    f.alarm = Some(AlarmRule { window: 4, raise: 2, clear: 2 });
    assert!(f.to_bytes().is_err(), "j = k");
}

/// The alarm rule written out the slow way: count the last m verdicts.
fn reference_alarm(rule: AlarmRule, verdicts: &[bool]) -> Vec<Alarm> {
    let mut active = false;
    let mut out = Vec::new();
    for t in 0..verdicts.len() {
        let from = (t + 1).saturating_sub(rule.window as usize);
        let count = verdicts[from..=t].iter().filter(|&&v| v).count() as u8;
        let was = active;
        if !active && count >= rule.raise {
            active = true;
        } else if active && count <= rule.clear {
            active = false;
        }
        out.push(Alarm { active, raised: active && !was, cleared: was && !active, above: count });
    }
    out
}

#[test]
fn the_alarm_state_follows_its_definition() {
    // Verdict sequences: isolated spikes, a burst, a long run, alternation.
    let mut x = 0x2545_f491_u32;
    let random: Vec<bool> = (0..400)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.is_multiple_of(5)
        })
        .collect();
    let burst: Vec<bool> = (0..120).map(|t| (40..70).contains(&t) || t == 10 || t == 100).collect();
    let alternating: Vec<bool> = (0..64).map(|t| t % 2 == 0).collect();
    let rules = [
        AlarmRule::PER_WINDOW,
        AlarmRule { window: 8, raise: 3, clear: 0 },
        AlarmRule { window: 16, raise: 12, clear: 4 },
        AlarmRule { window: 32, raise: 32, clear: 31 },
        AlarmRule { window: 32, raise: 1, clear: 0 },
    ];
    for rule in rules {
        assert!(rule.is_valid());
        for verdicts in [&random, &burst, &alternating] {
            let mut st = AlarmState::new();
            let got: Vec<Alarm> = verdicts.iter().map(|&v| st.step(rule, v)).collect();
            assert_eq!(got, reference_alarm(rule, verdicts), "{rule:?}");
        }
    }
    // The burst under 3 of 8: isolated spikes raise nothing, the burst one alarm.
    let mut st = AlarmState::new();
    let raised: Vec<usize> =
        (0..burst.len()).filter(|&t| st.step(AlarmRule { window: 8, raise: 3, clear: 0 }, burst[t]).raised).collect();
    assert_eq!(raised, vec![42]);
}

#[test]
fn a_stream_steps_its_files_alarm_rule_on_every_scored_window() {
    let rule = AlarmRule { window: 4, raise: 2, clear: 0 };
    let data = rows(60, 1, 1.0, 21);
    // A threshold at the median score of this series' windows, so verdicts vary.
    let probe_file = stream_model(3, 1, false);
    let probe = Model::load(&probe_file).unwrap();
    let mut scratch = vec![0.0f32; probe.scratch_len()];
    let mut scores: Vec<f32> = data.windows(3).map(|w| probe.score(w, &[], &mut scratch).unwrap().nats).collect();
    scores.sort_by(f32::total_cmp);
    let buf = stream_model_with(3, 1, false, Some(rule), scores[scores.len() / 2]);
    let m = Model::load(&buf).unwrap();
    let mut st = Stream::<8>::new(m).unwrap();
    let mut state = AlarmState::new();
    let (mut raised, mut verdicts) = (0, Vec::new());
    for (t, s) in data.chunks(1).enumerate() {
        let got = st.push(s, &mut scratch).unwrap();
        match got {
            None => assert_eq!(st.alarm(), None, "t={t}"),
            Some(score) => {
                let above = score.anomaly.expect("the file has a threshold");
                verdicts.push(above);
                let want = state.step(rule, above);
                assert_eq!(st.alarm(), Some(want), "t={t}");
                raised += usize::from(want.raised);
            }
        }
    }
    assert!(verdicts.iter().any(|&v| v) && verdicts.iter().any(|&v| !v));
    assert!(raised >= 1);
    // Reset forgets the alarm with the history.
    st.reset();
    assert_eq!(st.alarm(), None);
    // Without a threshold there is no alarm to step.
    let mut f = frozen(3);
    f.stream = Some(StreamLayout { window: 3, channels: 1, differences: false });
    let nothr = AlignedBytes::new(&f.to_bytes().unwrap());
    let mut st = Stream::<8>::new(Model::load(&nothr).unwrap()).unwrap();
    assert_eq!(st.alarm_rule(), None);
    for s in data.chunks(1).take(5) {
        st.push(s, &mut scratch).unwrap();
    }
    assert_eq!(st.alarm(), None);
}

/// The window a stream of `samples` (each `c` values) ends with, built by hand.
fn hand_window(samples: &[Vec<f32>], w: usize, differences: bool) -> Vec<f32> {
    let last = &samples[samples.len() - w..];
    if differences {
        last.windows(2).flat_map(|p| p[1].iter().zip(&p[0]).map(|(a, b)| a - b).collect::<Vec<_>>()).collect()
    } else {
        last.iter().flatten().copied().collect()
    }
}

#[test]
fn stream_windows_equal_hand_built_ones_bit_for_bit() {
    for differences in [false, true] {
        let (w, c) = (6usize, 3usize);
        let buf = stream_model(w as u16, c as u16, differences);
        let m = Model::load(&buf).unwrap();
        let mut scratch = vec![0.0f32; m.scratch_len()];
        // Capacity larger than the window: the ring keeps more than it uses.
        let mut st = Stream::<40>::new(m).unwrap();
        let data = rows(30, c, 1.0, 9);
        let mut seen: Vec<Vec<f32>> = Vec::new();
        for (t, s) in data.chunks(c).enumerate() {
            assert_eq!(st.samples_needed(), w.saturating_sub(t));
            let got = st.push(s, &mut scratch).unwrap();
            seen.push(s.to_vec());
            if t + 1 < w {
                assert!(got.is_none(), "t={t}");
            } else {
                let x = hand_window(&seen, w, differences);
                let want = m.score(&x, &[], &mut scratch).unwrap();
                assert_eq!(got.unwrap().nats.to_bits(), want.nats.to_bits(), "t={t} diff={differences}");
            }
        }
        st.reset();
        assert_eq!(st.samples_needed(), w);
    }
}

#[test]
fn rejected_samples_leave_the_stream_untouched() {
    let buf = stream_model(4, 2, true);
    let m = Model::load(&buf).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    assert!(matches!(Stream::<7>::new(m), Err(Error::BufferTooSmall { needed: 8, got: 7 })));
    let mut a = Stream::<8>::new(m).unwrap();
    let mut b = Stream::<8>::new(m).unwrap();
    let data = rows(12, 2, 1.0, 4);
    for (t, s) in data.chunks(2).enumerate() {
        let seq = 100 + t as u32;
        // Every kind of bad call on `a` first; `b` never sees them.
        assert_eq!(a.push_seq(seq, &s[..1], &mut scratch), Err(Error::DimMismatch { expected: 2, got: 1 }));
        assert_eq!(a.push_seq(seq, &[s[0], f32::NAN], &mut scratch), Err(Error::NonFiniteInput));
        assert_eq!(a.push_seq(seq, &[f32::INFINITY, s[1]], &mut scratch), Err(Error::NonFiniteInput));
        assert!(matches!(a.push_seq(seq, s, &mut scratch[..3]), Err(Error::ScratchTooSmall { .. })));
        if t > 0 {
            assert_eq!(a.push_seq(seq + 1, s, &mut scratch), Err(Error::OutOfOrder { expected: seq, got: seq + 1 }));
            assert_eq!(a.push_seq(seq - 1, s, &mut scratch), Err(Error::OutOfOrder { expected: seq, got: seq - 1 }));
        }
        let ra = a.push_seq(seq, s, &mut scratch).unwrap();
        let rb = b.push(s, &mut scratch).unwrap();
        assert_eq!(ra.map(|x| x.nats.to_bits()), rb.map(|x| x.nats.to_bits()), "t={t}");
    }
    // A stream holds the model it was made for: `push` takes no model, so it
    // cannot be fed to another one (the old run-time mismatch check is now a
    // compile-time one).
    assert_eq!(a.model().header(), m.header());
}

#[test]
fn a_difference_beyond_f32_is_rejected_before_it_enters_the_stream() {
    let buf = stream_model(3, 1, true);
    let m = Model::load(&buf).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let mut a = Stream::<8>::new(m).unwrap();
    let mut b = Stream::<8>::new(m).unwrap();
    assert_eq!(a.push_seq(0, &[-3e38], &mut scratch), Ok(None));
    assert_eq!(b.push_seq(0, &[-3e38], &mut scratch), Ok(None));
    // +3e38 after -3e38: both finite, their difference is not.
    assert_eq!(a.push_seq(1, &[3e38], &mut scratch), Err(Error::NonFiniteInput));
    assert_eq!(a.samples_needed(), 2);
    for (t, v) in [(1u32, 0.5f32), (2, 1.0), (3, 2.0)] {
        let ra = a.push_seq(t, &[v], &mut scratch).map(|s| s.map(|x| x.nats.to_bits()));
        let rb = b.push_seq(t, &[v], &mut scratch).map(|s| s.map(|x| x.nats.to_bits()));
        assert_eq!(ra, rb, "t={t}");
    }
}

#[test]
fn a_row_whose_density_overflows_scores_infinite_and_is_an_anomaly() {
    let buf = stream_model(3, 1, true);
    let m = Model::load(&buf).unwrap();
    let mut scratch = vec![0.0f32; m.scratch_len()];
    let s = m.score(&[3e38, -3e38], &[], &mut scratch).expect("finite input is scored");
    assert!(s.nats == f32::INFINITY || s.nats > 1e30, "{s:?}");
    assert_eq!(s.anomaly, Some(true));
}

#[test]
fn a_failed_select_candidate_is_recorded_and_skipped_and_none_left_names_the_first_failure() {
    use floe_exporter::anomaly::{select::select, split, FlowSettings};
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/adbench/4_breastw.npz");
    let s = split(&floe_exporter::data::DataSpec::file(data), 0, 0).unwrap();
    // Zero epochs: every candidate's training refuses its settings. The
    // selection records each failure and goes on; with none left, the error
    // names the first.
    let settings = FlowSettings { epochs: 0, ..FlowSettings::default() };
    let dev = floe_exporter::train::device::cpu();
    let e = select(&s.prep, &s.calib, &settings, 0, 900.0, &dev).unwrap_err().to_string();
    assert!(e.contains("0 trained") && e.contains("first failure: gaussian (linear):") && e.contains("epochs"), "{e}");
    // Conditioners of width 0: the two spline members that take `hidden`
    // fail, are recorded with their error, and the others still compete.
    let settings = FlowSettings { hidden: 0, epochs: 2, ..FlowSettings::default() };
    let c = select(&s.prep, &s.calib, &settings, 0, 900.0, &dev).expect("the other candidates choose");
    let failed: Vec<&str> = c.selection.tried.iter().filter(|t| t.failed.is_some()).map(|t| t.name).collect();
    assert_eq!(failed, ["spline", "spline wide"], "{:?}", c.selection.tried);
    assert!(c.selection.tried.iter().all(|t| t.failed.is_some() != t.nll.is_some()), "{:?}", c.selection.tried);
    assert!(c.selection.tried.iter().filter_map(|t| t.failed.as_deref()).all(|e| e.contains("hidden")));
    assert!(c.selection.tried[c.selection.chosen].nll.is_some());
}
