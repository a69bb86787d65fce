//! The format's vocabulary: one type per coded field, used by the runtime and the
//! exporter alike.

use super::{FLAG_INT8, FLAG_W8};

/// Element type of a tensor (tensor record byte 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// IEEE-754 binary32, little-endian.
    F32 = 1,
    /// Unsigned 16-bit integer, little-endian (permutation indices).
    U16 = 2,
    /// Signed 8-bit integer (quantized weights, symmetric: -127 ..= 127).
    I8 = 3,
    /// Signed 32-bit integer, little-endian (quantized biases).
    I32 = 4,
    /// bfloat16: the high 16 bits of an IEEE-754 binary32, little-endian
    /// (per-channel weight scales; widened to f32 exactly).
    BF16 = 5,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::U16 | DType::BF16 => 2,
            DType::I8 => 1,
        }
    }
    /// Short stable name (tools, reports).
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U16 => "u16",
            DType::I8 => "i8",
            DType::I32 => "i32",
            DType::BF16 => "bf16",
        }
    }
    /// Decode the dtype byte.
    pub const fn from_u8(v: u8) -> Option<DType> {
        match v {
            1 => Some(DType::F32),
            2 => Some(DType::U16),
            3 => Some(DType::I8),
            4 => Some(DType::I32),
            5 => Some(DType::BF16),
            _ => None,
        }
    }
}

/// Base distribution kinds (header field `base_kind`). The one spelling of a base
/// distribution's kind: the exporter's settings, its Burn module and the file all
/// use this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum BaseKind {
    /// Standard normal N(0, I). No tensors.
    StdNormal = 0,
    /// Diagonal normal: tensors `loc` (D), `log_scale` (D).
    DiagNormal = 1,
    /// Independent standard Student-t per dimension: tensor `df` (D), every entry > 0.
    StudentT = 2,
    /// Mixture of K diagonal normals: tensors `logits` (K), `loc` (K × D),
    /// `log_scale` (K × D); 1 ≤ K ≤ [`super::MAX_COMPONENTS`].
    Mixture = 3,
    /// Mixture of K full-covariance normals: the mixture's three tensors and
    /// `lower` (K × D(D−1)/2), the strictly lower triangle of each component's
    /// whitening matrix `W_k = diag(e^{−log_scale_k}) + L_k` (row-major, row i's
    /// entries j < i), so that `W_kᵀW_k` is the component's precision; D ≥ 2.
    FullMixture = 4,
}

impl BaseKind {
    /// Every kind, in code order.
    pub const ALL: [BaseKind; 5] =
        [BaseKind::StdNormal, BaseKind::DiagNormal, BaseKind::StudentT, BaseKind::Mixture, BaseKind::FullMixture];

    /// Decode the header field.
    pub const fn from_u16(v: u16) -> Option<BaseKind> {
        match v {
            0 => Some(BaseKind::StdNormal),
            1 => Some(BaseKind::DiagNormal),
            2 => Some(BaseKind::StudentT),
            3 => Some(BaseKind::Mixture),
            4 => Some(BaseKind::FullMixture),
            _ => None,
        }
    }
    /// Number of tensors the base distribution owns.
    pub const fn n_tensors(self) -> usize {
        match self {
            BaseKind::StdNormal => 0,
            BaseKind::DiagNormal => 2,
            BaseKind::StudentT => 1,
            BaseKind::Mixture => 3,
            BaseKind::FullMixture => 4,
        }
    }
    /// Short stable name (settings files, the CLI, tools).
    pub const fn name(self) -> &'static str {
        match self {
            BaseKind::StdNormal => "normal",
            BaseKind::DiagNormal => "diag-normal",
            BaseKind::StudentT => "student-t",
            BaseKind::Mixture => "mixture",
            BaseKind::FullMixture => "full-mixture",
        }
    }
    /// The kind whose [`BaseKind::name`] is `name`.
    pub fn from_name(name: &str) -> Option<BaseKind> {
        BaseKind::ALL.into_iter().find(|k| k.name() == name)
    }
    /// Whether the kind is a mixture (diagonal or full covariance).
    pub const fn is_mixture(self) -> bool {
        matches!(self, BaseKind::Mixture | BaseKind::FullMixture)
    }
}

/// Layer kinds (layer record byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum LayerKind {
    /// RealNVP affine coupling.
    AffineCoupling = 1,
    /// Rational-quadratic spline coupling (NSF).
    SplineCoupling = 2,
    /// MADE autoregressive affine (MAF).
    MadeAffine = 3,
    /// MADE autoregressive rational-quadratic spline.
    MadeSpline = 4,
    /// LU-decomposed invertible linear map (Glow).
    LuLinear = 5,
    /// Fixed permutation.
    Permute = 6,
    /// Reversal of the coordinates.
    Reverse = 7,
    /// Elementwise affine map (a trained ActNorm, folded).
    ActNorm = 8,
    /// A trajectory model's history encoder: an MLP from the observed
    /// displacements to the encoding `h` (layer 0 of a trajectory file only).
    Encoder = 9,
}

impl LayerKind {
    /// Every kind, in code order.
    pub const ALL: [LayerKind; 9] = [
        LayerKind::AffineCoupling,
        LayerKind::SplineCoupling,
        LayerKind::MadeAffine,
        LayerKind::MadeSpline,
        LayerKind::LuLinear,
        LayerKind::Permute,
        LayerKind::Reverse,
        LayerKind::ActNorm,
        LayerKind::Encoder,
    ];

    /// Decode the kind byte.
    pub const fn from_u8(v: u8) -> Option<LayerKind> {
        match v {
            1 => Some(LayerKind::AffineCoupling),
            2 => Some(LayerKind::SplineCoupling),
            3 => Some(LayerKind::MadeAffine),
            4 => Some(LayerKind::MadeSpline),
            5 => Some(LayerKind::LuLinear),
            6 => Some(LayerKind::Permute),
            7 => Some(LayerKind::Reverse),
            8 => Some(LayerKind::ActNorm),
            9 => Some(LayerKind::Encoder),
            _ => None,
        }
    }
    /// Short stable name (tools, reports).
    pub const fn name(self) -> &'static str {
        match self {
            LayerKind::AffineCoupling => "affine_coupling",
            LayerKind::SplineCoupling => "spline_coupling",
            LayerKind::MadeAffine => "made_affine",
            LayerKind::MadeSpline => "made_spline",
            LayerKind::LuLinear => "lu_linear",
            LayerKind::Permute => "permute",
            LayerKind::Reverse => "reverse",
            LayerKind::ActNorm => "actnorm",
            LayerKind::Encoder => "encoder",
        }
    }
    /// Whether the layer has an MLP (a conditioner, or the trajectory encoder).
    pub const fn has_conditioner(self) -> bool {
        matches!(
            self,
            LayerKind::AffineCoupling
                | LayerKind::SplineCoupling
                | LayerKind::MadeAffine
                | LayerKind::MadeSpline
                | LayerKind::Encoder
        )
    }
    /// Whether the layer's elementwise map is the rational-quadratic spline.
    pub const fn is_spline(self) -> bool {
        matches!(self, LayerKind::SplineCoupling | LayerKind::MadeSpline)
    }
}

/// Hidden activation of a conditioner (layer record byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Activation {
    /// No conditioner (layers without one must say 0).
    None = 0,
    /// max(x, 0).
    Relu = 1,
    /// tanh(x), through `libm::tanhf`.
    Tanh = 2,
}

impl Activation {
    /// Decode the activation byte.
    pub const fn from_u8(v: u8) -> Option<Activation> {
        match v {
            0 => Some(Activation::None),
            1 => Some(Activation::Relu),
            2 => Some(Activation::Tanh),
            _ => None,
        }
    }
}

/// How a conditioner's numbers are stored (layer flag bits 1 and 2). The one
/// spelling of precision: the runtime's kernels, the exporter's quantizer, its
/// CLI and its reports all use this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Precision {
    /// f32 weights and activations.
    F32,
    /// int8 weights with a bf16 scale per output channel, f32 activations
    /// ("weight-only" quantization).
    W8,
    /// int8 weights and activations, int32 accumulation and biases, fixed-point
    /// requantization (plain ReLU conditioners only).
    Int8,
}

impl Precision {
    /// Every precision, in order of increasing compression.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::W8, Precision::Int8];

    /// The precision the layer flags state, or `None` when both quantization bits
    /// are set.
    pub const fn from_flags(flags: u8) -> Option<Precision> {
        match (flags & FLAG_W8 != 0, flags & FLAG_INT8 != 0) {
            (false, false) => Some(Precision::F32),
            (true, false) => Some(Precision::W8),
            (false, true) => Some(Precision::Int8),
            (true, true) => None,
        }
    }
    /// The layer flag bits of this precision.
    pub const fn flags(self) -> u8 {
        match self {
            Precision::F32 => 0,
            Precision::W8 => FLAG_W8,
            Precision::Int8 => FLAG_INT8,
        }
    }
    /// Whether the weights are int8.
    pub const fn is_quantized(self) -> bool {
        !matches!(self, Precision::F32)
    }
    /// Short stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::W8 => "w8",
            Precision::Int8 => "int8",
        }
    }
    /// The precision whose [`Precision::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for k in LayerKind::ALL {
            assert_eq!(LayerKind::from_u8(k as u8), Some(k));
        }
        for k in BaseKind::ALL {
            assert_eq!(BaseKind::from_u16(k as u16), Some(k));
            assert_eq!(BaseKind::from_name(k.name()), Some(k));
        }
        for p in Precision::ALL {
            assert_eq!(Precision::from_flags(p.flags()), Some(p));
            assert_eq!(Precision::from_name(p.name()), Some(p));
        }
        assert_eq!(Precision::from_flags(FLAG_W8 | FLAG_INT8), None);
        assert_eq!(LayerKind::from_u8(0), None);
        assert_eq!(BaseKind::from_name("gaussian"), None);
    }
}
