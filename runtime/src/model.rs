//! The loaded model: validation at load (once), then `log_prob`, `forward`,
//! `inverse` and `sample` with caller-provided scratch memory.

use crate::base::Base;
use crate::error::{Error, Result};
use crate::fmt::debug;
use crate::format::{BaseKind, DType, Header, LayerRecord, TrajectoryLayout, View, N_GLOBAL_TENSORS};
use crate::kernels::take;
use crate::rng::Rng;
use crate::transforms::{Dims, Encoder, Layer, Plan, Tracer};

mod batch;

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
        let base = Base::from_view(&view, h.base, dim)?;
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
