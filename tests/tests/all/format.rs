//! The runtime's validation: truncations, flipped bytes, structurally bad files
//! with a valid CRC, and bad call arguments all get the right typed error — and
//! nothing panics.

use floe_exporter::flow::TransformKind;
use floe_exporter::freeze::AlignedBytes;
use floe_runtime::exporter_hooks::tensor_record;
use floe_runtime::format::layout::{header as hdr, layer};
use floe_runtime::format::{crc32, BaseKind, LayerKind, HEADER_LEN, LAYER_RECORD_LEN};
use floe_runtime::{Error, Model};
use floe_tests::{config, model_bytes};

fn sample_model() -> AlignedBytes {
    let mut cfg = config(TransformKind::SplineCoupling, 3, 1);
    cfg.base = BaseKind::StudentT;
    model_bytes(&cfg, 21)
}

fn recrc(b: &mut [u8]) {
    let n = b.len();
    let c = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn valid_file_loads() {
    let b = sample_model();
    let m = Model::load(&b).unwrap();
    assert_eq!((m.dim(), m.context_dim()), (3, 1));
    let mut s = vec![0.0; m.scratch_len()];
    assert!(m.log_prob(&[0.1, 0.2, 0.3], &[0.5], &mut s).unwrap().is_finite());
}

#[test]
fn every_truncation_is_rejected_as_truncated() {
    let b = sample_model();
    for len in 0..b.len() {
        let t = AlignedBytes::new(&b[..len]);
        assert_eq!(Model::load(&t).err(), Some(Error::Truncated), "length {len}");
    }
}

#[test]
fn every_flipped_byte_is_rejected_with_the_right_error() {
    let b = sample_model();
    for i in 0..b.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut t = b.clone();
            t[i] ^= mask;
            let e = Model::load(&t).err();
            match i {
                0..=3 => assert_eq!(e, Some(Error::BadMagic), "byte {i}"),
                4..=5 => assert!(matches!(e, Some(Error::UnsupportedVersion(_))), "byte {i}: {e:?}"),
                8..=11 => {
                    assert!(matches!(e, Some(Error::Truncated | Error::BadCrc | Error::BadHeader)), "byte {i}: {e:?}")
                }
                _ => assert_eq!(e, Some(Error::BadCrc), "byte {i} mask {mask:#x}"),
            }
        }
    }
}

#[test]
fn misaligned_buffer_is_rejected() {
    let b = sample_model();
    let mut v = vec![0u8; b.len() + 1];
    v[1..].copy_from_slice(&b);
    let shifted = AlignedBytes::new(&v);
    assert_eq!(Model::load(&shifted[1..]).err(), Some(Error::Misaligned));
}

/// Rewrite bytes inside the file and fix the CRC: the structural checks must
/// catch what the CRC no longer does, and never panic.
#[test]
fn corrupted_fields_with_valid_crc_never_panic() {
    let b = sample_model();
    let m = Model::load(&b).unwrap();
    let data_off = m.header().data_offset as usize;
    let mut loaded_ok = 0;
    for i in 6..data_off {
        for v in [0x00u8, 0x01, 0x7F, 0xFF] {
            let mut t = b.clone();
            if t[i] == v {
                continue;
            }
            t[i] = v;
            recrc(&mut t);
            if let Ok(m) = Model::load(&t) {
                loaded_ok += 1;
                let mut s = vec![0.0; m.scratch_len()];
                let x = vec![0.3; m.dim()];
                let c = vec![0.1; m.context_dim()];
                let _ = m.log_prob(&x, &c, &mut s);
                let mut out = vec![0.0; m.dim()];
                let _ = m.sample(&mut floe_runtime::Rng::new(1), &c, &mut out, &mut s);
            }
        }
    }
    // Some edits are harmless (e.g. a weight's sign bit), most must be caught.
    assert!(loaded_ok < (data_off - 6) * 4 / 2, "{loaded_ok} corrupt variants loaded");
}

#[test]
fn specific_semantic_errors() {
    let b = sample_model();
    let m = Model::load(&b).unwrap();
    let h = *m.header();
    let tensor_off = |i: u32| tensor_record(&m, i).unwrap().offset as usize;

    // Wrong scratch length in the header.
    let mut t = b.clone();
    t[hdr::SCRATCH_LEN] ^= 1;
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::ScratchMismatch));

    // A NaN weight.
    let mut t = b.clone();
    let off = tensor_off(h.n_tensors - 1);
    t[off..off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::NonFiniteWeight(h.n_tensors - 1)));

    // A standard deviation of zero (tensor 1 is x_std).
    let mut t = b.clone();
    let off = tensor_off(1);
    t[off..off + 4].copy_from_slice(&0.0f32.to_le_bytes());
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::InvalidStandardization));

    // Student-t degrees of freedom <= 0 (tensor 4).
    let mut t = b.clone();
    let off = tensor_off(4);
    t[off..off + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::InvalidBase));

    // Unknown layer kind.
    let mut t = b.clone();
    t[HEADER_LEN] = 99;
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::BadLayer(0)));

    // A non-zero alarm byte in a file without a stream (formerly reserved).
    for at in [hdr::ALARM_WINDOW, hdr::ALARM_RAISE, hdr::ALARM_CLEAR] {
        let mut t = b.clone();
        t[at] = 1;
        recrc(&mut t);
        assert_eq!(Model::load(&t).err(), Some(Error::BadHeader));
    }

    // Spline tail bound <= 0: find the first spline layer.
    let li = (0..m.n_layers()).find(|&i| m.layer_info(i).unwrap().record.kind == LayerKind::SplineCoupling).unwrap();
    let mut t = b.clone();
    let at = HEADER_LEN + li * LAYER_RECORD_LEN + layer::PARAM;
    t[at..at + 4].copy_from_slice(&(-3.0f32).to_le_bytes());
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::BadLayer(li as u16)));
}

#[test]
fn permutation_and_made_mask_violations_are_invalid_parameters() {
    let mut cfg = config(TransformKind::MadeAffine, 3, 0);
    cfg.lu = false;
    let b = model_bytes(&cfg, 5);
    let m = Model::load(&b).unwrap();
    for i in 0..m.n_layers() {
        let info = m.layer_info(i).unwrap();
        let t0 = info.record.first_tensor;
        let off = tensor_record(&m, t0).unwrap().offset as usize;
        let mut t = b.clone();
        match info.record.kind {
            LayerKind::Permute => {
                // Repeat index 0: [p0, p0, ...].
                let p0 = [t[off], t[off + 1]];
                t[off + 2..off + 4].copy_from_slice(&p0);
            }
            LayerKind::MadeAffine => {
                // W0 row 0 (hidden degree 1) may not see input 1 (degree 2).
                t[off + 4..off + 8].copy_from_slice(&0.5f32.to_le_bytes());
            }
            _ => continue,
        }
        recrc(&mut t);
        assert_eq!(Model::load(&t).err(), Some(Error::InvalidParameter(i as u16)), "layer {i}");
    }
}

#[test]
fn bad_call_arguments_get_typed_errors() {
    let b = sample_model();
    let m = Model::load(&b).unwrap();
    let mut s = vec![0.0; m.scratch_len()];
    assert_eq!(m.log_prob(&[0.0; 2], &[0.0], &mut s), Err(Error::DimMismatch { expected: 3, got: 2 }));
    assert_eq!(m.log_prob(&[0.0; 3], &[], &mut s), Err(Error::ContextMismatch { expected: 1, got: 0 }));
    assert_eq!(m.log_prob(&[0.0, f32::NAN, 0.0], &[0.0], &mut s), Err(Error::NonFiniteInput));
    assert_eq!(m.log_prob(&[0.0; 3], &[f32::INFINITY], &mut s), Err(Error::NonFiniteInput));
    let mut small = vec![0.0; m.scratch_len() - 1];
    assert!(matches!(m.log_prob(&[0.0; 3], &[0.0], &mut small), Err(Error::ScratchTooSmall { .. })));
    let mut out = [0.0; 2];
    assert!(matches!(
        m.sample(&mut floe_runtime::Rng::new(0), &[0.0], &mut out, &mut s),
        Err(Error::DimMismatch { .. })
    ));
}

/// Layer flag bit 3 (zuko's parameterization, `floe import zuko`) is valid on
/// couplings and MADE layers only, and changes what they compute.
#[test]
fn the_zuko_flag_is_checked_and_takes_effect() {
    use floe_runtime::format::FLAG_ZUKO;
    let b = sample_model();
    let m = Model::load(&b).unwrap();
    let x = [0.1f32, -0.4, 0.3];
    let mut s = vec![0.0; m.scratch_len()];
    let base = m.log_prob(&x, &[0.5], &mut s).unwrap();
    let mut conditioned = 0;
    for i in 0..m.n_layers() {
        let mut t = b.clone();
        t[HEADER_LEN + i * LAYER_RECORD_LEN + layer::FLAGS] |= FLAG_ZUKO;
        recrc(&mut t);
        if m.layer_info(i).unwrap().record.kind.has_conditioner() {
            let z = Model::load(&t).unwrap();
            let mut s = vec![0.0; z.scratch_len()];
            let lp = z.log_prob(&x, &[0.5], &mut s).unwrap();
            assert!(lp.is_finite() && lp != base, "layer {i}: {lp} vs {base}");
            conditioned += 1;
        } else {
            assert_eq!(Model::load(&t).err(), Some(Error::BadLayer(i as u16)), "layer {i}");
        }
    }
    assert!(conditioned >= 2 && conditioned < m.n_layers());
    // Nor on a trajectory model's history encoder (layer 0).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/assets");
    let mut t = AlignedBytes::new(&std::fs::read(dir.join("traj-int8.floe")).unwrap());
    assert!(Model::load(&t).is_ok());
    t[HEADER_LEN + layer::FLAGS] |= FLAG_ZUKO;
    recrc(&mut t);
    assert_eq!(Model::load(&t).err(), Some(Error::BadLayer(0)));
}
