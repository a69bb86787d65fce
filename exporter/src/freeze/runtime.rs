//! Batch helpers over a loaded [`Model`]: the host asks for many rows at once
//! ([`Model::log_prob_batch`], over threads), with the single-row calls' bits.

use floe_runtime::{Model, Rng, Score};

use crate::data::Rows;
use crate::error::Result;

/// Runtime `log p` (data units) of every row: [`Model::log_prob_batch`] (the
/// bits of [`Model::log_prob`], rows in vector lanes), the rows split over
/// the CPU's threads when there are many.
pub fn log_probs(model: &Model<'_>, rows: &Rows) -> Result<Vec<f64>> {
    let n = rows.n();
    if rows.dim != model.dim() || rows.context_dim != model.context_dim() {
        // The single-row call names the mismatch.
        let mut scratch = vec![0.0f32; model.scratch_len()];
        return rows.iter().map(|(x, c)| Ok(model.log_prob(x, c, &mut scratch)? as f64)).collect();
    }
    let (d, cd) = (rows.dim, rows.context_dim);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(4096);
    let mut out = vec![0.0f32; n];
    std::thread::scope(|s| -> Result<()> {
        let jobs: Vec<_> = out
            .chunks_mut(chunk)
            .enumerate()
            .map(|(k, o)| {
                let (r0, r1) = (k * chunk, k * chunk + o.len());
                let (x, c) = (&rows.x[r0 * d..r1 * d], &rows.c[r0 * cd..r1 * cd]);
                s.spawn(move || {
                    let mut scratch = vec![0.0f32; model.batch_scratch_len()];
                    model.log_prob_batch(x, c, o, &mut scratch)
                })
            })
            .collect();
        // Every thread joined before the first error (in row order) is returned.
        let done: Vec<_> = jobs.into_iter().map(|j| j.join()).collect();
        for r in done {
            r.map_err(|_| crate::error::FloeError::Internal("a scoring thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(out.into_iter().map(f64::from).collect())
}

/// Runtime anomaly scores of every row: [`Model::score`]'s rule
/// ([`Score::of_log_prob`]) on the `log p` of [`log_probs`].
pub fn scores(model: &Model<'_>, rows: &Rows) -> Result<Vec<Score>> {
    let (dim, threshold) = (model.dim(), model.anomaly_threshold());
    Ok(log_probs(model, rows)?.into_iter().map(|lp| Score::of_log_prob(lp as f32, dim, threshold)).collect())
}

/// Anomaly scores in nats (`−log p`; `+∞` for a density that overflows f32) of
/// every row, by the runtime's own rule ([`Model::score`]).
pub fn score_nats(model: &Model<'_>, rows: &Rows) -> Result<Vec<f64>> {
    Ok(scores(model, rows)?.iter().map(|s| s.nats as f64).collect())
}

/// `n` samples drawn with the runtime's seeded sampler, row-major.
pub fn samples(model: &Model<'_>, n: usize, seed: u64, context: &[f32]) -> Result<Rows> {
    let mut out = vec![0.0f32; n * model.dim()];
    Sampler::new(model, seed, context).fill(&mut out)?;
    Ok(Rows::new(model.dim(), out))
}

/// The runtime's seeded sampler as a source of rows, for output too large to
/// hold at once: successive [`Sampler::fill`] calls continue one sequence, the
/// same as [`samples`] draws in one go.
pub struct Sampler<'m, 'b> {
    model: &'m Model<'b>,
    rng: Rng,
    context: &'m [f32],
    scratch: Vec<f32>,
}

impl<'m, 'b> Sampler<'m, 'b> {
    /// A sampler of `model` given `context`, seeded by `seed`.
    pub fn new(model: &'m Model<'b>, seed: u64, context: &'m [f32]) -> Self {
        Sampler { model, rng: Rng::new(seed), context, scratch: vec![0.0f32; model.scratch_len()] }
    }

    /// Fill `out` (a whole number of rows) with the next samples.
    pub fn fill(&mut self, out: &mut [f32]) -> Result<()> {
        let d = self.model.dim();
        if d == 0 || !out.len().is_multiple_of(d) {
            return Err(crate::error::FloeError::Internal("Sampler::fill: not a whole number of rows"));
        }
        for row in out.chunks_mut(d) {
            self.model.sample(&mut self.rng, self.context, row, &mut self.scratch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeze::AlignedBytes;

    /// The batch path over threads gives every row `log_prob`'s bits (9,001
    /// rows: whole lanes, a remainder, more than one thread's share), and a
    /// NaN row or a wrong dimension is still the runtime's typed error.
    #[test]
    fn log_probs_have_the_single_row_bits_and_typed_errors() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/assets/");
        let file = std::fs::read(format!("{dir}thyroid.floe")).unwrap();
        let bytes = AlignedBytes::new(&file);
        let m = Model::load(&bytes).unwrap();
        let raw = std::fs::read(format!("{dir}thyroid.f32")).unwrap();
        let base: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let d = m.dim();
        let n = 9001;
        let x: Vec<f32> = (0..n * d).map(|i| base[i % base.len()] * (1.0 + (i / base.len()) as f32 * 1e-4)).collect();
        let rows = Rows::new(d, x);
        let got = log_probs(&m, &rows).unwrap();
        let mut scratch = vec![0.0f32; m.scratch_len()];
        for (i, (xr, c)) in rows.iter().enumerate() {
            assert_eq!(got[i].to_bits(), (m.log_prob(xr, c, &mut scratch).unwrap() as f64).to_bits(), "row {i}");
        }
        let sc = scores(&m, &rows).unwrap();
        for (i, (xr, c)) in rows.iter().enumerate().step_by(97) {
            assert_eq!(sc[i], m.score(xr, c, &mut scratch).unwrap(), "score of row {i}");
        }
        let mut bad = rows.head(40);
        bad.x[33 * d + 1] = f32::NAN;
        assert!(matches!(log_probs(&m, &bad), Err(crate::error::FloeError::Runtime(_))));
        let wrong = Rows::new(d + 1, vec![0.5; 3 * (d + 1)]);
        assert!(matches!(
            log_probs(&m, &wrong),
            Err(crate::error::FloeError::Runtime(floe_runtime::Error::DimMismatch { .. }))
        ));
    }
}
