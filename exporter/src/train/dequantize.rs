//! Uniform dequantization: real data sit on grids (integers, fixed decimals);
//! training adds `U(-q/2, q/2)` noise at each such column's grid step `q`.

/// Grid step of each column of row-major `x` (`d` columns): the smallest gap
/// between distinct values when the column has at most `n / 4` distinct values
/// (a quantized measurement), 1 for a column constant on more than one row, else 0.
pub fn grid_steps(x: &[f32], d: usize) -> Vec<f32> {
    let n = x.len() / d.max(1);
    (0..d)
        .map(|j| {
            let mut v: Vec<f32> = (0..n).map(|i| x[i * d + j]).collect();
            v.sort_by(f32::total_cmp);
            v.dedup();
            if v.len() < 2 {
                // Constant on the training rows: a unit of noise keeps the density
                // bounded (a flow would otherwise squeeze the column to a point and
                // its likelihood would grow without limit).
                return if n > 1 { 1.0 } else { 0.0 };
            }
            if v.len() > n / 4 {
                return 0.0;
            }
            v.windows(2).map(|w| w[1] - w[0]).fold(f32::INFINITY, f32::min)
        })
        .collect()
}

/// Dequantization noise for `n` rows drawn on the host: `u·q` with
/// `u ~ U(−½, ½)` per value (row-major, `q.len()` per row).
pub(crate) fn host_noise(q: &[f32], n: usize, rng: &mut impl rand::Rng) -> Vec<f32> {
    (0..n).flat_map(|_| q.iter().map(|&qj| qj * (rng.gen::<f32>() - 0.5)).collect::<Vec<_>>()).collect()
}
