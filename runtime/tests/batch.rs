//! `Model::log_prob_batch` gives each of the bundled thyroid rows the bits
//! `Model::log_prob` gives it, f32 and int8 models. An integration test of the
//! runtime alone, so it runs wherever the runtime's tests run: x86-64 here, and
//! aarch64 under `cargo xtask aarch64` (the cross-crate tests in
//! tests/tests/all/batch.rs cover every transform, context and row count).

use floe_runtime::kernels::LANES;
use floe_runtime::Model;

/// A bundled file of `firmware/assets/`.
fn asset(name: &str) -> Vec<u8> {
    let path = format!("{}/../firmware/assets/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn batch_rows_have_the_single_row_bits() {
    let x: Vec<f32> =
        asset("thyroid.f32").chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    for name in ["thyroid.floe", "thyroid-int8.floe"] {
        let file = asset(name);
        let mut words = vec![0u128; file.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..file.len()].copy_from_slice(&file);
        let m = Model::load(&bytemuck::cast_slice::<u128, u8>(&words)[..file.len()]).expect("loads");
        let d = m.dim();
        // Three lane-fulls and a remainder: the bundled rows, repeated as needed.
        let n = 3 * LANES + 5;
        assert!(x.len() / d > LANES, "{name}: only {} rows", x.len() / d);
        let x: Vec<f32> = x.iter().copied().cycle().take(n * d).collect();
        let mut out = vec![0.0f32; n];
        let mut scratch = vec![0.0f32; m.batch_scratch_len()];
        m.log_prob_batch(&x[..n * d], &[], &mut out, &mut scratch).expect("batch");
        let mut one = vec![0.0f32; m.scratch_len()];
        for (r, got) in out.iter().enumerate() {
            let want = m.log_prob(&x[r * d..(r + 1) * d], &[], &mut one).expect("row");
            assert_eq!(got.to_bits(), want.to_bits(), "{name} row {r}");
        }
    }
}
