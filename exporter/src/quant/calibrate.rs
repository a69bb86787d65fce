//! Watching conditioners through the runtime: the inputs each one sees on
//! calibration rows, and `log p` with their outputs rewritten.

use std::collections::BTreeMap;

use floe_runtime::exporter_hooks::{self, Trace};
use floe_runtime::Model;

use crate::data::Rows;
use crate::error::Result;

/// Run the runtime over `rows` with `visit(layer, input, output)` called after
/// every conditioner evaluation (it may rewrite the output). Row `i` runs
/// trajectory step `steps[i]`'s flow (step 0 when `steps` is empty). Returns
/// every row's `log p`.
pub(crate) fn trace(model: &Model<'_>, rows: &Rows, steps: &[usize], visit: &mut Trace<'_>) -> Result<Vec<f32>> {
    let mut scratch = vec![0.0f32; model.scratch_len()];
    rows.iter()
        .enumerate()
        .map(|(i, (x, c))| {
            let step = steps.get(i).copied().unwrap_or(0);
            Ok(exporter_hooks::log_prob_traced(model, step, x, c, &mut scratch, visit)?)
        })
        .collect()
}

/// The inputs every conditioner sees on `rows` (row `i` at step `steps[i]`), by
/// layer index.
pub(crate) fn conditioner_inputs(
    model: &Model<'_>,
    rows: &Rows,
    steps: &[usize],
) -> Result<BTreeMap<u16, Vec<Vec<f32>>>> {
    let mut inputs: BTreeMap<u16, Vec<Vec<f32>>> = BTreeMap::new();
    trace(model, rows, steps, &mut |l, input, _| inputs.entry(l).or_default().push(input.to_vec()))?;
    Ok(inputs)
}
