//! Writing model files. The layout constants come from `floe_runtime::format`
//! (the one definition of the format); this module only serializes.

use floe_runtime::format::{
    self, hdr, Activation, BaseKind, DType, LayerKind, LayerRecord, FLAG_RESIDUAL, HEADER_LEN, LAYER_RECORD_LEN,
    TENSOR_ALIGN, TENSOR_RECORD_LEN,
};

use crate::error::FloeError;

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

impl FrozenTensor {
    /// A 1-D `f32` tensor.
    pub fn vector(v: Vec<f32>) -> Self {
        FrozenTensor { rows: v.len(), cols: 1, data: Payload::F32(v) }
    }
    /// A row-major `f32` matrix.
    pub fn matrix(rows: usize, cols: usize, v: Vec<f32>) -> Self {
        assert_eq!(rows * cols, v.len(), "matrix shape");
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
    fn dtype(&self) -> DType {
        match self.data {
            Payload::F32(_) => DType::F32,
            Payload::U16(_) => DType::U16,
            Payload::I8(_) => DType::I8,
            Payload::I32(_) => DType::I32,
            Payload::BF16(_) => DType::BF16,
        }
    }
    /// The `f32` values (empty for other dtypes).
    pub fn f32s(&self) -> &[f32] {
        match &self.data {
            Payload::F32(v) => v,
            _ => &[],
        }
    }
    /// Bytes of data (without alignment padding).
    pub fn bytes(&self) -> Vec<u8> {
        match &self.data {
            Payload::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Payload::U16(v) | Payload::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Payload::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Payload::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

impl Payload {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Payload::F32(v) => v.len(),
            Payload::U16(v) | Payload::BF16(v) => v.len(),
            Payload::I8(v) => v.len(),
            Payload::I32(v) => v.len(),
        }
    }
    /// No elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// Quantization flag of the conditioner: 0, `FLAG_W8` or `FLAG_INT8`.
    pub quant: u8,
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
            quant: 0,
            split: 0,
            bins: 0,
            hidden: 0,
            blocks: 0,
            param: 0.0,
            tensors,
        }
    }

    /// The record as the runtime decodes it (offsets filled by the writer).
    pub fn record(&self, first_tensor: u32) -> LayerRecord {
        LayerRecord {
            kind: self.kind,
            activation: self.activation,
            flags: if self.residual { FLAG_RESIDUAL } else { 0 } | self.quant,
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

/// Base distribution ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub enum FrozenBase {
    /// N(0, I).
    StdNormal,
    /// N(loc, diag(exp(log_scale))^2).
    DiagNormal {
        /// Means.
        loc: Vec<f32>,
        /// Log standard deviations.
        log_scale: Vec<f32>,
    },
    /// Independent standard Student-t.
    StudentT {
        /// Degrees of freedom, > 0.
        df: Vec<f32>,
    },
}

/// A whole model ready to be written.
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
    pub base: FrozenBase,
    /// Layers, data side first.
    pub layers: Vec<FrozenLayer>,
    /// Calibrated anomaly threshold (header flag bit 0).
    pub anomaly: Option<floe_runtime::AnomalyThreshold>,
    /// Stream window layout (header flag bit 1).
    pub stream: Option<floe_runtime::StreamLayout>,
}

fn align(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

impl FrozenModel {
    /// Scratch words the runtime will need.
    pub fn scratch_len(&self) -> usize {
        let mut first = 0u32;
        let mut max_work = 0;
        for l in &self.layers {
            let rec = l.record(first);
            first += l.tensors.len() as u32;
            max_work = max_work.max(floe_runtime::layer_work_len(&rec, self.dim, self.context_dim));
        }
        floe_runtime::scratch_words(self.dim, self.context_dim, max_work)
    }

    fn base_kind(&self) -> BaseKind {
        match self.base {
            FrozenBase::StdNormal => BaseKind::StdNormal,
            FrozenBase::DiagNormal { .. } => BaseKind::DiagNormal,
            FrozenBase::StudentT { .. } => BaseKind::StudentT,
        }
    }

    /// Serialize to the version-1 byte layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FloeError> {
        let too_big = |what: &str| FloeError::Model(format!("{what} does not fit the format"));
        let dim = u16::try_from(self.dim).map_err(|_| too_big("dimension"))?;
        let cdim = u16::try_from(self.context_dim).map_err(|_| too_big("context dimension"))?;
        let n_layers = u16::try_from(self.layers.len()).map_err(|_| too_big("layer count"))?;

        let mut tensors: Vec<&FrozenTensor> = Vec::new();
        let globals = [
            FrozenTensor::vector(self.x_mean.clone()),
            FrozenTensor::vector(self.x_std.clone()),
            FrozenTensor::vector(self.c_mean.clone()),
            FrozenTensor::vector(self.c_std.clone()),
        ];
        let base_tensors: Vec<FrozenTensor> = match &self.base {
            FrozenBase::StdNormal => vec![],
            FrozenBase::DiagNormal { loc, log_scale } => {
                vec![FrozenTensor::vector(loc.clone()), FrozenTensor::vector(log_scale.clone())]
            }
            FrozenBase::StudentT { df } => vec![FrozenTensor::vector(df.clone())],
        };
        tensors.extend(globals.iter());
        tensors.extend(base_tensors.iter());
        let mut records = Vec::new();
        for l in &self.layers {
            records.push(l.record(tensors.len() as u32));
            tensors.extend(l.tensors.iter());
        }

        let layer_table = HEADER_LEN;
        let tensor_table = layer_table + self.layers.len() * LAYER_RECORD_LEN;
        let data_offset = align(tensor_table + tensors.len() * TENSOR_RECORD_LEN, TENSOR_ALIGN);
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut end = data_offset;
        for t in &tensors {
            let off = align(end, TENSOR_ALIGN);
            offsets.push(off);
            end = off + t.bytes().len();
        }
        let file_len = end + 4;
        let file_len32 = u32::try_from(file_len).map_err(|_| too_big("model"))?;
        let mut b = vec![0u8; file_len];
        let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);

        put(&mut b, hdr::MAGIC, &format::MAGIC);
        put(&mut b, hdr::VERSION, &format::VERSION.to_le_bytes());
        let mut flags = 0u16;
        if let Some(a) = self.anomaly {
            flags |= format::HEADER_FLAG_ANOMALY;
            put(&mut b, hdr::THRESHOLD, &a.threshold.to_le_bytes());
            put(&mut b, hdr::TARGET_FPR, &a.target_fpr.to_le_bytes());
        }
        if let Some(st) = self.stream {
            flags |= format::HEADER_FLAG_STREAM;
            put(&mut b, hdr::WINDOW, &st.window.to_le_bytes());
            put(&mut b, hdr::CHANNELS, &st.channels.to_le_bytes());
            b[hdr::STREAM_FLAGS] = if st.differences { format::STREAM_FLAG_DIFFERENCES } else { 0 };
        }
        put(&mut b, hdr::FLAGS, &flags.to_le_bytes());
        put(&mut b, hdr::FILE_LEN, &file_len32.to_le_bytes());
        put(&mut b, hdr::HEADER_LEN, &(HEADER_LEN as u32).to_le_bytes());
        put(&mut b, hdr::DIM, &dim.to_le_bytes());
        put(&mut b, hdr::CONTEXT_DIM, &cdim.to_le_bytes());
        put(&mut b, hdr::N_LAYERS, &n_layers.to_le_bytes());
        put(&mut b, hdr::BASE_KIND, &(self.base_kind() as u16).to_le_bytes());
        put(&mut b, hdr::N_TENSORS, &(tensors.len() as u32).to_le_bytes());
        put(&mut b, hdr::SCRATCH_LEN, &(self.scratch_len() as u32).to_le_bytes());
        put(&mut b, hdr::LAYER_TABLE, &(layer_table as u32).to_le_bytes());
        put(&mut b, hdr::TENSOR_TABLE, &(tensor_table as u32).to_le_bytes());
        put(&mut b, hdr::DATA_OFFSET, &(data_offset as u32).to_le_bytes());

        for (i, r) in records.iter().enumerate() {
            let at = layer_table + i * LAYER_RECORD_LEN;
            b[at] = r.kind as u8;
            b[at + 1] = r.activation as u8;
            b[at + 2] = r.flags;
            put(&mut b, at + 4, &r.split.to_le_bytes());
            put(&mut b, at + 6, &r.bins.to_le_bytes());
            put(&mut b, at + 8, &r.hidden.to_le_bytes());
            put(&mut b, at + 10, &r.blocks.to_le_bytes());
            put(&mut b, at + 12, &r.param.to_le_bytes());
            put(&mut b, at + 16, &r.first_tensor.to_le_bytes());
            put(&mut b, at + 20, &r.n_tensors.to_le_bytes());
        }
        for (i, (t, &off)) in tensors.iter().zip(&offsets).enumerate() {
            let at = tensor_table + i * TENSOR_RECORD_LEN;
            put(&mut b, at, &(off as u32).to_le_bytes());
            put(&mut b, at + 4, &(t.rows as u32).to_le_bytes());
            put(&mut b, at + 8, &(t.cols as u32).to_le_bytes());
            b[at + 12] = t.dtype() as u8;
            put(&mut b, off, &t.bytes());
        }
        let crc = format::crc32(&b[..file_len - 4]);
        put(&mut b, file_len - 4, &crc.to_le_bytes());
        Ok(b)
    }
}

/// A byte buffer whose start is 4-byte aligned, as [`floe_runtime::Model::load`]
/// requires (a `Vec<u8>` gives no such promise).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBytes {
    /// Copy `bytes` into an aligned buffer.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes { words, len: bytes.len() }
    }
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }
}

impl std::ops::DerefMut for AlignedBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u32, u8>(&mut self.words)[..self.len]
    }
}
