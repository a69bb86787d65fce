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
    let d = model.dim();
    let mut rng = Rng::new(seed);
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut out = vec![0.0f32; n * d];
    for row in out.chunks_mut(d) {
        model.sample(&mut rng, context, row, &mut scratch)?;
    }
    Ok(Rows::new(d, out))
}
