//! The C ABI against the runtime it wraps: every code, every handle, the
//! bundled models bit for bit.

use std::vec::Vec;
use std::{format, string::String};

use core::mem::size_of;

use floe_runtime::{Model, Rng};

use super::*;

/// Every `FloeCode` but the C-only ones, in order.
const RUNTIME_CODES: [FloeCode; 28] = [
    FloeCode::Truncated,
    FloeCode::BadMagic,
    FloeCode::UnsupportedVersion,
    FloeCode::Misaligned,
    FloeCode::BadCrc,
    FloeCode::BadHeader,
    FloeCode::BadTensor,
    FloeCode::NonFiniteWeight,
    FloeCode::BadLayer,
    FloeCode::ShapeMismatch,
    FloeCode::InvalidParameter,
    FloeCode::InvalidStandardization,
    FloeCode::InvalidBase,
    FloeCode::ScratchMismatch,
    FloeCode::DimMismatch,
    FloeCode::ContextMismatch,
    FloeCode::ScratchTooSmall,
    FloeCode::NonFiniteInput,
    FloeCode::NotAStreamModel,
    FloeCode::BufferTooSmall,
    FloeCode::OutOfOrder,
    FloeCode::NotATrajectoryModel,
    FloeCode::HorizonMismatch,
    FloeCode::NothingToUpdate,
    FloeCode::StepOutOfRange,
    FloeCode::InvalidArgument,
    FloeCode::OutputTooSmall,
    FloeCode::Internal,
];

#[test]
fn codes_map_one_to_one_to_runtime_errors() {
    for (k, c) in RUNTIME_CODES.iter().enumerate() {
        assert_eq!(*c as i32, k as i32 + 1);
        let e = Error::from_code(*c as u16, (1, 2)).unwrap();
        // The C name is the runtime variant's name.
        let name = format!("{e:?}");
        assert!(name.starts_with(&format!("{c:?}")), "{c:?} ↔ {name}");
        assert_eq!(FloeStatus::from(e).code, *c as i32);
    }
    // No runtime error takes a C-only code.
    for c in [FloeCode::Ok, FloeCode::NullArgument, FloeCode::Uninitialized] {
        assert!(Error::from_code(c as u16, (0, 0)).is_none(), "{c:?}");
    }
}

/// A bundled firmware asset, 4-byte aligned.
fn asset(name: &str) -> Vec<u32> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/assets").join(name);
    let b = std::fs::read(&p).unwrap();
    let mut w = std::vec![0u32; b.len().div_ceil(4)];
    bytemuck_copy(&mut w, &b);
    w
}

fn bytemuck_copy(w: &mut [u32], b: &[u8]) {
    for (k, c) in b.chunks(4).enumerate() {
        let mut q = [0u8; 4];
        q[..c.len()].copy_from_slice(c);
        w[k] = u32::from_le_bytes(q);
    }
}

fn bytes(w: &[u32], len: usize) -> &[u8] {
    // SAFETY: (test) u32 storage viewed as its bytes.
    unsafe { core::slice::from_raw_parts(w.as_ptr().cast::<u8>(), len) }
}

fn file_len(name: &str) -> usize {
    std::fs::metadata(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/assets").join(name))
        .unwrap()
        .len() as usize
}

fn zeroed<T>() -> T {
    // SAFETY: (test) the handles are plain integer arrays.
    unsafe { core::mem::zeroed() }
}

fn message(s: FloeStatus) -> String {
    let mut b = [0u8; 160];
    // SAFETY: (test) a valid buffer.
    let n = unsafe { floe_status_message(s, b.as_mut_ptr().cast(), b.len()) };
    let end = b.iter().position(|&c| c == 0).unwrap();
    assert_eq!(end, n.min(b.len() - 1));
    String::from_utf8(b[..end].to_vec()).unwrap()
}

#[test]
fn model_calls_match_the_runtime_bit_for_bit() {
    for name in ["thyroid.floe", "thyroid-int8.floe"] {
        let w = asset(name);
        let b = bytes(&w, file_len(name));
        let m = Model::load(b).unwrap();
        let mut fm: FloeModel = zeroed();
        // SAFETY: (test) valid pointers and lengths throughout.
        unsafe {
            assert_eq!(floe_model_load(&mut fm, b.as_ptr(), b.len()), FloeStatus::OK);
            let mut info = FloeModelInfo::default();
            assert_eq!(floe_model_info(&fm, &mut info), FloeStatus::OK);
            assert_eq!((info.dim, info.context_dim, info.scratch_len), (m.dim(), 0, m.scratch_len()));
            assert_eq!(info.batch_scratch_len, m.batch_scratch_len());
            let rows_w = asset("thyroid.f32");
            let rows: Vec<f32> = rows_w.iter().map(|&u| f32::from_bits(u)).collect();
            let d = m.dim();
            let mut scratch = std::vec![0.0f32; info.batch_scratch_len.max(info.scratch_len)];
            let mut direct = std::vec![0.0f32; scratch.len()];
            let n = rows.len() / d;
            let mut batch = std::vec![0.0f32; n];
            let st = floe_log_prob_batch(
                &fm,
                rows.as_ptr(),
                rows.len(),
                core::ptr::null(),
                0,
                batch.as_mut_ptr(),
                n,
                scratch.as_mut_ptr(),
                scratch.len(),
            );
            assert_eq!(st, FloeStatus::OK);
            for (r, x) in rows.chunks_exact(d).enumerate() {
                let mut lp = 0.0f32;
                let st = floe_log_prob(
                    &fm,
                    x.as_ptr(),
                    d,
                    core::ptr::null(),
                    0,
                    scratch.as_mut_ptr(),
                    info.scratch_len,
                    &mut lp,
                );
                assert_eq!(st, FloeStatus::OK);
                let want = m.log_prob(x, &[], &mut direct).unwrap();
                assert_eq!(lp.to_bits(), want.to_bits());
                assert_eq!(batch[r].to_bits(), want.to_bits());
                let mut sc = FloeScore::default();
                let st = floe_score(&fm, x.as_ptr(), d, core::ptr::null(), 0, scratch.as_mut_ptr(), 999, &mut sc);
                assert_eq!(st, FloeStatus::OK, "{}", message(st));
                assert_eq!(sc, m.score(x, &[], &mut direct).unwrap().into());
                // forward then inverse: z and back, with log-dets of opposite sign.
                let (mut z, mut back, mut ld, mut ld2) = (std::vec![0.0f32; d], std::vec![0.0f32; d], 0.0, 0.0);
                let st = floe_forward(
                    &fm,
                    x.as_ptr(),
                    d,
                    core::ptr::null(),
                    0,
                    z.as_mut_ptr(),
                    d,
                    scratch.as_mut_ptr(),
                    scratch.len(),
                    &mut ld,
                );
                assert_eq!(st, FloeStatus::OK);
                let mut zz = std::vec![0.0f32; d];
                assert_eq!(m.forward(x, &[], &mut zz, &mut direct).unwrap().to_bits(), ld.to_bits());
                assert_eq!(z, zz);
                let st = floe_inverse(
                    &fm,
                    z.as_ptr(),
                    d,
                    core::ptr::null(),
                    0,
                    back.as_mut_ptr(),
                    d,
                    scratch.as_mut_ptr(),
                    scratch.len(),
                    &mut ld2,
                );
                assert_eq!(st, FloeStatus::OK);
                assert_eq!(m.inverse(&z, &[], &mut zz, &mut direct).unwrap().to_bits(), ld2.to_bits());
                assert_eq!(back, zz);
            }
            // Seeded samples: the runtime's, bit for bit.
            let mut rng: FloeRng = zeroed();
            assert_eq!(floe_rng_init(&mut rng, 42), FloeStatus::OK);
            let mut g = Rng::new(42);
            for _ in 0..3 {
                let (mut x, mut y, mut lp) = (std::vec![0.0f32; d], std::vec![0.0f32; d], 0.0f32);
                let st = floe_sample(
                    &fm,
                    &mut rng,
                    core::ptr::null(),
                    0,
                    x.as_mut_ptr(),
                    d,
                    scratch.as_mut_ptr(),
                    scratch.len(),
                    &mut lp,
                );
                assert_eq!(st, FloeStatus::OK);
                let want = m.sample(&mut g, &[], &mut y, &mut direct).unwrap();
                assert_eq!((x, lp.to_bits()), (y, want.to_bits()));
            }
            // Typed errors, output untouched.
            let x = &rows[..d];
            let mut lp = -7.0f32;
            let call = |x: &[f32], n: usize, s: usize, lp: &mut f32, scratch: &mut [f32]| {
                floe_log_prob(&fm, x.as_ptr(), n, core::ptr::null(), 0, scratch.as_mut_ptr(), s, lp)
            };
            let st = call(x, d - 1, scratch.len(), &mut lp, &mut scratch);
            assert_eq!(st, Error::DimMismatch { expected: d as u32, got: d as u32 - 1 }.into());
            assert_eq!(message(st), format!("expected {d} values, got {}", d - 1));
            let st = call(x, d, 1, &mut lp, &mut scratch);
            assert_eq!(st.code, FloeCode::ScratchTooSmall as i32);
            assert_eq!(st.detail, [m.scratch_len() as u32, 1]);
            let mut bad = x.to_vec();
            bad[1] = f32::NAN;
            assert_eq!(call(&bad, d, scratch.len(), &mut lp, &mut scratch), Error::NonFiniteInput.into());
            let st = floe_log_prob(&fm, core::ptr::null(), d, core::ptr::null(), 0, scratch.as_mut_ptr(), 9, &mut lp);
            assert_eq!(st.code, FloeCode::NullArgument as i32);
            assert_eq!(message(st), "a required pointer argument is null");
            let st = floe_log_prob(
                &fm,
                x.as_ptr(),
                d,
                core::ptr::null(),
                0,
                scratch.as_mut_ptr(),
                scratch.len(),
                core::ptr::null_mut(),
            );
            assert_eq!(st.code, FloeCode::NullArgument as i32);
            assert_eq!(lp, -7.0);
            // A null scalar output: refused before anything is written.
            let mut z = std::vec![-3.0f32; d];
            let st = floe_forward(
                &fm,
                x.as_ptr(),
                d,
                core::ptr::null(),
                0,
                z.as_mut_ptr(),
                d,
                scratch.as_mut_ptr(),
                scratch.len(),
                core::ptr::null_mut(),
            );
            assert_eq!(st.code, FloeCode::NullArgument as i32);
            assert!(z.iter().all(|&v| v == -3.0));
            let mut rng0: FloeRng = zeroed();
            assert_eq!(floe_rng_init(&mut rng0, 1), FloeStatus::OK);
            let st = floe_sample(
                &fm,
                &mut rng0,
                core::ptr::null(),
                0,
                z.as_mut_ptr(),
                d,
                scratch.as_mut_ptr(),
                scratch.len(),
                core::ptr::null_mut(),
            );
            assert_eq!(st.code, FloeCode::NullArgument as i32);
            assert!(z.iter().all(|&v| v == -3.0));
            // A stream or a tracker over a plain model: typed refusals.
            let mut s: FloeStream = zeroed();
            assert_eq!(floe_stream_init(&mut s, &fm), Error::NotAStreamModel.into());
            let mut t: FloeTracker = zeroed();
            assert_eq!(floe_tracker_init(&mut t, &fm, 1), Error::NotATrajectoryModel.into());
            let mut sc = FloeScore::default();
            let mut scored = false;
            let st = floe_stream_push(&mut s, x.as_ptr(), 1, scratch.as_mut_ptr(), 9, &mut sc, &mut scored);
            assert_eq!(st.code, FloeCode::Uninitialized as i32);
        }
    }
}

#[test]
fn bad_files_and_uninitialized_handles_give_typed_errors() {
    let name = "thyroid.floe";
    let w = asset(name);
    let len = file_len(name);
    let mut fm: FloeModel = zeroed();
    // SAFETY: (test) valid pointers and lengths throughout.
    unsafe {
        let mut info = FloeModelInfo::default();
        assert_eq!(floe_model_info(&fm, &mut info).code, FloeCode::Uninitialized as i32);
        assert_eq!(floe_model_load(&mut fm, bytes(&w, len).as_ptr(), len - 1), Error::Truncated.into());
        let mut corrupt = w.clone();
        corrupt[40] ^= 1;
        let st = floe_model_load(&mut fm, bytes(&corrupt, len).as_ptr(), len);
        assert_eq!(st, Error::BadCrc.into());
        assert_eq!(message(st), "CRC-32 mismatch: the file is corrupt");
        // A failed load leaves the handle unusable, even after a good one.
        assert_eq!(floe_model_load(&mut fm, bytes(&w, len).as_ptr(), len), FloeStatus::OK);
        let mut shifted = std::vec![0u32; w.len() + 1];
        let sb = core::slice::from_raw_parts_mut(shifted.as_mut_ptr().cast::<u8>(), 4 * shifted.len());
        sb[1..=len].copy_from_slice(bytes(&w, len));
        assert_eq!(floe_model_load(&mut fm, sb.as_ptr().add(1), len), Error::Misaligned.into());
        assert_eq!(floe_model_info(&fm, &mut info).code, FloeCode::Uninitialized as i32);
        assert_eq!(floe_model_load(core::ptr::null_mut(), bytes(&w, len).as_ptr(), len).code, 100);
        assert_eq!(floe_model_load(&mut fm, core::ptr::null(), 5).code, 100);
    }
    // The message is cut to the buffer, NUL-terminated, and its full length returned.
    let st = FloeStatus::from(Error::ScratchTooSmall { needed: 1234, got: 5 });
    let mut b = [0xFFu8; 8];
    // SAFETY: (test) a valid buffer.
    let n = unsafe { floe_status_message(st, b.as_mut_ptr().cast(), b.len()) };
    assert_eq!(n, "scratch buffer too small: need 1234 f32, got 5".len());
    assert_eq!(&b, b"scratch\0");
    // SAFETY: (test) null with length 0 is allowed.
    assert_eq!(unsafe { floe_status_message(st, core::ptr::null_mut(), 0) }, n);
    assert_eq!(message(FloeStatus { code: 55, detail: [0, 0] }), "unknown floe status code 55");
    assert_eq!(message(FloeStatus::OK), "ok");
}

mod sequences;

#[test]
fn handle_sizes_have_room() {
    // The header's sizes hold every handle with little waste on this target.
    let used = [
        (size_of::<Slot<ModelT>>(), size_of::<FloeModel>()),
        (size_of::<Slot<Rng>>(), size_of::<FloeRng>()),
        (size_of::<Slot<StreamT>>(), size_of::<FloeStream>()),
        (size_of::<Slot<TrackerT>>(), size_of::<FloeTracker>()),
    ];
    for (u, have) in used {
        std::println!("slot {u} bytes in {have}");
        assert!(u <= have && have - u < 512, "{u} in {have}");
    }
}
