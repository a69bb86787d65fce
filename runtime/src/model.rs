//! The loaded model: validation at load (once), then `log_prob`, `forward`,
//! `inverse` and `sample` with caller-provided scratch memory.

use crate::base::Base;
use crate::error::{Error, Result};
use crate::fmt::debug;
use crate::format::{BaseKind, DType, Header, LayerRecord, TrajectoryLayout, View, MAX_COMPONENTS, N_GLOBAL_TENSORS};
use crate::kernels::{sub, take, LANES};
use crate::rng::Rng;
use crate::transforms::{Dims, Encoder, Layer, Plan, Tracer};

/// Scratch (in `f32` words) needed by a model: `2 D + C` for the flow-level
/// buffers (state, temporary, standardized context) plus the largest layer's work.
pub(crate) fn scratch_words(dim: usize, cdim: usize, max_layer_work: usize) -> usize {
    2 * dim + cdim + max_layer_work
}

/// A validated model, borrowing its bytes (flash or RAM) for its whole life.
///
/// Loading checks every field once; afterwards evaluation can only fail on the
/// caller's account (lengths, non-finite inputs, scratch too small).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    view: View<'a>,
    base: Base<'a>,
    x_mean: &'a [f32],
    x_std: &'a [f32],
    c_mean: &'a [f32],
    c_std: &'a [f32],
    /// `-sum(ln std)`: log-determinant of the standardization.
    std_logdet: f32,
    /// `std_logdet + base normalizer`: the constant part of `log_prob`.
    log_const: f32,
    /// The flow's first layer (1 in a trajectory file: layer 0 is its encoder).
    flow_first: u16,
    /// Layers per flow step (all of the flow, or a trajectory's per-step flow).
    flow_len: u16,
    /// One flow per trajectory step (else one flow for every step).
    per_step: bool,
}

/// Summary of one layer, for tools and logs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerInfo {
    /// The decoded record.
    pub record: LayerRecord,
    /// Number of parameters (tensor elements) the layer owns.
    pub n_params: usize,
    /// Bytes of tensor data the layer owns.
    pub n_bytes: usize,
    /// Scratch words the layer needs beyond the flow-level buffers.
    pub work: usize,
}

impl<'a> Model<'a> {
    /// Validate `bytes` and borrow it as a model. `bytes` must start at a 4-byte
    /// aligned address and may be longer than the file (trailing bytes are ignored).
    pub fn load(bytes: &'a [u8]) -> Result<Model<'a>> {
        let loaded = Model::validate(bytes);
        if let Err(e) = &loaded {
            debug!("floe: model rejected: {}", e);
        }
        loaded
    }

    fn validate(bytes: &'a [u8]) -> Result<Model<'a>> {
        let view = View::open(bytes)?;
        let h = *view.header();
        let g = N_GLOBAL_TENSORS as u32;
        check_tensor_count(&view, g + h.base.n_tensors() as u32)?;
        check_tensors(&view)?;
        let dim = view.dim();
        let cdim = view.context_dim();
        let x_mean = vec_tensor(&view, 0, dim)?;
        let x_std = vec_tensor(&view, 1, dim)?;
        let c_mean = vec_tensor(&view, 2, cdim)?;
        let c_std = vec_tensor(&view, 3, cdim)?;
        if x_std.iter().chain(c_std).any(|&s| !(s > 0.0)) {
            return Err(Error::InvalidStandardization);
        }
        let base = match h.base {
            BaseKind::StdNormal => Base::StdNormal,
            BaseKind::DiagNormal => {
                Base::DiagNormal { loc: vec_tensor(&view, g, dim)?, log_scale: vec_tensor(&view, g + 1, dim)? }
            }
            BaseKind::StudentT => {
                let df = vec_tensor(&view, g, dim)?;
                if df.iter().any(|&v| !(v > 0.0)) {
                    return Err(Error::InvalidBase);
                }
                Base::StudentT { df }
            }
            BaseKind::Mixture => {
                let logits = view.f32_shaped(g, None, 1)?;
                let k = logits.len();
                if !(1..=MAX_COMPONENTS).contains(&k) {
                    return Err(Error::InvalidBase);
                }
                let loc = view.f32_shaped(g + 1, Some(k), dim)?;
                let log_scale = view.f32_shaped(g + 2, Some(k), dim)?;
                Base::Mixture { logits, loc, log_scale }
            }
        };
        let mut next = g + h.base.n_tensors() as u32;
        let mut max_work = 0usize;
        for i in 0..h.n_layers {
            let (plan, rec) = Plan::validate(&view, i, next)?;
            next = rec.first_tensor + rec.n_tensors;
            max_work = max_work.max(plan.work_len());
        }
        if scratch_words(dim, cdim, max_work) != h.scratch_len as usize {
            return Err(Error::ScratchMismatch);
        }
        let mut std_logdet = 0.0f32;
        for &s in x_std {
            std_logdet -= libm::logf(s);
        }
        let log_const = base.log_norm(dim) + std_logdet;
        let (flow_first, flow_len) = match h.trajectory {
            Some(t) if t.per_step => (1, (h.n_layers - 1) / t.horizon as u16),
            Some(_) => (1, h.n_layers - 1),
            None => (0, h.n_layers),
        };
        let per_step = h.trajectory.is_some_and(|t| t.per_step);
        Ok(Model { view, base, x_mean, x_std, c_mean, c_std, std_logdet, log_const, flow_first, flow_len, per_step })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        self.view.header()
    }
    /// Data dimension D.
    pub fn dim(&self) -> usize {
        self.view.dim()
    }
    /// Context dimension C (0 for an unconditional flow).
    pub fn context_dim(&self) -> usize {
        self.view.context_dim()
    }
    /// Number of layers.
    pub fn n_layers(&self) -> usize {
        self.header().n_layers as usize
    }
    /// Scratch length, in `f32` words, that every evaluation call needs.
    pub fn scratch_len(&self) -> usize {
        self.header().scratch_len as usize
    }
    /// The base distribution kind.
    pub fn base_kind(&self) -> BaseKind {
        self.base.kind()
    }
    /// Length of the model file in bytes.
    pub fn file_len(&self) -> usize {
        self.view.bytes().len()
    }
    /// Input standardization `(mean, std)`, each of length D.
    pub fn standardization(&self) -> (&'a [f32], &'a [f32]) {
        (self.x_mean, self.x_std)
    }
    /// Context standardization `(mean, std)`, each of length C.
    pub fn context_standardization(&self) -> (&'a [f32], &'a [f32]) {
        (self.c_mean, self.c_std)
    }
    /// Summary of layer `i`.
    pub fn layer_info(&self, i: usize) -> Result<LayerInfo> {
        let idx = u16::try_from(i).map_err(|_| Error::Internal)?;
        let record = self.view.layer(idx)?;
        let plan = Plan::of(&record, &Dims::of(self.header()));
        let (mut n_params, mut n_bytes) = (0, 0);
        for j in 0..record.n_tensors {
            let t = self.view.tensor(record.first_tensor + j)?;
            n_params += t.len();
            n_bytes += t.n_bytes();
        }
        Ok(LayerInfo { record, n_params, n_bytes, work: plan.work_len() })
    }

    /// The file view (for the exporter hooks).
    pub(crate) fn view(&self) -> &View<'a> {
        &self.view
    }

    /// The trajectory layout, if the file is a trajectory model.
    pub fn trajectory_layout(&self) -> Option<TrajectoryLayout> {
        self.header().trajectory
    }

    /// A trajectory model's history encoder (layer 0).
    pub(crate) fn encoder(&self) -> Result<Encoder<'_, 'a>> {
        match Layer::bind(&self.view, 0)? {
            Layer::Encoder(e) if self.flow_first == 1 => Ok(e),
            _ => Err(Error::Internal),
        }
    }

    /// The flow layers of step `step` (0-based): every flow layer, unless the file
    /// has one flow per trajectory step.
    pub(crate) fn step_layers(&self, step: usize) -> Result<(u16, u16)> {
        if !self.per_step {
            return Ok((self.flow_first, self.flow_len));
        }
        let s = u16::try_from(step).map_err(|_| Error::Internal)?;
        let first = s.checked_mul(self.flow_len).and_then(|o| o.checked_add(self.flow_first)).ok_or(Error::Internal)?;
        if first.checked_add(self.flow_len).is_none_or(|end| end > self.header().n_layers) {
            return Err(Error::Internal);
        }
        Ok((first, self.flow_len))
    }

    fn check_call(&self, x: &[f32], ctx: &[f32], scratch: &[f32]) -> Result<()> {
        if x.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(x) });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        self.check_context(ctx, scratch)
    }

    fn check_context(&self, ctx: &[f32], scratch: &[f32]) -> Result<()> {
        if ctx.len() != self.context_dim() {
            return Err(Error::ContextMismatch { expected: self.context_dim() as u32, got: len32(ctx) });
        }
        if scratch.len() < self.scratch_len() {
            return Err(Error::ScratchTooSmall { needed: self.scratch_len() as u32, got: len32(scratch) });
        }
        if ctx.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        Ok(())
    }

    /// Split scratch into (state D, tmp D, standardized context C, layer work) and
    /// fill the context.
    #[allow(clippy::type_complexity)]
    fn buffers<'s>(
        &self,
        ctx: &[f32],
        mut scratch: &'s mut [f32],
    ) -> Result<(&'s mut [f32], &'s mut [f32], &'s mut [f32], &'s mut [f32])> {
        let d = self.dim();
        let state = take(&mut scratch, d)?;
        let tmp = take(&mut scratch, d)?;
        let c = take(&mut scratch, self.context_dim())?;
        for (((o, &v), &m), &s) in c.iter_mut().zip(ctx).zip(self.c_mean).zip(self.c_std) {
            *o = (v - m) / s;
        }
        Ok((state, tmp, c, scratch))
    }

    /// `log p(x | context)` in nats, in data units (the standardization's
    /// log-determinant is included). In a trajectory file: the first step's flow.
    pub fn log_prob(&self, x: &[f32], context: &[f32], scratch: &mut [f32]) -> Result<f32> {
        self.log_prob_with(0, x, context, scratch, &mut Tracer::none())
    }

    /// [`Model::log_prob`] of trajectory step `step`'s flow, reporting every
    /// conditioner evaluation to `trace`.
    pub(crate) fn log_prob_with(
        &self,
        step: usize,
        x: &[f32],
        context: &[f32],
        scratch: &mut [f32],
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        self.check_call(x, context, scratch)?;
        let layers = self.step_layers(step)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        for (((o, &v), &m), &s) in state.iter_mut().zip(x).zip(self.x_mean).zip(self.x_std) {
            *o = (v - m) / s;
        }
        let ld = self.run(layers, state, tmp, c, work, false, trace)?;
        Ok(not_nan(self.base.log_kernel(state)? + ld + self.log_const))
    }

    /// Scratch (`f32` words) [`Model::log_prob_batch`] needs: each of the
    /// [`LANES`] rows its own [`Model::scratch_len`] and its state and context,
    /// plus what the widest f32 coupling conditioner needs to run on all lanes
    /// at once.
    pub fn batch_scratch_len(&self) -> usize {
        let mut shared = 0;
        if let Ok((first, n)) = self.step_layers(0) {
            for i in first..first.saturating_add(n) {
                if let Ok(Layer::Coupling(c)) = Layer::bind(&self.view, i) {
                    if c.cond.has_lanes() {
                        shared = shared.max(c.lanes_work_len());
                    }
                }
            }
        }
        LANES * (self.scratch_len() + self.dim() + self.context_dim()) + shared
    }

    /// [`Model::log_prob`] of many rows: `x` holds `out.len()` rows of D values,
    /// `context` as many rows of C values (empty when C = 0). Rows go [`LANES`] at
    /// a time through the flow; an f32 coupling layer's conditioner runs on all of
    /// them at once in the CPU's vector lanes, every lane performing exactly the
    /// single-row sequence of operations, so each `out[r]` has the bits
    /// `log_prob` gives row `r` (tested), on the host as on a device. The other
    /// layers, the last `out.len() % LANES` rows and quantized conditioners take
    /// the single-row path. `scratch` must hold [`Model::batch_scratch_len`]
    /// words. Every row is checked first; a bad row is an error and nothing is
    /// written.
    pub fn log_prob_batch(&self, x: &[f32], context: &[f32], out: &mut [f32], scratch: &mut [f32]) -> Result<()> {
        let (d, cd, rows) = (self.dim(), self.context_dim(), out.len());
        if x.len() != rows * d {
            return Err(Error::DimMismatch { expected: (rows * d) as u32, got: len32(x) });
        }
        if context.len() != rows * cd {
            return Err(Error::ContextMismatch { expected: (rows * cd) as u32, got: len32(context) });
        }
        let needed = self.batch_scratch_len();
        if scratch.len() < needed {
            return Err(Error::ScratchTooSmall { needed: needed as u32, got: len32(scratch) });
        }
        let one = self.scratch_len();
        for r in 0..rows {
            let ctx = context.get(r * cd..(r + 1) * cd).ok_or(Error::Internal)?;
            self.check_call(sub(x, r * d, d)?, ctx, scratch)?;
        }
        let layers = self.step_layers(0)?;
        let full = rows - rows % LANES;
        let (lane_scratch, rest) = scratch.split_at_mut(LANES * one);
        let (states, rest) = rest.split_at_mut(LANES * d);
        let (ctxs, shared) = rest.split_at_mut(LANES * cd);
        let mut chunks = out.chunks_exact_mut(LANES);
        for (chunk, outs) in (&mut chunks).enumerate() {
            let r0 = chunk * LANES;
            // Per lane: its standardized state and context (gathered in two
            // blocks, lane after lane) and its single-row scratch.
            for l in 0..LANES {
                let xr = sub(x, (r0 + l) * d, d)?;
                let st = states.get_mut(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                for (((o, &v), &m), &s) in st.iter_mut().zip(xr).zip(self.x_mean).zip(self.x_std) {
                    *o = (v - m) / s;
                }
                let cr = context.get((r0 + l) * cd..(r0 + l + 1) * cd).ok_or(Error::Internal)?;
                let c = ctxs.get_mut(l * cd..(l + 1) * cd).ok_or(Error::Internal)?;
                for (((o, &v), &m), &s) in c.iter_mut().zip(cr).zip(self.c_mean).zip(self.c_std) {
                    *o = (v - m) / s;
                }
            }
            let mut lds = [0.0f32; LANES];
            let (first, n) = layers;
            for i in first..first + n {
                let layer = Layer::bind(&self.view, i)?;
                match layer {
                    Layer::Coupling(c) if c.cond.has_lanes() => {
                        c.forward_lanes(states, ctxs, lane_scratch, shared, &mut lds)?;
                    }
                    _ => {
                        for (l, ld) in lds.iter_mut().enumerate() {
                            let ls = lane_scratch.get_mut(l * one..(l + 1) * one).ok_or(Error::Internal)?;
                            let (tmp, work) = ls.split_at_mut(d.min(ls.len()));
                            let st = states.get_mut(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                            let c = ctxs.get(l * cd..(l + 1) * cd).ok_or(Error::Internal)?;
                            *ld += layer.apply(st, tmp, c, work, false, &mut Tracer::none())?;
                        }
                    }
                }
            }
            for (l, (o, ld)) in outs.iter_mut().zip(lds).enumerate() {
                let st = states.get(l * d..(l + 1) * d).ok_or(Error::Internal)?;
                *o = not_nan(self.base.log_kernel(st)? + ld + self.log_const);
            }
        }
        self.log_prob_rows(x, context, chunks.into_remainder(), full, lane_scratch)
    }

    /// `out[k] = log_prob(row first + k)`, one row at a time.
    fn log_prob_rows(
        &self,
        x: &[f32],
        context: &[f32],
        out: &mut [f32],
        first: usize,
        scratch: &mut [f32],
    ) -> Result<()> {
        let (d, cd) = (self.dim(), self.context_dim());
        for (k, o) in out.iter_mut().enumerate() {
            let r = first + k;
            let ctx = context.get(r * cd..(r + 1) * cd).ok_or(Error::Internal)?;
            *o = self.log_prob(sub(x, r * d, d)?, ctx, scratch)?;
        }
        Ok(())
    }

    /// Map data `x` to the latent `z` (standardization, then every layer in order).
    /// Returns `log |det dz/dx|`, the standardization included.
    pub fn forward(&self, x: &[f32], context: &[f32], z: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        self.check_call(x, context, scratch)?;
        if z.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(z) });
        }
        let layers = self.step_layers(0)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        for (((o, &v), &m), &s) in state.iter_mut().zip(x).zip(self.x_mean).zip(self.x_std) {
            *o = (v - m) / s;
        }
        let ld = self.run(layers, state, tmp, c, work, false, &mut Tracer::none())?;
        z.copy_from_slice(state);
        Ok(ld + self.std_logdet)
    }

    /// Map a latent `z` back to data `x`. Returns `log |det dz/dx|` at that `x` (the
    /// same quantity [`Model::forward`] returns).
    pub fn inverse(&self, z: &[f32], context: &[f32], x: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        self.check_call(z, context, scratch)?;
        if x.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(x) });
        }
        let layers = self.step_layers(0)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        state.copy_from_slice(z);
        let ld = self.run(layers, state, tmp, c, work, true, &mut Tracer::none())?;
        for (((o, &v), &m), &s) in x.iter_mut().zip(state.iter()).zip(self.x_mean).zip(self.x_std) {
            *o = v * s + m;
        }
        Ok(ld + self.std_logdet)
    }

    /// Draw one sample `x ~ p(x | context)` into `out`; returns its `log_prob`. In
    /// a trajectory file: the first step's flow.
    pub fn sample(&self, rng: &mut Rng, context: &[f32], out: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        self.sample_step(0, rng, context, out, scratch)
    }

    /// [`Model::sample`] from trajectory step `step`'s flow.
    pub(crate) fn sample_step(
        &self,
        step: usize,
        rng: &mut Rng,
        context: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32> {
        if out.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(out) });
        }
        self.check_context(context, scratch)?;
        let layers = self.step_layers(step)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        self.base.sample(rng, state)?;
        let lk = self.base.log_kernel(state)?;
        let ld = self.run(layers, state, tmp, c, work, true, &mut Tracer::none())?;
        for (((o, &v), &m), &s) in out.iter_mut().zip(state.iter()).zip(self.x_mean).zip(self.x_std) {
            *o = v * s + m;
        }
        Ok(not_nan(lk + ld + self.log_const))
    }

    /// Run the `(first, count)` layers forward (or in reverse order, inverted) on
    /// the standardized state. Returns the summed forward log-determinant.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        (first, n): (u16, u16),
        state: &mut [f32],
        tmp: &mut [f32],
        c: &[f32],
        work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let mut ld = 0.0f32;
        for k in 0..n {
            let i = first + if inverse { n - 1 - k } else { k };
            trace.layer = i;
            ld += Layer::bind(&self.view, i)?.apply(state, tmp, c, work, inverse, trace)?;
        }
        Ok(ld)
    }
}

/// A log-density as the runtime reports it: NaN, which only arises where f32
/// overflows inside the flow (an input astronomically far from the data, or a
/// file whose weights overflow `exp`) and the result is `∞ − ∞` or `0 · ∞`,
/// becomes −∞, the log of a density too small for f32. So a log-density is never
/// NaN: it is finite, −∞, or +∞ (a density that overflows).
pub(crate) fn not_nan(log_p: f32) -> f32 {
    if log_p.is_nan() {
        f32::NEG_INFINITY
    } else {
        log_p
    }
}

pub(crate) fn len32(s: &[f32]) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

fn vec_tensor<'a>(view: &View<'a>, i: u32, len: usize) -> Result<&'a [f32]> {
    view.f32_shaped(i, Some(len), 1)
}

/// The header's tensor count is the one the layer records add up to (`first`
/// tensors before the layers', then each layer's range, contiguous): checked
/// before any tensor record is read, so a wrong count is reported as the header
/// field it is.
fn check_tensor_count(view: &View<'_>, first: u32) -> Result<()> {
    let mut next = first;
    for i in 0..view.header().n_layers {
        let rec = view.layer(i)?;
        if rec.first_tensor != next {
            return Err(Error::BadLayer(i));
        }
        next = next.checked_add(rec.n_tensors).ok_or(Error::BadLayer(i))?;
    }
    if next != view.header().n_tensors {
        return Err(Error::BadHeader);
    }
    Ok(())
}

/// Every tensor: record well-formed, and laid out canonically — each at the
/// first 16-byte aligned offset after the previous one (the first right after
/// the tensor table), every padding byte zero, the CRC right after the last
/// tensor — and every f32 finite. One file has one encoding: the one
/// [`crate::format::encode`] writes.
fn check_tensors(view: &View<'_>) -> Result<()> {
    let h = view.header();
    // The data start right after the tensor table (`Header::decode` checked
    // it; 64 + 32 L + 16 T is always 16-aligned, so there is no padding there).
    let mut end = h.data_offset as usize;
    for i in 0..h.n_tensors {
        let (t, bytes) = view.tensor_bytes(i)?;
        let canonical = crate::format::align_up(end, crate::format::TENSOR_ALIGN).ok_or(Error::BadTensor(i))?;
        let padding = view.bytes().get(end..canonical).ok_or(Error::BadTensor(i))?;
        if t.offset as usize != canonical || padding.iter().any(|&b| b != 0) {
            return Err(Error::BadTensor(i));
        }
        end = canonical + bytes.len();
        let finite = match t.dtype {
            DType::F32 => view.f32s(i)?.iter().all(|v| v.is_finite()),
            DType::BF16 => view.u16s(i)?.iter().all(|&v| crate::format::bf16_to_f32(v).is_finite()),
            DType::U16 | DType::I8 | DType::I32 => true,
        };
        if !finite {
            return Err(Error::NonFiniteWeight(i));
        }
    }
    if end != (h.file_len as usize).saturating_sub(crate::format::CRC_LEN) {
        return Err(Error::BadHeader);
    }
    Ok(())
}

/// Scratch words a model with these sizes and layer records needs: what its
/// header's `scratch_len` must say.
pub(crate) fn scratch_len(dims: &Dims, layers: &[LayerRecord]) -> usize {
    let max_work = layers.iter().map(|r| Plan::of(r, dims).work_len()).max().unwrap_or(0);
    scratch_words(dims.dim, dims.cdim, max_work)
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A bundled model file in a 16-byte aligned buffer, and its length.
    fn bundled(name: &str) -> (Vec<u128>, usize) {
        let path = std::format!("{}/../firmware/assets/{name}", env!("CARGO_MANIFEST_DIR"));
        let file = std::fs::read(&path).expect("bundled model");
        let mut words = vec![0u128; file.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..file.len()].copy_from_slice(&file);
        (words, file.len())
    }

    /// `log_prob_batch` gives each row of the bundled thyroid rows (29 of them:
    /// three lane-fulls and a remainder) `log_prob`'s bits, f32 and int8 models;
    /// run on every target the tests run on (x86-64, and aarch64 under
    /// `cargo xtask aarch64`).
    #[test]
    fn batch_rows_have_the_single_row_bits() {
        let rows = std::fs::read(std::format!("{}/../firmware/assets/thyroid.f32", env!("CARGO_MANIFEST_DIR")))
            .expect("bundled rows");
        let x: Vec<f32> = rows.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        for name in ["thyroid.floe", "thyroid-int8.floe"] {
            let (words, len) = bundled(name);
            let m = Model::load(&bytemuck::cast_slice::<u128, u8>(&words)[..len]).expect("loads");
            let d = m.dim();
            let n = (x.len() / d).min(3 * LANES + 5);
            let mut out = vec![0.0f32; n];
            let mut scratch = vec![0.0f32; m.batch_scratch_len()];
            m.log_prob_batch(&x[..n * d], &[], &mut out, &mut scratch).expect("batch");
            let mut one = vec![0.0f32; m.scratch_len()];
            for (r, got) in out.iter().enumerate() {
                let want = m.log_prob(&x[r * d..(r + 1) * d], &[], &mut one).expect("row");
                assert_eq!(got.to_bits(), want.to_bits(), "{name} row {r}");
            }
            assert!(n > 2 * LANES, "{name}: only {n} rows");
        }
    }
}
