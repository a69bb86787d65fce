//! Batch helpers over a loaded [`Model`]: the runtime evaluates one row at a time,
//! the host asks for many.

use floe_runtime::{Model, Rng, Score};

use crate::data::Rows;
use crate::error::Result;

/// Runtime `log p` (data units) of every row.
pub fn log_probs(model: &Model<'_>, rows: &Rows) -> Result<Vec<f64>> {
    let mut scratch = vec![0.0f32; model.scratch_len()];
    rows.iter().map(|(x, c)| Ok(model.log_prob(x, c, &mut scratch)? as f64)).collect()
}

/// Runtime anomaly scores of every row ([`Model::score`]).
pub fn scores(model: &Model<'_>, rows: &Rows) -> Result<Vec<Score>> {
    let mut scratch = vec![0.0f32; model.scratch_len()];
    rows.iter().map(|(x, c)| Ok(model.score(x, c, &mut scratch)?)).collect()
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
