//! The one error type of the runtime.

/// Everything that can go wrong, from loading a model file to evaluating it.
///
/// The enum is flat (no nested error types) and `#[non_exhaustive]`: new variants
/// may be added in minor releases. Load-time variants say what is wrong with the
/// *file*; call-time variants say what is wrong with the *arguments*. Once
/// [`crate::Model::load`] has succeeded, evaluation can only fail on the caller's
/// account (wrong lengths, non-finite inputs, a scratch buffer that is too small).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    // ---- the file ----
    /// The buffer is shorter than the header, or shorter than the file length the
    /// header states.
    Truncated,
    /// The buffer does not start with the magic bytes `FLOE`.
    BadMagic,
    /// The format version is not one this runtime reads.
    UnsupportedVersion(u16),
    /// The buffer does not start at a 4-byte aligned address (tensors are read in
    /// place as `f32`/`u16` slices).
    Misaligned,
    /// The CRC-32 stored in the last four bytes does not match the contents.
    BadCrc,
    /// A header field is out of range, or a reserved byte is not zero.
    BadHeader,
    /// A tensor record points outside the data section, overlaps another one, is
    /// misaligned or has an unknown dtype.
    BadTensor(u32),
    /// A weight or statistic is NaN or infinite.
    NonFiniteWeight(u32),
    /// A layer record is malformed: unknown kind, bad parameters or reserved bytes.
    BadLayer(u16),
    /// A layer's tensors do not have the shapes its parameters imply.
    ShapeMismatch(u16),
    /// A parameter is outside its valid range (e.g. a standard deviation <= 0, a
    /// permutation that repeats an index, a MADE weight that breaks the
    /// autoregressive mask, a spline tail bound <= 0).
    InvalidParameter(u16),
    /// The input standardization has a standard deviation that is not > 0.
    InvalidStandardization,
    /// A base-distribution parameter is out of range (e.g. Student-t degrees of
    /// freedom <= 0).
    InvalidBase,
    /// The scratch length stated in the header is not the one this model needs.
    ScratchMismatch,

    // ---- the call ----
    /// An input or output slice has the wrong length.
    DimMismatch {
        /// Length the model needs.
        expected: u32,
        /// Length the caller gave.
        got: u32,
    },
    /// The context slice has the wrong length.
    ContextMismatch {
        /// Length the model needs.
        expected: u32,
        /// Length the caller gave.
        got: u32,
    },
    /// The scratch buffer is shorter than [`crate::Model::scratch_len`].
    ScratchTooSmall {
        /// Length the model needs, in `f32` words.
        needed: u32,
        /// Length the caller gave.
        got: u32,
    },
    /// An input value is NaN or infinite.
    NonFiniteInput,
    /// A stream was made for a model without a stream layout.
    NotAStreamModel,
    /// The stream buffer's capacity is smaller than the model's window needs.
    BufferTooSmall {
        /// `f32` values the window needs (`window · channels`).
        needed: u32,
        /// The buffer's capacity.
        got: u32,
    },
    /// A stream sample's sequence number is not the one after the previous
    /// sample's (repeated, older, or with a gap). The sample was not taken.
    OutOfOrder {
        /// The sequence number expected.
        expected: u32,
        /// The one given.
        got: u32,
    },
    /// A trajectory call on a model that is not a trajectory model.
    NotATrajectoryModel,
    /// A tracker's horizon `T` is not the model's.
    HorizonMismatch {
        /// The model's horizon.
        expected: u32,
        /// The tracker's.
        got: u32,
    },
    /// A tracker query or update before any prediction, or an update with no
    /// predicted step left.
    NothingToUpdate,
    /// A step outside the prediction's remaining horizon.
    StepOutOfRange {
        /// The step asked for (1-based).
        step: u32,
        /// Steps left.
        steps: u32,
    },
    /// An argument is outside its range (e.g. a sensor noise ≤ 0).
    InvalidArgument,
    /// An output buffer (the encoder's) is shorter than what must be written.
    OutputTooSmall {
        /// Bytes needed.
        needed: u32,
        /// The buffer's length.
        got: u32,
    },
    /// An internal invariant failed. Unreachable after a successful load; reported
    /// instead of panicking.
    Internal,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::Truncated => write!(f, "model file is truncated"),
            Error::BadMagic => write!(f, "not a floe model file (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Error::Misaligned => write!(f, "model buffer is not 4-byte aligned"),
            Error::BadCrc => write!(f, "CRC-32 mismatch: the file is corrupt"),
            Error::BadHeader => write!(f, "malformed header"),
            Error::BadTensor(i) => write!(f, "malformed tensor record {i}"),
            Error::NonFiniteWeight(i) => write!(f, "tensor {i} holds a NaN or infinite value"),
            Error::BadLayer(i) => write!(f, "malformed layer record {i}"),
            Error::ShapeMismatch(i) => write!(f, "layer {i}: tensor shapes do not match its parameters"),
            Error::InvalidParameter(i) => write!(f, "layer {i}: parameter out of range"),
            Error::InvalidStandardization => write!(f, "standard deviation <= 0 in the input standardization"),
            Error::InvalidBase => write!(f, "base distribution parameter out of range"),
            Error::ScratchMismatch => write!(f, "header scratch length does not match the model"),
            Error::DimMismatch { expected, got } => {
                write!(f, "expected {expected} values, got {got}")
            }
            Error::ContextMismatch { expected, got } => {
                write!(f, "expected a context of {expected} values, got {got}")
            }
            Error::ScratchTooSmall { needed, got } => {
                write!(f, "scratch buffer too small: need {needed} f32, got {got}")
            }
            Error::NonFiniteInput => write!(f, "input holds a NaN or infinite value"),
            Error::NotAStreamModel => write!(f, "the model has no stream layout"),
            Error::BufferTooSmall { needed, got } => {
                write!(f, "stream buffer too small: the window needs {needed} values, capacity {got}")
            }
            Error::OutOfOrder { expected, got } => {
                write!(f, "stream sample out of order: expected sequence number {expected}, got {got}")
            }
            Error::NotATrajectoryModel => write!(f, "the model is not a trajectory model"),
            Error::HorizonMismatch { expected, got } => {
                write!(f, "the model predicts {expected} steps, the tracker holds {got}")
            }
            Error::NothingToUpdate => write!(f, "no prediction (or no predicted step left) to query or update"),
            Error::StepOutOfRange { step, steps } => write!(f, "step {step} is outside the {steps} steps left"),
            Error::InvalidArgument => write!(f, "an argument is out of its range"),
            Error::OutputTooSmall { needed, got } => {
                write!(f, "output buffer too small: need {needed} bytes, got {got}")
            }
            Error::Internal => write!(f, "internal invariant violated"),
        }
    }
}

impl core::error::Error for Error {}

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;
