//! One file, one encoding: `Model::load` refuses every layout but the one the
//! encoder writes (docs/FORMAT.md, "Canonical layout"). Each test builds a
//! variant of a small model (a fuzz seed) that is well formed in every other respect (its
//! offsets and lengths rewritten consistently, its CRC fixed) and checks the
//! typed error.

use std::vec::Vec;

use super::layout::{header as hdr, tensor as tr};
use super::{crc32, CRC_LEN, TENSOR_RECORD_LEN};
use crate::{Error, Model};

/// A small model with padding before several tensors (fast under Miri too).
const SMALL: &[u8] = include_bytes!("../../../fuzz/seeds/spline-coupling.floe");

fn rd(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn wr(b: &mut [u8], at: usize, v: usize) {
    // Offsets and lengths of the small seed model fit a u32.
    b[at..at + 4].copy_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

/// The header's tensor count, tensor table offset and data offset.
fn layout(b: &[u8]) -> (usize, usize, usize) {
    (rd(b, hdr::N_TENSORS), rd(b, hdr::TENSOR_TABLE), rd(b, hdr::DATA_OFFSET))
}

fn tensor_offset(b: &[u8], i: usize) -> usize {
    let (_, table, _) = layout(b);
    rd(b, table + i * TENSOR_RECORD_LEN + tr::OFFSET)
}

/// `n` zero bytes inserted at `at` (in the data section or before the CRC),
/// with the file length, the data offset and every tensor offset at or after
/// `at` moved to match, and the CRC fixed.
fn with_gap(file: &[u8], at: usize, n: usize) -> Vec<u8> {
    let mut b = file.to_vec();
    b.splice(at..at, core::iter::repeat_n(0u8, n));
    let (count, table, data) = layout(&b);
    wr(&mut b, hdr::FILE_LEN, file.len() + n);
    if data >= at {
        wr(&mut b, hdr::DATA_OFFSET, data + n);
    }
    for i in 0..count {
        let off = tensor_offset(&b, i);
        if off >= at {
            wr(&mut b, table + i * TENSOR_RECORD_LEN + tr::OFFSET, off + n);
        }
    }
    fix_crc(&mut b);
    b
}

fn fix_crc(b: &mut [u8]) {
    let body = b.len() - CRC_LEN;
    let crc = crc32(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Load from a 4-byte aligned copy.
fn load(b: &[u8]) -> Result<(), Error> {
    let mut words = std::vec![0u32; b.len().div_ceil(4)];
    let aligned: &mut [u8] = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..b.len()];
    aligned.copy_from_slice(b);
    Model::load(aligned).map(|_| ())
}

#[test]
fn the_seed_file_and_its_unmoved_copy_load() {
    assert_eq!(load(SMALL), Ok(()));
    // The gap helper itself is sound: a gap of zero bytes changes nothing.
    assert_eq!(with_gap(SMALL, SMALL.len() - CRC_LEN, 0), SMALL);
}

#[test]
fn a_gap_after_the_tensor_table_is_a_bad_header() {
    let (_, _, data) = layout(SMALL);
    // 16 bytes keep every tensor aligned: only the gap is wrong.
    assert_eq!(load(&with_gap(SMALL, data, 16)), Err(Error::BadHeader));
}

#[test]
fn a_gap_between_tensors_is_a_bad_tensor() {
    let (count, _, _) = layout(SMALL);
    for i in [1, count / 2, count - 1] {
        let at = tensor_offset(SMALL, i);
        assert_eq!(load(&with_gap(SMALL, at, 16)), Err(Error::BadTensor(i as u32)), "gap before tensor {i}");
    }
}

#[test]
fn a_gap_before_the_crc_is_a_bad_header() {
    for n in [1, 4, 16] {
        let at = SMALL.len() - CRC_LEN;
        assert_eq!(load(&with_gap(SMALL, at, n)), Err(Error::BadHeader), "{n} bytes before the CRC");
    }
}

#[test]
fn non_zero_padding_is_refused() {
    let (count, table, data) = layout(SMALL);
    // The data start right after the tensor table: 64 + 32 L + 16 T is always a
    // multiple of 16, so the only padding is before tensors.
    assert_eq!(data, table + count * TENSOR_RECORD_LEN);
    // Padding before a tensor: the seed model has some (its vectors are not
    // all multiples of four floats), and every byte of it is checked.
    let mut checked = 0;
    let mut end = data;
    for i in 0..count {
        let off = tensor_offset(SMALL, i);
        // Under Miri (a load takes seconds there) the first byte of each run.
        for p in (end..off).take(if cfg!(miri) { 1 } else { usize::MAX }) {
            let mut b = SMALL.to_vec();
            b[p] = 0x80;
            fix_crc(&mut b);
            assert_eq!(load(&b), Err(Error::BadTensor(i as u32)), "padding byte {p} before tensor {i}");
            checked += 1;
        }
        let (rows, cols) = (rd(SMALL, table + i * 16 + tr::ROWS), rd(SMALL, table + i * 16 + tr::COLS));
        let width = match SMALL[table + i * 16 + tr::DTYPE] {
            1 | 4 => 4,
            2 | 5 => 2,
            _ => 1,
        };
        end = off + rows * cols * width;
    }
    assert!(checked > 0, "the seed model has no padding to test");
}

#[test]
fn a_tensor_count_the_layers_do_not_add_up_to_is_a_bad_header() {
    // One more tensor record than the layers own, everything else canonical:
    // the record is inserted at the end of the table and the data moved by 16.
    let (count, table, _) = layout(SMALL);
    let table_end = table + count * TENSOR_RECORD_LEN;
    let mut b = with_gap(SMALL, table_end, TENSOR_RECORD_LEN);
    // `with_gap` moved the data offset and the tensors; now the gap is a record,
    // a copy of the last one (its offset already moved).
    let last = table + (count - 1) * TENSOR_RECORD_LEN;
    let rec: Vec<u8> = b[last..last + TENSOR_RECORD_LEN].to_vec();
    b[table_end..table_end + TENSOR_RECORD_LEN].copy_from_slice(&rec);
    wr(&mut b, hdr::N_TENSORS, count + 1);
    fix_crc(&mut b);
    assert_eq!(load(&b), Err(Error::BadHeader));
}
