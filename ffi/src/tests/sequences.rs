//! The C ABI's stream and tracker handles against the runtime's, bit for bit.

use std::vec::Vec;

use floe_runtime::trajectory::{Point, Tracker};
use floe_runtime::Stream;

use super::*;

fn series(name: &str) -> Vec<f32> {
    asset(name).iter().map(|&u| f32::from_bits(u)).collect()
}

#[test]
fn streams_match_the_runtime_bit_for_bit() {
    for (model, data) in [("ucr-int8.floe", "ucr-test.f32"), ("daphnet-int8.floe", "daphnet-test.f32")] {
        let w = asset(model);
        let b = bytes(&w, file_len(model));
        let m = Model::load(b).unwrap();
        let c = usize::from(m.stream_layout().unwrap().channels);
        let mut rs = Stream::<FLOE_STREAM_CAPACITY>::new(m).unwrap();
        let xs = series(data);
        let mut fm: FloeModel = zeroed();
        let mut fs: FloeStream = zeroed();
        let mut scratch = std::vec![0.0f32; m.scratch_len()];
        let mut direct = scratch.clone();
        let (mut windows, mut raised) = (0, 0);
        // SAFETY: (test) valid pointers and lengths throughout.
        unsafe {
            assert_eq!(floe_model_load(&mut fm, b.as_ptr(), b.len()), FloeStatus::OK);
            assert_eq!(floe_stream_init(&mut fs, &fm), FloeStatus::OK);
            for (k, x) in xs.chunks_exact(c).enumerate() {
                let (mut sc, mut scored) = (FloeScore::default(), false);
                let st = floe_stream_push_seq(
                    &mut fs,
                    k as u32,
                    x.as_ptr(),
                    c,
                    scratch.as_mut_ptr(),
                    scratch.len(),
                    &mut sc,
                    &mut scored,
                );
                assert_eq!(st, FloeStatus::OK);
                let want = rs.push(x, &mut direct).unwrap();
                assert_eq!(scored, want.is_some());
                if let Some(wt) = want {
                    windows += 1;
                    assert_eq!(sc.nats.to_bits(), wt.nats.to_bits());
                    assert_eq!(sc, wt.into());
                    let mut a = FloeAlarm::default();
                    assert_eq!(floe_stream_alarm(&fs, &mut a), FloeStatus::OK);
                    let ra = rs.alarm().unwrap();
                    assert_eq!((a.valid, a.active, a.raised, a.above), (true, ra.active, ra.raised, ra.above));
                    raised += i32::from(a.raised);
                }
            }
            assert!(windows > 100, "{model}: {windows} windows");
            // Out of order: refused, stream unchanged; then reset.
            let (mut sc, mut scored) = (FloeScore::default(), false);
            let st = floe_stream_push_seq(
                &mut fs,
                5,
                xs.as_ptr(),
                c,
                scratch.as_mut_ptr(),
                scratch.len(),
                &mut sc,
                &mut scored,
            );
            assert_eq!(st, Error::OutOfOrder { expected: (xs.len() / c) as u32, got: 5 }.into());
            let st = floe_stream_push(
                &mut fs,
                xs.as_ptr(),
                c + 1,
                scratch.as_mut_ptr(),
                scratch.len(),
                &mut sc,
                &mut scored,
            );
            assert_eq!(st.code, FloeCode::DimMismatch as i32);
            assert_eq!(floe_stream_reset(&mut fs), FloeStatus::OK);
            let mut need = 0;
            assert_eq!(floe_stream_samples_needed(&fs, &mut need), FloeStatus::OK);
            assert_eq!(need, rs.layout().window as usize);
        }
        std::println!("{model}: {windows} windows, {raised} alarms raised, through the C ABI");
    }
}

#[test]
fn the_tracker_matches_the_runtime_bit_for_bit() {
    let name = "traj-int8.floe";
    let w = asset(name);
    let b = bytes(&w, file_len(name));
    let m = Model::load(b).unwrap();
    let obs = usize::from(m.trajectory_layout().unwrap().observed);
    let win: Vec<f32> = series("traj-windows.f32");
    let per = 2 * (obs + FLOE_TRACKER_HORIZON);
    let mut rt = Tracker::<FLOE_TRACKER_PARTICLES, FLOE_TRACKER_HORIZON>::new(m, 9).unwrap();
    let mut fm: FloeModel = zeroed();
    let mut ft: FloeTracker = zeroed();
    let mut scratch = std::vec![0.0f32; m.scratch_len()];
    let mut direct = scratch.clone();
    // SAFETY: (test) valid pointers and lengths throughout.
    unsafe {
        assert_eq!(floe_model_load(&mut fm, b.as_ptr(), b.len()), FloeStatus::OK);
        assert_eq!(floe_tracker_init(&mut ft, &fm, 9), FloeStatus::OK);
        let mut lp = 0.0f32;
        let st = floe_tracker_log_density(&ft, 1, 0.0, 0.0, scratch.as_mut_ptr(), scratch.len(), &mut lp);
        assert_eq!(st, Error::NothingToUpdate.into());
        for wnd in win.chunks_exact(per) {
            let (h, f) = wnd.split_at(2 * obs);
            let pts: Vec<Point> = h.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
            let fut: Vec<Point> = f.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
            assert_eq!(
                floe_tracker_predict(&mut ft, h.as_ptr(), obs, scratch.as_mut_ptr(), scratch.len()),
                FloeStatus::OK
            );
            rt.predict(&pts, &mut direct).unwrap();
            let mut xy = [0.0f32; 2];
            for (p, s) in [(0, 1), (31, 6), (63, 12)] {
                assert_eq!(floe_tracker_position(&ft, p, s, xy.as_mut_ptr()), FloeStatus::OK);
                assert_eq!(xy, rt.position(p, s).unwrap());
            }
            assert_eq!(floe_tracker_position(&ft, 64, 1, xy.as_mut_ptr()), Error::InvalidArgument.into());
            assert_eq!(floe_tracker_position(&ft, 0, 13, xy.as_mut_ptr()).code, FloeCode::StepOutOfRange as i32);
            // A step the size of the address space is out of range, not a wrapped index.
            let st = floe_tracker_position(&ft, 0, usize::MAX, xy.as_mut_ptr());
            assert_eq!((st.code, st.detail[0]), (FloeCode::StepOutOfRange as i32, u32::MAX));
            let st =
                floe_tracker_log_prob_future(&ft, f.as_ptr(), fut.len(), scratch.as_mut_ptr(), scratch.len(), &mut lp);
            assert_eq!(st, FloeStatus::OK);
            assert_eq!(lp.to_bits(), rt.log_prob_future(&fut, &mut direct).unwrap().to_bits());
            let st = floe_tracker_log_density(&ft, 6, f[10], f[11], scratch.as_mut_ptr(), scratch.len(), &mut lp);
            assert_eq!(st, FloeStatus::OK);
            assert_eq!(lp.to_bits(), rt.log_density(6, fut[5], &mut direct).unwrap().to_bits());
            let mut ess = 0.0f32;
            assert_eq!(floe_tracker_update(&mut ft, f[0], f[1], 0.05, &mut ess), FloeStatus::OK);
            assert_eq!(ess.to_bits(), rt.update(fut[0], 0.05).unwrap().ess.to_bits());
            assert_eq!(floe_tracker_update(&mut ft, f[2], f[3], 0.0, &mut ess), Error::InvalidArgument.into());
            let mut left = 0;
            assert_eq!(floe_tracker_steps_left(&ft, &mut left), FloeStatus::OK);
            assert_eq!(left, FLOE_TRACKER_HORIZON - 1);
        }
    }
}
