//! Layer dispatch: what a layer record implies ([`Plan`]: shapes, tensors, work
//! space, load-time checks) and a record bound to its tensors ([`Layer`]).

use super::conditioner::{Conditioner, MlpShape};
use super::coupling::Coupling;
use super::encoder::Encoder;
use super::made::Made;
use super::{actnorm, lu_linear, permute, Elementwise, Tracer};
use crate::error::{Error, Result};
use crate::format::{Activation, DType, Header, LayerKind, LayerRecord, TrajectoryLayout, View, MAX_ENCODING};
use crate::kernels::sub;

/// The model-level sizes a layer's plan depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) dim: usize,
    pub(crate) cdim: usize,
    pub(crate) trajectory: Option<TrajectoryLayout>,
}

impl Dims {
    /// The sizes a header states.
    pub(crate) fn of(h: &Header) -> Dims {
        Dims { dim: h.dim as usize, cdim: h.context_dim as usize, trajectory: h.trajectory }
    }
}

/// What a layer needs, derived from its record and the model's dimensions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Coupling {
        shape: MlpShape,
        elem: Elementwise,
        split: usize,
    },
    Made {
        shape: MlpShape,
        elem: Elementwise,
    },
    LuLinear,
    Permute,
    Reverse,
    ActNorm,
    /// A trajectory history encoder: `features` inputs, a `steps × width` step
    /// embedding (width 0: none).
    Encoder {
        shape: MlpShape,
        features: usize,
        steps: usize,
        width: usize,
    },
}

impl Plan {
    /// The plan of record `rec` in a model of these dimensions.
    // Inlined with the row-pair code in the build (the loader's stack then
    // stays under its 800-byte bound on the Cortex-M4F).
    #[cfg_attr(feature = "row-pairs", inline(always))]
    pub(crate) fn of(rec: &LayerRecord, dims: &Dims) -> Plan {
        let (dim, cdim) = (dims.dim, dims.cdim);
        let split = rec.split as usize;
        match rec.kind {
            LayerKind::AffineCoupling | LayerKind::SplineCoupling => {
                let elem = Elementwise::of(rec);
                let n_out = dim.saturating_sub(split) * elem.params_per_dim();
                Plan::Coupling { shape: MlpShape::new(rec, split + cdim, n_out), elem, split }
            }
            LayerKind::MadeAffine | LayerKind::MadeSpline => {
                let elem = Elementwise::of(rec);
                let n_out = dim * elem.params_per_dim();
                Plan::Made { shape: MlpShape::new(rec, dim + cdim, n_out), elem }
            }
            LayerKind::LuLinear => Plan::LuLinear,
            LayerKind::Permute => Plan::Permute,
            LayerKind::Reverse => Plan::Reverse,
            LayerKind::ActNorm => Plan::ActNorm,
            LayerKind::Encoder => {
                let (features, steps, width) =
                    dims.trajectory.map_or((0, 0, 0), |t| (t.features(), t.horizon as usize, t.embedding as usize));
                Plan::Encoder { shape: MlpShape::new(rec, features, split), features, steps, width }
            }
        }
    }

    /// Work space (in `f32` words) beyond the flow-level buffers.
    pub(crate) fn work_len(&self) -> usize {
        match self {
            Plan::Coupling { shape, elem, .. } | Plan::Made { shape, elem } => {
                shape.n_in + shape.n_out + shape.work_len() + elem.work_len()
            }
            Plan::Encoder { shape, .. } => shape.n_in + shape.n_out + shape.work_len(),
            _ => 0,
        }
    }

    /// `(rows, cols, dtype)` of the layer's tensor `j`.
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
            Plan::Encoder { shape, features, steps, width } => {
                let mlp = shape.n_tensors();
                if j < 2 {
                    (*features, 1, DType::F32)
                } else if j < 2 + mlp {
                    shape.tensor_spec(j - 2)
                } else {
                    (*steps, *width, DType::F32)
                }
            }
        }
    }

    /// Number of tensors the layer owns.
    fn n_tensors(&self) -> usize {
        match self {
            Plan::Coupling { shape, .. } | Plan::Made { shape, .. } => shape.n_tensors(),
            Plan::LuLinear => 3,
            Plan::Permute => 1,
            Plan::Reverse => 0,
            Plan::ActNorm => 2,
            Plan::Encoder { shape, width, .. } => 2 + shape.n_tensors() + usize::from(*width > 0),
        }
    }

    /// Whether the record's parameter fields are valid for this plan.
    fn record_ok(&self, rec: &LayerRecord, dim: usize) -> bool {
        let bins_ok = rec.kind.is_spline() || rec.bins == 0;
        match self {
            Plan::Coupling { shape, elem, split } => {
                (1..dim).contains(split) && shape.record_ok(rec) && elem.check() && bins_ok
            }
            // MADE weights stay row-major (their mask check reads them in place).
            Plan::Made { shape, elem } => {
                rec.split == 0 && shape.record_ok(rec) && elem.check() && bins_ok && !rec.row_pairs()
            }
            Plan::Encoder { shape, .. } => {
                (1..=MAX_ENCODING).contains(&shape.n_out)
                    && rec.flags & crate::format::FLAG_ZUKO == 0
                    && rec.bins == 0
                    && rec.param.to_bits() == 0
                    && shape.record_ok(rec)
            }
            _ => {
                rec.split == 0
                    && rec.bins == 0
                    && rec.hidden == 0
                    && rec.blocks == 0
                    && rec.flags == 0
                    && rec.activation == Activation::None
                    && rec.param.to_bits() == 0
            }
        }
    }

    /// Validate layer `i` of `view`, whose tensors must start at `expected_first`:
    /// its parameters, its tensors' shapes and dtypes, then what its values must
    /// satisfy (masks, quantized ranges, a permutation, a zero LU diagonal).
    pub(crate) fn validate(view: &View<'_>, i: u16, expected_first: u32) -> Result<(Plan, LayerRecord)> {
        let rec = view.layer(i)?;
        let dims = Dims::of(view.header());
        let dim = dims.dim;
        // A trajectory file's layer 0 is its encoder, and no other layer is one.
        let encoder_here = i == 0 && dims.trajectory.is_some();
        if rec.first_tensor != expected_first || (rec.kind == LayerKind::Encoder) != encoder_here {
            return Err(Error::BadLayer(i));
        }
        if let Some(t) = dims.trajectory {
            if rec.kind == LayerKind::Encoder && rec.split as usize != t.encoding(dims.cdim) {
                return Err(Error::BadLayer(i));
            }
        }
        let plan = Plan::of(&rec, &dims);
        if !plan.record_ok(&rec, dim) {
            return Err(Error::BadLayer(i));
        }
        if rec.n_tensors as usize != plan.n_tensors() {
            return Err(Error::ShapeMismatch(i));
        }
        for j in 0..plan.n_tensors() {
            let t = view.tensor(rec.first_tensor + j as u32)?;
            let (rows, cols, dtype) = plan.tensor_spec(dim, j);
            if t.rows as usize != rows || t.cols as usize != cols || t.dtype != dtype {
                return Err(Error::ShapeMismatch(i));
            }
        }
        let t0 = rec.first_tensor;
        let valid = match Layer::bind_plan(view, plan, t0)? {
            Layer::Made(m) => m.cond.check_values()? && m.check_masks(dim)?,
            Layer::Coupling(c) => c.cond.check_values()?,
            Layer::Permute(p) => permute::is_permutation(p),
            // The packed matrix's diagonal is unused and must be zero.
            Layer::LuLinear { lu, .. } => {
                (0..dim).all(|k| sub(lu, k * dim + k, 1).map(|v| v == [0.0]).unwrap_or(false))
            }
            Layer::Reverse | Layer::ActNorm { .. } => true,
            Layer::Encoder(e) => e.std.iter().all(|&s| s > 0.0) && e.cond.check_values()?,
        };
        if !valid {
            return Err(Error::InvalidParameter(i));
        }
        Ok((plan, rec))
    }
}

/// A layer record bound to its tensors in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Layer<'v, 'a> {
    Coupling(Coupling<'v, 'a>),
    Made(Made<'v, 'a>),
    LuLinear { lu: &'a [f32], log_diag: &'a [f32], bias: &'a [f32] },
    Permute(&'a [u16]),
    Reverse,
    ActNorm { log_scale: &'a [f32], shift: &'a [f32] },
    Encoder(Encoder<'v, 'a>),
}

impl<'v, 'a> Layer<'v, 'a> {
    /// Layer `i` of `view`.
    pub(crate) fn bind(view: &'v View<'a>, i: u16) -> Result<Layer<'v, 'a>> {
        let rec = view.layer(i)?;
        let plan = Plan::of(&rec, &Dims::of(view.header()));
        Layer::bind_plan(view, plan, rec.first_tensor)
    }

    /// The layer of `plan` whose tensors start at `t0`.
    fn bind_plan(view: &'v View<'a>, plan: Plan, t0: u32) -> Result<Layer<'v, 'a>> {
        Ok(match plan {
            Plan::Coupling { shape, elem, split } => {
                Layer::Coupling(Coupling { cond: Conditioner::new(view, t0, shape), elem, split })
            }
            Plan::Made { shape, elem } => Layer::Made(Made { cond: Conditioner::new(view, t0, shape), elem }),
            Plan::LuLinear => {
                Layer::LuLinear { lu: view.f32s(t0)?, log_diag: view.f32s(t0 + 1)?, bias: view.f32s(t0 + 2)? }
            }
            Plan::Permute => Layer::Permute(view.u16s(t0)?),
            Plan::Reverse => Layer::Reverse,
            Plan::ActNorm => Layer::ActNorm { log_scale: view.f32s(t0)?, shift: view.f32s(t0 + 1)? },
            Plan::Encoder { shape, width, .. } => {
                let embedding = if width > 0 { view.f32s(t0 + 2 + shape.n_tensors() as u32)? } else { &[] };
                Layer::Encoder(Encoder {
                    cond: Conditioner::new(view, t0 + 2, shape),
                    mean: view.f32s(t0)?,
                    std: view.f32s(t0 + 1)?,
                    embedding,
                    width,
                })
            }
        })
    }

    /// Forward (`inverse == false`) or inverse pass in place on the standardized
    /// state `x`, with `tmp` (D values) and `work` (the layer's work space) as
    /// scratch and `ctx` the standardized context. Returns the forward
    /// log-determinant.
    pub(crate) fn apply(
        &self,
        x: &mut [f32],
        tmp: &mut [f32],
        ctx: &[f32],
        work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        match self {
            Layer::Coupling(c) => c.apply(x, ctx, work, inverse, trace),
            Layer::Made(m) => m.apply(x, ctx, tmp, work, inverse, trace),
            Layer::LuLinear { lu, log_diag, bias } => {
                if inverse {
                    lu_linear::inverse(lu, log_diag, bias, x)
                } else {
                    lu_linear::forward(lu, log_diag, bias, x)
                }
            }
            Layer::Permute(p) => {
                if inverse {
                    permute::inverse(p, x, tmp)?;
                } else {
                    permute::forward(p, x, tmp)?;
                }
                Ok(0.0)
            }
            Layer::Reverse => {
                x.reverse();
                Ok(0.0)
            }
            Layer::ActNorm { log_scale, shift } => {
                if inverse {
                    actnorm::inverse(log_scale, shift, x)
                } else {
                    actnorm::forward(log_scale, shift, x)
                }
            }
            // Not a step of the flow: the model never runs it as one.
            Layer::Encoder(_) => Err(Error::Internal),
        }
    }
}
