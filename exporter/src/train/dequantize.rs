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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grid_steps_find_the_grid_and_leave_continuous_columns_alone() {
        // Columns: integers (step 1), a 0.25 grid, continuous, constant.
        let n = 400;
        let x: Vec<f32> = (0..n)
            .flat_map(|i| {
                let f = i as f32;
                [(i % 7) as f32, 0.25 * (i % 5) as f32, (f * 0.618_034).fract() * 3.0 + f * 1e-3, 2.0]
            })
            .collect();
        assert_eq!(grid_steps(&x, 4), vec![1.0, 0.25, 0.0, 1.0]);
        // One row: nothing to learn a grid from.
        assert_eq!(grid_steps(&[5.0, 6.0], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn host_noise_is_uniform_on_each_columns_step_and_seeded() {
        let q = [1.0f32, 0.25, 0.0];
        let n = 20_000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let e = host_noise(&q, n, &mut rng);
        assert_eq!(e.len(), n * 3);
        for (j, &qj) in q.iter().enumerate() {
            let col: Vec<f64> = (0..n).map(|i| f64::from(e[i * 3 + j])).collect();
            assert!(col.iter().all(|v| v.abs() <= f64::from(qj) / 2.0), "column {j} leaves [-q/2, q/2]");
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            // U(-q/2, q/2): mean 0 (std error q/sqrt(12 n)), variance q²/12.
            let q = f64::from(qj);
            assert!(mean.abs() <= 4.0 * q / (12.0 * n as f64).sqrt() + 1e-12, "column {j}: mean {mean}");
            assert!((var - q * q / 12.0).abs() <= 0.05 * q * q / 12.0 + 1e-12, "column {j}: variance {var}");
        }
        let again = host_noise(&q, n, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(e, again);
    }
}
