//! The loaded model: validation at load, then `log_prob`, `forward`, `inverse` and
//! `sample` with caller-provided scratch memory.

use crate::base::Base;
use crate::conditioner::{self, MlpShape, Tracer};
use crate::error::{Error, Result};
use crate::format::{
    self, check_envelope, read_layer_record, Activation, BaseKind, DType, Header, LayerKind, LayerRecord, TensorRecord,
    N_GLOBAL_TENSORS,
};
use crate::kernels::{sub, take};
use crate::rng::Rng;
use crate::transforms::{actnorm, affine_coupling, lu_linear, made, permute, Elementwise};

/// The validated file: bytes cut to `file_len` plus the decoded header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Core<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) h: Header,
}

impl<'a> Core<'a> {
    pub(crate) fn f32_tensor(&self, i: u32) -> Result<&'a [f32]> {
        format::tensor_f32(self.b, &self.h, i).map(|(_, v)| v)
    }
    pub(crate) fn u16_tensor(&self, i: u32) -> Result<&'a [u16]> {
        format::tensor_u16(self.b, &self.h, i).map(|(_, v)| v)
    }
    pub(crate) fn i8_tensor(&self, i: u32) -> Result<&'a [i8]> {
        format::tensor_i8(self.b, &self.h, i).map(|(_, v)| v)
    }
    pub(crate) fn i32_tensor(&self, i: u32) -> Result<&'a [i32]> {
        format::tensor_i32(self.b, &self.h, i).map(|(_, v)| v)
    }
    pub(crate) fn record(&self, i: u32) -> Result<TensorRecord> {
        format::read_tensor_record(self.b, &self.h, i)
    }
    pub(crate) fn layer(&self, i: u16) -> Result<LayerRecord> {
        read_layer_record(self.b, &self.h, i)
    }
    fn dim(&self) -> usize {
        self.h.dim as usize
    }
    fn cdim(&self) -> usize {
        self.h.context_dim as usize
    }
}

/// What a layer needs, derived from its record and the header.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Coupling { shape: MlpShape, elem: Elementwise, split: usize },
    Made { shape: MlpShape, elem: Elementwise },
    LuLinear,
    Permute,
    Reverse,
    ActNorm,
}

impl Plan {
    pub(crate) fn of(rec: &LayerRecord, dim: usize, cdim: usize) -> Plan {
        let split = rec.split as usize;
        match rec.kind {
            LayerKind::AffineCoupling | LayerKind::SplineCoupling => {
                let elem = if rec.kind == LayerKind::AffineCoupling {
                    Elementwise::affine(rec)
                } else {
                    Elementwise::spline(rec)
                };
                let n_out = dim.saturating_sub(split) * elem.params_per_dim();
                Plan::Coupling { shape: MlpShape::new(rec, split + cdim, n_out), elem, split }
            }
            LayerKind::MadeAffine | LayerKind::MadeSpline => {
                let elem =
                    if rec.kind == LayerKind::MadeAffine { Elementwise::affine(rec) } else { Elementwise::spline(rec) };
                let n_out = dim * elem.params_per_dim();
                Plan::Made { shape: MlpShape::new(rec, dim + cdim, n_out), elem }
            }
            LayerKind::LuLinear => Plan::LuLinear,
            LayerKind::Permute => Plan::Permute,
            LayerKind::Reverse => Plan::Reverse,
            LayerKind::ActNorm => Plan::ActNorm,
        }
    }

    /// Work space (in `f32` words) beyond the flow-level buffers.
    pub(crate) fn work_len(&self) -> usize {
        match self {
            Plan::Coupling { shape, elem, .. } | Plan::Made { shape, elem } => {
                shape.n_in + shape.n_out + shape.work_len() + elem.work_len()
            }
            _ => 0,
        }
    }

    /// `(rows, cols, dtype)` of the layer's tensor `j`, and the tensor count.
    fn tensor_spec(&self, dim: usize, j: usize) -> (usize, usize, DType) {
        match self {
            Plan::Coupling { shape, .. } | Plan::Made { shape, .. } => shape.tensor_spec(j),
            Plan::LuLinear => {
                if j == 0 {
                    (dim, dim, DType::F32)
                } else {
                    (dim, 1, DType::F32)
                }
            }
            Plan::Permute => (dim, 1, DType::U16),
            Plan::Reverse => (0, 0, DType::F32),
            Plan::ActNorm => (dim, 1, DType::F32),
        }
    }

    fn n_tensors(&self) -> usize {
        match self {
            Plan::Coupling { shape, .. } | Plan::Made { shape, .. } => shape.n_tensors(),
            Plan::LuLinear => 3,
            Plan::Permute => 1,
            Plan::Reverse => 0,
            Plan::ActNorm => 2,
        }
    }
}

/// Scratch (in `f32` words) needed by a model: `2 D + C` for the flow-level
/// buffers (state, temporary, standardized context) plus the largest layer's work.
pub fn scratch_words(dim: usize, cdim: usize, max_layer_work: usize) -> usize {
    2 * dim + cdim + max_layer_work
}

/// An observer of conditioner evaluations: `(layer, input, output)`; it may
/// rewrite the output (see [`Model::log_prob_traced`]).
pub type Trace<'t> = dyn FnMut(u16, &[f32], &mut [f32]) + 't;

/// A validated model, borrowing its bytes (flash or RAM) for its whole life.
///
/// Loading checks every field once; afterwards evaluation can only fail on the
/// caller's account (lengths, non-finite inputs, scratch too small).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    core: Core<'a>,
    base: Base<'a>,
    x_mean: &'a [f32],
    x_std: &'a [f32],
    c_mean: &'a [f32],
    c_std: &'a [f32],
    /// `-sum(ln std)`: log-determinant of the standardization.
    std_logdet: f32,
    /// `std_logdet + base normalizer`: the constant part of `log_prob`.
    log_const: f32,
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
        let (b, h) = check_envelope(bytes)?;
        let core = Core { b, h };
        check_tensors(&core)?;
        let dim = core.dim();
        let cdim = core.cdim();
        let x_mean = vec_tensor(&core, 0, dim)?;
        let x_std = vec_tensor(&core, 1, dim)?;
        let c_mean = vec_tensor(&core, 2, cdim)?;
        let c_std = vec_tensor(&core, 3, cdim)?;
        if x_std.iter().chain(c_std).any(|&s| !(s > 0.0)) {
            return Err(Error::InvalidStandardization);
        }
        let g = N_GLOBAL_TENSORS as u32;
        let base = match h.base {
            BaseKind::StdNormal => Base::StdNormal,
            BaseKind::DiagNormal => {
                Base::DiagNormal { loc: vec_tensor(&core, g, dim)?, log_scale: vec_tensor(&core, g + 1, dim)? }
            }
            BaseKind::StudentT => {
                let df = vec_tensor(&core, g, dim)?;
                if df.iter().any(|&v| !(v > 0.0)) {
                    return Err(Error::InvalidBase);
                }
                Base::StudentT { df }
            }
        };
        let mut next = g + h.base.n_tensors() as u32;
        let mut max_work = 0usize;
        for i in 0..h.n_layers {
            let (plan, rec) = check_layer(&core, i, next)?;
            next = rec.first_tensor + rec.n_tensors;
            max_work = max_work.max(plan.work_len());
        }
        if next != h.n_tensors {
            return Err(Error::BadHeader);
        }
        if scratch_words(dim, cdim, max_work) != h.scratch_len as usize {
            return Err(Error::ScratchMismatch);
        }
        let mut std_logdet = 0.0f32;
        for &s in x_std {
            std_logdet -= libm::logf(s);
        }
        let log_const = base.log_norm(dim) + std_logdet;
        Ok(Model { core, base, x_mean, x_std, c_mean, c_std, std_logdet, log_const })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.core.h
    }
    /// Data dimension D.
    pub fn dim(&self) -> usize {
        self.core.dim()
    }
    /// Context dimension C (0 for an unconditional flow).
    pub fn context_dim(&self) -> usize {
        self.core.cdim()
    }
    /// Number of layers.
    pub fn n_layers(&self) -> usize {
        self.core.h.n_layers as usize
    }
    /// Scratch length, in `f32` words, that every evaluation call needs.
    pub fn scratch_len(&self) -> usize {
        self.core.h.scratch_len as usize
    }
    /// The base distribution kind.
    pub fn base_kind(&self) -> BaseKind {
        self.base.kind()
    }
    /// Length of the model file in bytes.
    pub fn file_len(&self) -> usize {
        self.core.b.len()
    }
    /// Input standardization `(mean, std)`, each of length D.
    pub fn standardization(&self) -> (&'a [f32], &'a [f32]) {
        (self.x_mean, self.x_std)
    }
    /// Summary of layer `i`.
    pub fn layer_info(&self, i: usize) -> Result<LayerInfo> {
        let idx = u16::try_from(i).map_err(|_| Error::Internal)?;
        let record = self.core.layer(idx)?;
        let plan = Plan::of(&record, self.dim(), self.context_dim());
        let (mut n_params, mut n_bytes) = (0, 0);
        for j in 0..record.n_tensors {
            let t = self.core.record(record.first_tensor + j)?;
            n_params += t.len();
            n_bytes += t.n_bytes();
        }
        Ok(LayerInfo { record, n_params, n_bytes, work: plan.work_len() })
    }
    /// Tensor record `i` (for tools).
    pub fn tensor_record(&self, i: u32) -> Result<TensorRecord> {
        self.core.record(i)
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
    /// log-determinant is included).
    pub fn log_prob(&self, x: &[f32], context: &[f32], scratch: &mut [f32]) -> Result<f32> {
        self.log_prob_with(x, context, scratch, &mut Tracer { f: None, layer: 0 })
    }

    /// [`Model::log_prob`], calling `trace(layer, input, output)` after every
    /// conditioner evaluation with the conditioner's input (pass-through
    /// coordinates and standardized context) and output (the elementwise map's
    /// parameters), which `trace` may rewrite before the layer uses it. The
    /// exporter calibrates int8 activation ranges with it, and simulates a
    /// quantized model on the f32 one by substituting its own quantized
    /// conditioner outputs.
    pub fn log_prob_traced(
        &self,
        x: &[f32],
        context: &[f32],
        scratch: &mut [f32],
        trace: &mut Trace<'_>,
    ) -> Result<f32> {
        self.log_prob_with(x, context, scratch, &mut Tracer { f: Some(trace), layer: 0 })
    }

    fn log_prob_with(&self, x: &[f32], context: &[f32], scratch: &mut [f32], trace: &mut Tracer<'_>) -> Result<f32> {
        self.check_call(x, context, scratch)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        for (((o, &v), &m), &s) in state.iter_mut().zip(x).zip(self.x_mean).zip(self.x_std) {
            *o = (v - m) / s;
        }
        let ld = self.run(state, tmp, c, work, false, trace)?;
        Ok(self.base.log_kernel(state)? + ld + self.log_const)
    }

    /// Map data `x` to the latent `z` (standardization, then every layer in order).
    /// Returns `log |det dz/dx|`, the standardization included.
    pub fn forward(&self, x: &[f32], context: &[f32], z: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        self.check_call(x, context, scratch)?;
        if z.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(z) });
        }
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        for (((o, &v), &m), &s) in state.iter_mut().zip(x).zip(self.x_mean).zip(self.x_std) {
            *o = (v - m) / s;
        }
        let ld = self.run(state, tmp, c, work, false, &mut Tracer { f: None, layer: 0 })?;
        z.copy_from_slice(state);
        Ok(ld + self.std_logdet())
    }

    /// Map a latent `z` back to data `x`. Returns `log |det dz/dx|` at that `x` (the
    /// same quantity [`Model::forward`] returns).
    pub fn inverse(&self, z: &[f32], context: &[f32], x: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        self.check_call(z, context, scratch)?;
        if x.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(x) });
        }
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        state.copy_from_slice(z);
        let ld = self.run(state, tmp, c, work, true, &mut Tracer { f: None, layer: 0 })?;
        for (((o, &v), &m), &s) in x.iter_mut().zip(state.iter()).zip(self.x_mean).zip(self.x_std) {
            *o = v * s + m;
        }
        Ok(ld + self.std_logdet())
    }

    /// Draw one sample `x ~ p(x | context)` into `out`; returns its `log_prob`.
    pub fn sample(&self, rng: &mut Rng, context: &[f32], out: &mut [f32], scratch: &mut [f32]) -> Result<f32> {
        if out.len() != self.dim() {
            return Err(Error::DimMismatch { expected: self.dim() as u32, got: len32(out) });
        }
        self.check_context(context, scratch)?;
        let (state, tmp, c, work) = self.buffers(context, scratch)?;
        self.base.sample(rng, state)?;
        let lk = self.base.log_kernel(state)?;
        let ld = self.run(state, tmp, c, work, true, &mut Tracer { f: None, layer: 0 })?;
        for (((o, &v), &m), &s) in out.iter_mut().zip(state.iter()).zip(self.x_mean).zip(self.x_std) {
            *o = v * s + m;
        }
        Ok(lk + ld + self.log_const)
    }

    fn std_logdet(&self) -> f32 {
        self.std_logdet
    }

    /// Run every layer forward (or all in reverse order, inverted) on the
    /// standardized state. Returns the summed forward log-determinant.
    fn run(
        &self,
        state: &mut [f32],
        tmp: &mut [f32],
        c: &[f32],
        work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let n = self.core.h.n_layers;
        let mut ld = 0.0f32;
        for k in 0..n {
            let i = if inverse { n - 1 - k } else { k };
            trace.layer = i;
            ld += self.layer(i, state, tmp, c, work, inverse, trace)?;
        }
        Ok(ld)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        i: u16,
        x: &mut [f32],
        tmp: &mut [f32],
        c: &[f32],
        work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let core = &self.core;
        let rec = core.layer(i)?;
        let t0 = rec.first_tensor;
        match Plan::of(&rec, self.dim(), self.context_dim()) {
            Plan::Coupling { shape, elem, split } => {
                affine_coupling::apply(core, &shape, &elem, t0, split, x, c, work, inverse, trace)
            }
            Plan::Made { shape, elem } => made::apply(core, &shape, &elem, t0, x, c, tmp, work, inverse, trace),
            Plan::LuLinear => {
                let (lu, ldg, b) = (core.f32_tensor(t0)?, core.f32_tensor(t0 + 1)?, core.f32_tensor(t0 + 2)?);
                if inverse {
                    lu_linear::inverse(lu, ldg, b, x)
                } else {
                    lu_linear::forward(lu, ldg, b, x)
                }
            }
            Plan::Permute => {
                let p = core.u16_tensor(t0)?;
                if inverse {
                    permute::inverse(p, x, tmp)?;
                } else {
                    permute::forward(p, x, tmp)?;
                }
                Ok(0.0)
            }
            Plan::Reverse => {
                x.reverse();
                Ok(0.0)
            }
            Plan::ActNorm => {
                let (s, b) = (core.f32_tensor(t0)?, core.f32_tensor(t0 + 1)?);
                if inverse {
                    actnorm::inverse(s, b, x)
                } else {
                    actnorm::forward(s, b, x)
                }
            }
        }
    }
}

fn len32(s: &[f32]) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

fn vec_tensor<'a>(core: &Core<'a>, i: u32, len: usize) -> Result<&'a [f32]> {
    let t = core.record(i)?;
    if t.rows as usize != len || t.cols != 1 {
        return Err(Error::BadTensor(i));
    }
    core.f32_tensor(i)
}

/// Every tensor: record well-formed, data inside the data section, in order,
/// not overlapping, and every f32 finite.
fn check_tensors(core: &Core<'_>) -> Result<()> {
    let mut end = core.h.data_offset as usize;
    for i in 0..core.h.n_tensors {
        let (t, bytes) = format::tensor_bytes(core.b, &core.h, i)?;
        if (t.offset as usize) < end {
            return Err(Error::BadTensor(i));
        }
        end = t.offset as usize + bytes.len();
        let finite = match t.dtype {
            DType::F32 => core.f32_tensor(i)?.iter().all(|v| v.is_finite()),
            DType::BF16 => core.u16_tensor(i)?.iter().all(|&v| format::bf16_to_f32(v).is_finite()),
            DType::U16 | DType::I8 | DType::I32 => true,
        };
        if !finite {
            return Err(Error::NonFiniteWeight(i));
        }
    }
    Ok(())
}

/// Validate layer `i` whose tensors must start at `expected_first`.
fn check_layer(core: &Core<'_>, i: u16, expected_first: u32) -> Result<(Plan, LayerRecord)> {
    let rec = core.layer(i)?;
    let dim = core.dim();
    let cdim = core.cdim();
    if rec.first_tensor != expected_first {
        return Err(Error::BadLayer(i));
    }
    let plan = Plan::of(&rec, dim, cdim);
    // Parameters.
    let ok = match plan {
        Plan::Coupling { shape, elem, split } => {
            (1..dim).contains(&split) && check_mlp(&rec, &shape) && elem.check() && bins_ok(&rec)
        }
        Plan::Made { shape, elem } => rec.split == 0 && check_mlp(&rec, &shape) && elem.check() && bins_ok(&rec),
        // (check_mlp includes the quantization flags.)
        _ => {
            rec.split == 0
                && rec.bins == 0
                && rec.hidden == 0
                && rec.blocks == 0
                && rec.flags == 0
                && rec.activation == Activation::None
                && rec.param.to_bits() == 0
        }
    };
    if !ok {
        return Err(Error::BadLayer(i));
    }
    // Tensors.
    if rec.n_tensors as usize != plan.n_tensors() {
        return Err(Error::ShapeMismatch(i));
    }
    for j in 0..plan.n_tensors() {
        let t = core.record(rec.first_tensor + j as u32)?;
        let (rows, cols, dtype) = plan.tensor_spec(dim, j);
        if t.rows as usize != rows || t.cols as usize != cols || t.dtype != dtype {
            return Err(Error::ShapeMismatch(i));
        }
    }
    // Semantic checks.
    let t0 = rec.first_tensor;
    let valid = match plan {
        Plan::Made { shape, elem } => {
            conditioner::check_quant(core, &shape, t0)?
                && made::check_masks(core, &shape, t0, dim, elem.params_per_dim())?
        }
        Plan::Coupling { shape, .. } => conditioner::check_quant(core, &shape, t0)?,
        Plan::Permute => permute::is_permutation(core.u16_tensor(t0)?),
        Plan::LuLinear => {
            // The packed matrix's diagonal is unused and must be zero.
            let lu = core.f32_tensor(t0)?;
            (0..dim).all(|k| sub(lu, k * dim + k, 1).map(|v| v == [0.0]).unwrap_or(false))
        }
        _ => true,
    };
    if !valid {
        return Err(Error::InvalidParameter(i));
    }
    Ok((plan, rec))
}

fn check_mlp(rec: &LayerRecord, shape: &MlpShape) -> bool {
    MlpShape::flags_ok(rec)
        && shape.hidden >= 1
        && shape.hidden <= format::MAX_DIM
        && rec.activation != Activation::None
        && (shape.residual || shape.blocks >= 1)
        && shape.blocks <= 64
}

fn bins_ok(rec: &LayerRecord) -> bool {
    match rec.kind {
        LayerKind::SplineCoupling | LayerKind::MadeSpline => true,
        _ => rec.bins == 0,
    }
}

/// Scratch words layer `rec` needs beyond the flow-level buffers, for a model of
/// dimension `dim` and context dimension `cdim`. The exporter uses this to plan
/// the header's `scratch_len`: [`scratch_words`]`(dim, cdim, max over layers)`.
pub fn layer_work_len(rec: &LayerRecord, dim: usize, cdim: usize) -> usize {
    Plan::of(rec, dim, cdim).work_len()
}
