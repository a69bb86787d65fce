//! The runtime's anomaly API and streaming front end: header fields round-trip,
//! malformed ones are rejected, stream windows equal hand-built ones bit for bit,
//! and rejected samples leave the stream untouched.

use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::{AlignedBytes, FrozenModel};
use floe_runtime::format::layout::header as hdr;
use floe_runtime::format::{AnomalyThreshold, StreamLayout};
use floe_runtime::{Error, Model, Stream};
use floe_tests::{config, random_flow, rows};

fn frozen(dim: usize) -> FrozenModel {
    let (flow, xs, cs) = random_flow(&config(TransformKind::SplineCoupling, dim, 0), 3);
    flow.frozen(&xs, &cs).expect("freeze")
}

fn stream_model(window: u16, channels: u16, differences: bool) -> AlignedBytes {
    let layout = StreamLayout { window, channels, differences };
    let mut m = frozen(layout.dim());
    m.stream = Some(layout);
    m.anomaly = Some(AnomalyThreshold { threshold: 7.5, target_fpr: 0.01 });
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
        ("unknown stream flag", Box::new(|b| b[hdr::STREAM_FLAGS] = 2)),
        ("unknown header flag", Box::new(|b| b[hdr::FLAGS] |= 4)),
        ("threshold without its flag", Box::new(|b| b[hdr::FLAGS] &= !1)),
        ("window without its flag", Box::new(|b| b[hdr::FLAGS] &= !2)),
        ("reserved byte", Box::new(|b| b[hdr::RESERVED] = 1)),
    ];
    for (what, edit) in edits {
        let mut b = good.to_vec();
        edit(&mut b);
        recrc(&mut b);
        assert_eq!(Model::load(&AlignedBytes::new(&b)).err(), Some(Error::BadHeader), "{what}");
    }
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
