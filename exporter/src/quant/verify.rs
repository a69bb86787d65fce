//! The bit-exact check of a quantized file, against the reference arithmetic.

use floe_runtime::Model;

use super::calibrate::trace;
use super::reference::reference;
use crate::data::Rows;
use crate::error::{FloeError, ParityError, Result};
use crate::freeze::FrozenModel;

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// What [`verify`] compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Conditioner outputs equal to the reference's, bit for bit.
    pub values: usize,
    /// Rows whose `log p` equals the simulated quantization's, bit for bit.
    pub rows: usize,
}

/// Two checks on the `check` rows: (1) the quantized file's conditioner outputs
/// (the runtime's kernels) equal the reference arithmetic's on the same inputs,
/// bit for bit; (2) the f32 model, its quantized layers' conditioner outputs
/// replaced by the reference arithmetic, gives the quantized runtime's `log p`
/// bit for bit, row by row. Row `i` runs trajectory step `steps[i]` (0 when
/// `steps` is empty).
pub(crate) fn verify(
    quantized: &FrozenModel,
    q_model: &Model<'_>,
    f32_model: &Model<'_>,
    check: &Rows,
    steps: &[usize],
) -> Result<Verified> {
    let mut values = 0usize;
    let mut mismatch: Option<FloeError> = None;
    let q_lp = trace(q_model, check, steps, &mut |l, input, output| {
        let layer = &quantized.layers[l as usize];
        if !layer.precision.is_quantized() || mismatch.is_some() {
            return;
        }
        match reference(layer, input) {
            Ok(r) if same_bits(&r, output) => values += r.len(),
            Ok(r) => {
                let k = r.iter().zip(output.iter()).position(|(a, b)| a.to_bits() != b.to_bits()).unwrap_or(0);
                let index = if r.len() == output.len() { k } else { r.len().min(output.len()) };
                mismatch = Some(
                    ParityError::Conditioner {
                        layer: l,
                        index,
                        runtime: output.get(index).copied(),
                        reference: r.get(index).copied(),
                    }
                    .into(),
                );
            }
            Err(e) => mismatch = Some(e),
        }
    })?;
    let sim_lp = trace(f32_model, check, steps, &mut |l, input, output| {
        let layer = &quantized.layers[l as usize];
        if !layer.precision.is_quantized() || mismatch.is_some() {
            return;
        }
        match reference(layer, input) {
            Ok(r) if r.len() == output.len() => output.copy_from_slice(&r),
            Ok(r) => {
                mismatch = Some(
                    ParityError::Conditioner {
                        layer: l,
                        index: r.len().min(output.len()),
                        runtime: None,
                        reference: None,
                    }
                    .into(),
                )
            }
            Err(e) => mismatch = Some(e),
        }
    })?;
    if let Some(e) = mismatch {
        return Err(e);
    }
    if let Some(row) = q_lp.iter().zip(&sim_lp).position(|(a, b)| a.to_bits() != b.to_bits()) {
        return Err(ParityError::LogProb { row, runtime: q_lp[row], simulated: sim_lp[row] }.into());
    }
    Ok(Verified { values, rows: q_lp.len() })
}
