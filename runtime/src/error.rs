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

impl Error {
    /// The error's stable number: what the C ABI (`floe-ffi`) returns, one code
    /// per variant (`0` is success there). Codes are never reused; a new variant
    /// takes the next number.
    pub const fn code(&self) -> u16 {
        match self {
            Error::Truncated => 1,
            Error::BadMagic => 2,
            Error::UnsupportedVersion(_) => 3,
            Error::Misaligned => 4,
            Error::BadCrc => 5,
            Error::BadHeader => 6,
            Error::BadTensor(_) => 7,
            Error::NonFiniteWeight(_) => 8,
            Error::BadLayer(_) => 9,
            Error::ShapeMismatch(_) => 10,
            Error::InvalidParameter(_) => 11,
            Error::InvalidStandardization => 12,
            Error::InvalidBase => 13,
            Error::ScratchMismatch => 14,
            Error::DimMismatch { .. } => 15,
            Error::ContextMismatch { .. } => 16,
            Error::ScratchTooSmall { .. } => 17,
            Error::NonFiniteInput => 18,
            Error::NotAStreamModel => 19,
            Error::BufferTooSmall { .. } => 20,
            Error::OutOfOrder { .. } => 21,
            Error::NotATrajectoryModel => 22,
            Error::HorizonMismatch { .. } => 23,
            Error::NothingToUpdate => 24,
            Error::StepOutOfRange { .. } => 25,
            Error::InvalidArgument => 26,
            Error::OutputTooSmall { .. } => 27,
            Error::Internal => 28,
        }
    }

    /// The variant's numbers, in declaration order, zero where it has fewer
    /// than two: `UnsupportedVersion(v)` gives `(v, 0)`, `BadTensor(i)` `(i, 0)`,
    /// `DimMismatch { expected, got }` `(expected, got)`,
    /// `StepOutOfRange { step, steps }` `(step, steps)`.
    pub const fn details(&self) -> (u32, u32) {
        match *self {
            Error::UnsupportedVersion(v) => (v as u32, 0),
            Error::BadTensor(i) | Error::NonFiniteWeight(i) => (i, 0),
            Error::BadLayer(i) | Error::ShapeMismatch(i) | Error::InvalidParameter(i) => (i as u32, 0),
            Error::DimMismatch { expected, got }
            | Error::ContextMismatch { expected, got }
            | Error::OutOfOrder { expected, got }
            | Error::HorizonMismatch { expected, got } => (expected, got),
            Error::ScratchTooSmall { needed, got }
            | Error::BufferTooSmall { needed, got }
            | Error::OutputTooSmall { needed, got } => (needed, got),
            Error::StepOutOfRange { step, steps } => (step, steps),
            Error::Truncated
            | Error::BadMagic
            | Error::Misaligned
            | Error::BadCrc
            | Error::BadHeader
            | Error::InvalidStandardization
            | Error::InvalidBase
            | Error::ScratchMismatch
            | Error::NonFiniteInput
            | Error::NotAStreamModel
            | Error::NotATrajectoryModel
            | Error::NothingToUpdate
            | Error::InvalidArgument
            | Error::Internal => (0, 0),
        }
    }

    /// The error with `code` and `details` (the inverse of [`Error::code`] and
    /// [`Error::details`]), or `None` if no variant has that code or a number
    /// does not fit its field.
    pub fn from_code(code: u16, details: (u32, u32)) -> Option<Error> {
        let (a, b) = details;
        let short = u16::try_from(a).ok();
        Some(match code {
            1 => Error::Truncated,
            2 => Error::BadMagic,
            3 => Error::UnsupportedVersion(short?),
            4 => Error::Misaligned,
            5 => Error::BadCrc,
            6 => Error::BadHeader,
            7 => Error::BadTensor(a),
            8 => Error::NonFiniteWeight(a),
            9 => Error::BadLayer(short?),
            10 => Error::ShapeMismatch(short?),
            11 => Error::InvalidParameter(short?),
            12 => Error::InvalidStandardization,
            13 => Error::InvalidBase,
            14 => Error::ScratchMismatch,
            15 => Error::DimMismatch { expected: a, got: b },
            16 => Error::ContextMismatch { expected: a, got: b },
            17 => Error::ScratchTooSmall { needed: a, got: b },
            18 => Error::NonFiniteInput,
            19 => Error::NotAStreamModel,
            20 => Error::BufferTooSmall { needed: a, got: b },
            21 => Error::OutOfOrder { expected: a, got: b },
            22 => Error::NotATrajectoryModel,
            23 => Error::HorizonMismatch { expected: a, got: b },
            24 => Error::NothingToUpdate,
            25 => Error::StepOutOfRange { step: a, steps: b },
            26 => Error::InvalidArgument,
            27 => Error::OutputTooSmall { needed: a, got: b },
            28 => Error::Internal,
            _ => return None,
        })
    }
}

impl core::error::Error for Error {}

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::Error;

    /// One value of every variant, numbers distinct where a variant has them.
    const ALL: [Error; 28] = [
        Error::Truncated,
        Error::BadMagic,
        Error::UnsupportedVersion(7),
        Error::Misaligned,
        Error::BadCrc,
        Error::BadHeader,
        Error::BadTensor(70_000),
        Error::NonFiniteWeight(3),
        Error::BadLayer(4),
        Error::ShapeMismatch(5),
        Error::InvalidParameter(6),
        Error::InvalidStandardization,
        Error::InvalidBase,
        Error::ScratchMismatch,
        Error::DimMismatch { expected: 6, got: 5 },
        Error::ContextMismatch { expected: 2, got: 0 },
        Error::ScratchTooSmall { needed: 900, got: 1 },
        Error::NonFiniteInput,
        Error::NotAStreamModel,
        Error::BufferTooSmall { needed: 300, got: 256 },
        Error::OutOfOrder { expected: 8, got: 9 },
        Error::NotATrajectoryModel,
        Error::HorizonMismatch { expected: 12, got: 8 },
        Error::NothingToUpdate,
        Error::StepOutOfRange { step: 0, steps: 12 },
        Error::InvalidArgument,
        Error::OutputTooSmall { needed: 10, got: 9 },
        Error::Internal,
    ];

    #[test]
    fn codes_are_one_to_one_and_round_trip() {
        for (k, e) in ALL.iter().enumerate() {
            // Codes are 1..=28 in declaration order: each variant has its own.
            assert_eq!(usize::from(e.code()), k + 1, "{e:?}");
            assert_eq!(Error::from_code(e.code(), e.details()), Some(*e));
        }
        assert_eq!(Error::from_code(0, (0, 0)), None);
        assert_eq!(Error::from_code(29, (0, 0)), None);
        // A number too wide for its field is refused, not truncated.
        assert_eq!(Error::from_code(9, (70_000, 0)), None);
    }
}
