//! Stored requantization words (layer flag bit 5): `requant_words::store`
//! rewrites every bundled int8 model, the rewritten file loads, and every
//! result — single rows, batches, samples — keeps its bits; malformed words and
//! misplaced flags are rejected at load.

use floe_runtime::format::requant_words::{self, is_valid, real, word};
use floe_runtime::format::{crc32, DType, Header, LayerRecord, Precision, TensorRecord, FLAG_INT8_WORDS};
use floe_runtime::{Error, Model, Rng};

/// The int8 model files the repository bundles (firmware assets, fuzz seeds).
const INT8: [&str; 6] = [
    "firmware/assets/thyroid-int8.floe",
    "firmware/assets/daphnet-int8.floe",
    "firmware/assets/ucr-int8.floe",
    "firmware/assets/traj-int8.floe",
    "fuzz/seeds/maf-int8.floe",
    "fuzz/seeds/spline-coupling-int8.floe",
];

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `bytes` in a 16-byte aligned buffer (as flash holds it).
fn aligned(bytes: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

fn load<'a>(buf: &'a [u128], len: usize) -> Result<Model<'a>, Error> {
    Model::load(&bytemuck::cast_slice::<u128, u8>(buf)[..len])
}

fn stored(src: &[u8]) -> (Vec<u8>, usize) {
    let n = requant_words::stored_len(src).expect("stored_len");
    let mut out = vec![0xAAu8; n + 7];
    let (len, done) = requant_words::store(src, &mut out).expect("store");
    assert_eq!(len, n);
    out.truncate(len);
    (out, done)
}

/// The tensor records of a file.
fn tensors(file: &[u8]) -> Vec<TensorRecord> {
    let h = Header::decode(file).unwrap();
    (0..h.n_tensors)
        .map(|t| {
            let at = h.tensor_table as usize + 16 * t as usize;
            TensorRecord::decode(&file[at..at + 16], t).unwrap()
        })
        .collect()
}

/// Recompute a damaged file's CRC, so that the load reaches the damage.
fn fix_crc(file: &mut [u8]) {
    let body = file.len() - 4;
    let crc = crc32(&file[..body]);
    file[body..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn words_read_back_the_ratio_exactly_in_their_range_only() {
    let mut s = 0x9E37_79B9u32;
    for e in 0..=255u32 {
        for k in 0..64 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let mant = if k == 0 {
                0
            } else if k == 1 {
                0x7F_FFFF
            } else {
                s >> 9
            };
            for sign in [0, 1u32 << 31] {
                let r = f32::from_bits(sign | e << 23 | mant);
                let w = word(r);
                assert_eq!(w.is_some(), sign == 0 && (95..=124).contains(&e), "{r:e}");
                if let Some(w) = w {
                    assert!(is_valid(w));
                    assert_eq!(real(w).map(f32::to_bits), Some(r.to_bits()));
                    assert_eq!(w & 0xFF, 125 - e as i32);
                }
            }
        }
    }
    for bad in [0, 0x7FFF_FF0F, i32::MIN, i32::MIN | 31, i32::MIN | 0xFF, i32::MIN | 0x21, -1] {
        assert!(!is_valid(bad), "{bad:#x}");
        assert_eq!(real(bad), None);
    }
}

#[test]
fn stored_words_keep_every_result_bit_for_bit() {
    for rel in INT8 {
        let src = read(rel);
        let (out, done) = stored(&src);
        let old_buf = aligned(&src);
        let old = load(&old_buf, src.len()).unwrap();
        let int8_layers = (0..old.n_layers())
            .filter(|&i| old.layer_info(i).unwrap().record.precision() == Some(Precision::Int8))
            .count();
        assert!(int8_layers > 0 && done == int8_layers, "{rel}: {done} of {int8_layers} int8 layers rewritten");
        // Each hidden scale (2 bytes) became a word (4 bytes); nothing else changed size.
        let (a, b) = (tensors(&src), tensors(&out));
        let grown: Vec<usize> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.dtype != y.dtype)
            .map(|(x, y)| {
                assert_eq!((x.dtype, y.dtype, x.rows, x.cols), (DType::BF16, DType::I32, y.rows, y.cols), "{rel}");
                x.len()
            })
            .collect();
        assert!(!grown.is_empty(), "{rel}");
        let units: usize = grown.iter().sum();
        assert!(out.len() >= src.len() + 2 * units && out.len() <= src.len() + 2 * units + 16 * grown.len());
        let new_buf = aligned(&out);
        let new = load(&new_buf, out.len()).unwrap_or_else(|e| panic!("{rel}: {e:?}"));
        assert_eq!(new.scratch_len(), old.scratch_len());
        for i in 0..new.n_layers() {
            let (r0, r1) = (old.layer_info(i).unwrap().record, new.layer_info(i).unwrap().record);
            let int8 = r0.precision() == Some(Precision::Int8);
            assert_eq!(r1.flags, if int8 { r0.flags | FLAG_INT8_WORDS } else { r0.flags }, "{rel} layer {i}");
        }
        // Storing again changes nothing.
        assert_eq!(stored(&out), (out.clone(), 0), "{rel}");

        // Samples (the inverse pass), their log p row by row and in a batch.
        let (d, c) = (old.dim(), old.context_dim());
        let ctx = vec![0.25f32; c];
        let (mut s0, mut s1) = (vec![0.0f32; old.scratch_len()], vec![0.0f32; new.scratch_len()]);
        let n = 37;
        let (mut xs, mut ctxs) = (Vec::new(), Vec::new());
        let (mut g0, mut g1) = (Rng::new(11), Rng::new(11));
        let (mut x0, mut x1) = (vec![0.0f32; d], vec![0.0f32; d]);
        for _ in 0..n {
            let l0 = old.sample(&mut g0, &ctx, &mut x0, &mut s0).unwrap();
            let l1 = new.sample(&mut g1, &ctx, &mut x1, &mut s1).unwrap();
            assert_eq!(l0.to_bits(), l1.to_bits(), "{rel}: sample log p");
            assert_eq!(
                x0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                x1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            xs.extend_from_slice(&x0);
            ctxs.extend_from_slice(&ctx);
        }
        let mut batch = vec![0.0f32; n];
        let mut bs = vec![0.0f32; new.batch_scratch_len()];
        new.log_prob_batch(&xs, &ctxs, &mut batch, &mut bs).unwrap();
        for (r, got) in batch.iter().enumerate() {
            let x = &xs[r * d..(r + 1) * d];
            let want = old.log_prob(x, &ctx, &mut s0).unwrap();
            assert_eq!(new.log_prob(x, &ctx, &mut s1).unwrap().to_bits(), want.to_bits(), "{rel} row {r}");
            assert_eq!(got.to_bits(), want.to_bits(), "{rel} batch row {r}");
        }
    }
}

#[test]
fn malformed_words_and_misplaced_flags_are_rejected() {
    let src = read(INT8[0]);
    let (out, _) = stored(&src);
    let words = tensors(&out)
        .into_iter()
        .zip(tensors(&src))
        .enumerate()
        .find(|(_, (y, x))| x.dtype != y.dtype)
        .map(|(t, (y, _))| (t as u32, y))
        .expect("a word tensor");
    let at = words.1.offset as usize + 4 * (words.1.len() - 1);
    let w = i32::from_le_bytes(out[at..at + 4].try_into().unwrap());
    for bad in [w & !0xFF, (w & !0xFF) | 31, w & i32::MAX, w | 0x40] {
        let mut f = out.clone();
        f[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        fix_crc(&mut f);
        let buf = aligned(&f);
        assert!(matches!(load(&buf, f.len()), Err(Error::InvalidParameter(_))), "{bad:#x}");
    }
    // The flag on a file whose scales were not rewritten: the scales' dtype is wrong.
    let h = Header::decode(&src).unwrap();
    let layer = (0..h.n_layers)
        .find(|&i| {
            let at = h.layer_table as usize + 32 * usize::from(i);
            LayerRecord::decode(&src[at..at + 32], i).unwrap().precision() == Some(Precision::Int8)
        })
        .unwrap();
    let flags_at = h.layer_table as usize + 32 * usize::from(layer) + 2;
    let mut f = src.clone();
    f[flags_at] |= FLAG_INT8_WORDS;
    fix_crc(&mut f);
    let buf = aligned(&f);
    assert_eq!(load(&buf, f.len()).err(), Some(Error::ShapeMismatch(layer)));
    // The flag on an f32 and on a w8 conditioner (their first coupling).
    for rel in ["fuzz/seeds/spline-coupling.floe", "fuzz/seeds/affine-coupling-w8.floe"] {
        let mut f = read(rel);
        let h = Header::decode(&f).unwrap();
        let record = |f: &[u8], i: u16| {
            let at = h.layer_table as usize + 32 * usize::from(i);
            LayerRecord::decode(&f[at..at + 32], i).unwrap()
        };
        let layer = (0..h.n_layers).find(|&i| record(&f, i).hidden > 0).expect("a conditioner");
        assert!(record(&f, layer).precision() != Some(Precision::Int8), "{rel}");
        f[h.layer_table as usize + 32 * usize::from(layer) + 2] |= FLAG_INT8_WORDS;
        fix_crc(&mut f);
        let buf = aligned(&f);
        assert_eq!(load(&buf, f.len()).err(), Some(Error::BadLayer(layer)), "{rel}");
    }
    // A damaged source is refused before anything is written.
    let mut f = src.clone();
    f[100] ^= 1;
    let mut out = vec![0u8; f.len() * 2];
    assert_eq!(requant_words::store(&f, &mut out), Err(Error::BadCrc));
    assert_eq!(requant_words::store(&src, &mut out[..src.len()]), Err(Error::InvalidArgument));
}

#[test]
fn a_layer_with_a_unit_out_of_range_keeps_its_scales() {
    // A zero scale (a legal, dead unit) has no word: its layer keeps the
    // derived form, the others are rewritten, and the results keep their bits.
    let mut src = read(INT8[0]);
    let before = tensors(&src);
    let h = Header::decode(&src).unwrap();
    let int8: Vec<u16> = (0..h.n_layers)
        .filter(|&i| {
            let at = h.layer_table as usize + 32 * usize::from(i);
            LayerRecord::decode(&src[at..at + 32], i).unwrap().precision() == Some(Precision::Int8)
        })
        .collect();
    assert!(int8.len() >= 2);
    // The first int8 layer's first hidden scale: table, W, then s.
    let at = h.layer_table as usize + 32 * usize::from(int8[0]);
    let first = LayerRecord::decode(&src[at..at + 32], int8[0]).unwrap().first_tensor as usize;
    let s = before[first + 2];
    assert_eq!(s.dtype, DType::BF16);
    src[s.offset as usize..s.offset as usize + 2].copy_from_slice(&[0, 0]);
    fix_crc(&mut src);
    let (out, done) = stored(&src);
    assert_eq!(done, int8.len() - 1);
    let (b0, b1) = (aligned(&src), aligned(&out));
    let (old, new) = (load(&b0, src.len()).unwrap(), load(&b1, out.len()).unwrap());
    for &i in &int8 {
        assert_eq!(new.layer_info(usize::from(i)).unwrap().record.requant_words(), i != int8[0], "layer {i}");
    }
    let d = old.dim();
    let (mut s0, mut s1) = (vec![0.0f32; old.scratch_len()], vec![0.0f32; new.scratch_len()]);
    let mut g = Rng::new(5);
    for r in 0..64 {
        let x: Vec<f32> = (0..d).map(|_| 2.0 * g.normal()).collect();
        let (a, b) = (old.log_prob(&x, &[], &mut s0).unwrap(), new.log_prob(&x, &[], &mut s1).unwrap());
        assert_eq!(a.to_bits(), b.to_bits(), "row {r}");
    }
}
