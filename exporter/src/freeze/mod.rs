//! Freezing: a trained flow becomes a file description ([`FrozenModel`]: the
//! layout planned here), the runtime's encoder writes it, the runtime loads it
//! back ([`LoadedModel`]), and the file must reproduce the Burn model's
//! log-densities ([`freeze()`], [`parity`]) before anything reports success.

mod fold;
mod loaded;
pub mod parity;
pub mod runtime;

use floe_runtime::exporter_hooks;
use floe_runtime::format::encode::{Contents, TensorData, TensorRef};
use floe_runtime::format::{
    Activation, AlarmRule, AnomalyThreshold, BaseKind, LayerKind, LayerRecord, Precision, StreamLayout,
    TrajectoryLayout,
};

pub use fold::fold;
pub(crate) use fold::mlp_tensors;
pub use loaded::{AlignedBytes, LoadedModel, RELAYOUT_CHECK_ROWS};
pub use parity::{check_parity, freeze, Parity, PARITY_RELATIVE, PARITY_TOLERANCE};

use crate::error::{ConfigError, FloeError, Result};

/// A tensor ready to be written: row-major `rows x cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenTensor {
    /// Rows (1-D tensors: the length).
    pub rows: usize,
    /// Columns (1-D tensors: 1).
    pub cols: usize,
    /// The values.
    pub data: Payload,
}

/// Tensor values by dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `f32` values.
    F32(Vec<f32>),
    /// `u16` values.
    U16(Vec<u16>),
    /// `i8` values (quantized weights).
    I8(Vec<i8>),
    /// `i32` values (quantized biases).
    I32(Vec<i32>),
    /// bfloat16 bit patterns (per-channel scales).
    BF16(Vec<u16>),
}

impl Payload {
    /// The values, borrowed as the encoder takes them.
    pub fn as_data(&self) -> TensorData<'_> {
        match self {
            Payload::F32(v) => TensorData::F32(v),
            Payload::U16(v) => TensorData::U16(v),
            Payload::I8(v) => TensorData::I8(v),
            Payload::I32(v) => TensorData::I32(v),
            Payload::BF16(v) => TensorData::BF16(v),
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.as_data().len()
    }
    /// No elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FrozenTensor {
    /// A 1-D `f32` tensor.
    pub fn vector(v: Vec<f32>) -> Self {
        FrozenTensor { rows: v.len(), cols: 1, data: Payload::F32(v) }
    }
    /// A row-major `f32` matrix (`v` holds `rows × cols` values).
    pub fn matrix(rows: usize, cols: usize, v: Vec<f32>) -> Self {
        debug_assert_eq!(rows * cols, v.len(), "matrix shape");
        FrozenTensor { rows, cols, data: Payload::F32(v) }
    }
    /// A 1-D `u16` tensor.
    pub fn indices(v: Vec<u16>) -> Self {
        FrozenTensor { rows: v.len(), cols: 1, data: Payload::U16(v) }
    }
    /// A 1-D tensor of any payload.
    pub fn column(data: Payload) -> Self {
        let rows = data.len();
        FrozenTensor { rows, cols: 1, data }
    }
    /// The `f32` values (empty for other dtypes).
    pub fn f32s(&self) -> &[f32] {
        match &self.data {
            Payload::F32(v) => v,
            _ => &[],
        }
    }
    /// Bytes of data in the file (without alignment padding).
    pub fn n_bytes(&self) -> usize {
        self.data.as_data().n_bytes()
    }
    /// The tensor, borrowed as the encoder takes it (`None` when a dimension does
    /// not fit the format's `u32`).
    fn as_ref(&self) -> Option<TensorRef<'_>> {
        Some(TensorRef {
            rows: u32::try_from(self.rows).ok()?,
            cols: u32::try_from(self.cols).ok()?,
            data: self.data.as_data(),
        })
    }
}

/// One layer ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenLayer {
    /// The transform.
    pub kind: LayerKind,
    /// Conditioner activation (`None` for layers without one).
    pub activation: Activation,
    /// Residual conditioner.
    pub residual: bool,
    /// How the conditioner's numbers are stored.
    pub precision: Precision,
    /// Couplings: pass-through coordinates.
    pub split: u16,
    /// Splines: bins.
    pub bins: u16,
    /// Conditioner width.
    pub hidden: u16,
    /// Conditioner depth.
    pub blocks: u16,
    /// Spline tail bound or affine clamp (0 for other layers).
    pub param: f32,
    /// The elementwise map reads its parameters the way zuko does (layer flag
    /// `FLAG_ZUKO`; imported flows only).
    pub zuko: bool,
    /// Tensors in the order docs/FORMAT.md gives for the kind.
    pub tensors: Vec<FrozenTensor>,
}

impl FrozenLayer {
    /// A layer without conditioner.
    pub fn plain(kind: LayerKind, tensors: Vec<FrozenTensor>) -> Self {
        FrozenLayer {
            kind,
            activation: Activation::None,
            residual: false,
            precision: Precision::F32,
            split: 0,
            bins: 0,
            hidden: 0,
            blocks: 0,
            param: 0.0,
            zuko: false,
            tensors,
        }
    }

    /// Whether the layer has a conditioner.
    pub fn has_conditioner(&self) -> bool {
        self.kind.has_conditioner()
    }

    /// The record the runtime decodes, its tensors starting at `first_tensor`.
    pub fn record(&self, first_tensor: u32) -> LayerRecord {
        let residual = if self.residual { floe_runtime::format::FLAG_RESIDUAL } else { 0 };
        LayerRecord {
            kind: self.kind,
            activation: self.activation,
            flags: residual | self.precision.flags() | if self.zuko { floe_runtime::format::FLAG_ZUKO } else { 0 },
            split: self.split,
            bins: self.bins,
            hidden: self.hidden,
            blocks: self.blocks,
            param: self.param,
            first_tensor,
            n_tensors: self.tensors.len() as u32,
        }
    }
}

/// A whole model ready to be written: the layout the exporter plans.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenModel {
    /// D.
    pub dim: usize,
    /// C.
    pub context_dim: usize,
    /// Standardization mean (D).
    pub x_mean: Vec<f32>,
    /// Standardization std (D).
    pub x_std: Vec<f32>,
    /// Context standardization mean (C).
    pub c_mean: Vec<f32>,
    /// Context standardization std (C).
    pub c_std: Vec<f32>,
    /// Base distribution.
    pub base: BaseKind,
    /// The base's tensors, in the order docs/FORMAT.md gives for its kind.
    pub base_tensors: Vec<FrozenTensor>,
    /// Layers, data side first.
    pub layers: Vec<FrozenLayer>,
    /// Calibrated anomaly threshold.
    pub anomaly: Option<AnomalyThreshold>,
    /// Stream window layout.
    pub stream: Option<StreamLayout>,
    /// The stream's alarm rule (needs `stream` and `anomaly`).
    pub alarm: Option<AlarmRule>,
    /// Trajectory layout (layer 0 is then the history encoder).
    pub trajectory: Option<TrajectoryLayout>,
}

impl FrozenModel {
    /// The layer records, each with its tensor range.
    pub fn records(&self) -> Vec<LayerRecord> {
        let mut first = (floe_runtime::format::N_GLOBAL_TENSORS + self.base_tensors.len()) as u32;
        self.layers
            .iter()
            .map(|l| {
                let r = l.record(first);
                first += l.tensors.len() as u32;
                r
            })
            .collect()
    }

    /// Scratch words the runtime will need (the runtime's own plan).
    pub fn scratch_len(&self) -> usize {
        exporter_hooks::scratch_len(self.dim, self.context_dim, self.trajectory, &self.records())
    }

    /// Serialize with the runtime's encoder; int8 conditioners whose hidden
    /// units all have a requantization word store them
    /// (`floe_runtime::format::requant_words`).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if self.base_tensors.len() != self.base.n_tensors() {
            return Err(FloeError::Internal("the base's tensors do not match its kind"));
        }
        let too_big = || {
            let what = format!("{} dims, {} context dims, {} layers", self.dim, self.context_dim, self.layers.len());
            FloeError::from(ConfigError::invalid("model", "within the format's limits (u16 dims, u32 sizes)", what))
        };
        let globals = [
            FrozenTensor::vector(self.x_mean.clone()),
            FrozenTensor::vector(self.x_std.clone()),
            FrozenTensor::vector(self.c_mean.clone()),
            FrozenTensor::vector(self.c_std.clone()),
        ];
        let tensors: Vec<TensorRef<'_>> = globals
            .iter()
            .chain(&self.base_tensors)
            .chain(self.layers.iter().flat_map(|l| &l.tensors))
            .map(|t| t.as_ref().ok_or_else(too_big))
            .collect::<Result<_>>()?;
        let records = self.records();
        let contents = Contents {
            dim: u16::try_from(self.dim).map_err(|_| too_big())?,
            context_dim: u16::try_from(self.context_dim).map_err(|_| too_big())?,
            base: self.base,
            scratch_len: u32::try_from(self.scratch_len()).map_err(|_| too_big())?,
            anomaly: self.anomaly,
            stream: self.stream,
            alarm: self.alarm,
            trajectory: self.trajectory,
            layers: &records,
            tensors: &tensors,
        };
        let mut out = vec![0u8; contents.encoded_len()?];
        let n = contents.encode(&mut out)?;
        out.truncate(n);
        if records.iter().any(|r| r.precision() == Some(Precision::Int8)) {
            // The int8 hidden units' requantization words stored (docs/FORMAT.md):
            // no evaluation then derives them. The same results, bit for bit.
            out = store_requant_words(&out)?.0;
        }
        Ok(out)
    }

    /// The file, loaded back by the runtime.
    pub fn load(&self) -> Result<LoadedModel> {
        LoadedModel::from_bytes(&self.to_bytes()?)
    }
}

/// `file` with its int8 conditioners' requantization words stored where they
/// are not yet (`floe_runtime::format::requant_words::store`), and how many
/// layers were rewritten.
pub fn store_requant_words(file: &[u8]) -> Result<(Vec<u8>, usize)> {
    use floe_runtime::format::requant_words::{store, stored_len};
    let mut out = vec![0u8; stored_len(file)?];
    let (n, done) = store(file, &mut out)?;
    out.truncate(n);
    Ok((out, done))
}

/// A checkpoint frozen: its data as at training time, the file, and the parity
/// check on the held-out test rows.
#[derive(Debug)]
pub struct FrozenCheckpoint {
    /// The data, split and standardized as at training time.
    pub prep: crate::data::Prepared,
    /// The file's layout.
    pub frozen: FrozenModel,
    /// The file, loaded back by the runtime.
    pub loaded: LoadedModel,
    /// Burn vs runtime on the test rows.
    pub parity: Parity,
}

/// Freeze a checkpoint's flow, parity-checked (tolerance `tol`) on the
/// checkpoint's held-out test rows.
pub fn freeze_checkpoint(
    ck: &crate::train::Checkpoint,
    flow: &crate::flow::Flow,
    tol: f64,
) -> Result<FrozenCheckpoint> {
    let prep = ck.prepare()?;
    let test = prep.raw(&prep.split.test);
    let frozen = fold(flow, &ck.x_std, &ck.c_std)?;
    let loaded = frozen.load()?;
    let parity = check_parity(flow, &ck.x_std, &ck.c_std, &loaded, &test, tol)?;
    Ok(FrozenCheckpoint { prep, frozen, loaded, parity })
}
