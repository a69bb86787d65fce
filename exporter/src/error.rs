//! The exporter's errors: every failure the CLI reports as one clear line, typed,
//! with the underlying error (I/O, the runtime's, Burn's) as its source.

use std::path::PathBuf;

/// Errors of the exporter and the `floe` CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FloeError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A data or settings file could not be parsed.
    #[error("{}: {msg}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or field.
        msg: String,
    },
    /// A settings file that is not valid TOML for floe's settings.
    #[error("{}: {source}", path.display())]
    Settings {
        /// The file.
        path: PathBuf,
        /// The TOML parser's error (names the line and the key).
        #[source]
        source: toml::de::Error,
    },
    /// A checkpoint's metadata (`meta.json`) could not be read or written.
    #[error("{}: {source}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The data do not fit the request.
    #[error("data: {0}")]
    Data(#[from] DataError),
    /// A setting is invalid.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// A model file on disk that the runtime rejects.
    #[error("{}: invalid model file: {source}", path.display())]
    InvalidModelFile {
        /// The file.
        path: PathBuf,
        /// The runtime's typed error.
        #[source]
        source: floe_runtime::Error,
    },
    /// The runtime rejected an in-memory model or a call on one.
    #[error("runtime: {0}")]
    Runtime(#[from] floe_runtime::Error),
    /// A checkpoint's weights could not be written or read.
    #[error("{}: {source}", path.display())]
    Checkpoint {
        /// The weights file.
        path: PathBuf,
        /// Burn's error.
        #[source]
        source: burn::store::RecordError,
    },
    /// The frozen file does not reproduce the trained model.
    #[error("parity check failed: {0}")]
    Parity(#[from] ParityError),
    /// Training failed.
    #[error("training: {0}")]
    Training(#[from] TrainingError),
    /// A compute device could not be opened (no adapter, no driver, not built in).
    #[error("device {name}: {message}")]
    Device {
        /// The device as the user named it (`--device`).
        name: String,
        /// Why it could not be opened.
        message: String,
    },
    /// An output file that would not fit on its filesystem (or whose size
    /// overflows): refused before anything is written.
    #[error("{}: would write {} but the filesystem has {} free", path.display(), human(*bytes), free.map_or("an unknown amount".to_owned(), human))]
    OutputTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (`u64::MAX` when it overflows).
        bytes: u64,
        /// Bytes free on its filesystem, where known.
        free: Option<u64>,
    },
    /// A PyTorch state dict that `floe import` cannot read or map exactly.
    #[error("{}: import: {msg}", path.display())]
    Import {
        /// The state dict.
        path: PathBuf,
        /// What is wrong, naming the tensor or setting.
        msg: String,
    },
    /// A model the ONNX exporter cannot express exactly (`floe export onnx`).
    #[error("ONNX export: {0}")]
    Onnx(String),
    /// An invariant of the exporter's own making failed (a bug, reported instead
    /// of a panic).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// `bytes` in a unit a person reads at a glance.
fn human(bytes: u64) -> String {
    if bytes == u64::MAX {
        return "more bytes than a u64 counts".to_owned();
    }
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

impl FloeError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FloeError::Io { path: path.into(), source }
    }
    /// A file that does not exist.
    pub fn not_found(path: impl Into<PathBuf>) -> Self {
        FloeError::io(path, std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// The data do not fit the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A value is NaN or infinite.
    #[error("{}: row {row} column {col} is not a finite number", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Row (0-based, after label selection).
        row: usize,
        /// Column (0-based).
        col: usize,
    },
    /// The selection holds no row.
    #[error("{}: no rows{}", path.display(), label.map_or(String::new(), |l| format!(" with label {l}")))]
    Empty {
        /// The file.
        path: PathBuf,
        /// The label the rows were selected by, if any.
        label: Option<i64>,
    },
    /// Too few rows to split.
    #[error("{rows} rows are too few to split into train/val/test")]
    TooFewRows {
        /// Rows available.
        rows: usize,
    },
    /// The file's columns do not match the model.
    #[error("{}: {have} columns, the model needs {} ({dim} data + {context} context)", path.display(), dim + context)]
    Columns {
        /// The file.
        path: PathBuf,
        /// Columns in the file.
        have: usize,
        /// The model's data dimension.
        dim: usize,
        /// The model's context dimension.
        context: usize,
    },
    /// More context columns than the file can hold with one data column.
    #[error("{}: {have} columns cannot hold {context} context columns and at least one data column", path.display())]
    ContextColumns {
        /// The file.
        path: PathBuf,
        /// Columns in the file.
        have: usize,
        /// Context columns asked for.
        context: usize,
    },
    /// Anomaly detection without labels.
    #[error("{}: anomaly detection needs labels (a `y` array or --labels)", path.display())]
    NoLabels {
        /// The file.
        path: PathBuf,
    },
    /// Every row carries the normal label.
    #[error("{}: no rows with a label other than {normal_label}", path.display())]
    NoAnomalies {
        /// The file.
        path: PathBuf,
        /// The normal label.
        normal_label: i64,
    },
    /// A series with too few windows to train on.
    #[error("{}: {windows} windows of {window} samples; need at least {need}", path.display())]
    TooFewWindows {
        /// The series.
        path: PathBuf,
        /// Windows it holds.
        windows: usize,
        /// Samples per window.
        window: usize,
        /// Windows needed.
        need: usize,
    },
    /// A series shorter than one window.
    #[error("{}: {samples} samples, fewer than one window of {window}", path.display())]
    SeriesTooShort {
        /// The series.
        path: PathBuf,
        /// Samples it holds.
        samples: usize,
        /// Samples per window.
        window: usize,
    },
}

/// A setting is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of its range.
    #[error("{setting} must be {expected}, got {value}")]
    Invalid {
        /// The setting (a flag or a settings-file key).
        setting: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        value: String,
    },
    /// No data file was given.
    #[error("no data: give --data FILE (or [data] in --config)")]
    NoData,
}

impl ConfigError {
    /// `setting` must be `expected`; it is `value`.
    pub fn invalid(setting: &'static str, expected: &'static str, value: impl std::fmt::Display) -> Self {
        ConfigError::Invalid { setting, expected, value: value.to_string() }
    }
}

/// Training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainingError {
    /// The loss became NaN or infinite.
    #[error("loss became {loss} at epoch {epoch}; try a smaller --lr or --grad-clip")]
    Diverged {
        /// Epoch (0-based).
        epoch: usize,
        /// The loss.
        loss: f64,
    },
    /// No epoch reached a finite validation NLL.
    #[error("validation NLL never became finite")]
    NeverFinite,
    /// The trained weights hold NaN or infinite values.
    #[error("the trained model holds NaN or infinite weights")]
    NonFiniteWeights,
    /// No candidate of a model selection reached a finite held-out NLL.
    #[error("no candidate of --select reached a finite held-out NLL ({tried} trained){}", first_failure.as_ref().map(|e| format!("; the first failure: {e}")).unwrap_or_default())]
    NoFiniteCandidate {
        /// Candidates trained.
        tried: usize,
        /// The first failed candidate's error, if any failed.
        first_failure: Option<String>,
    },
}

/// The frozen file does not reproduce the model it was frozen from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParityError {
    /// A NaN on one side: the row cannot be compared.
    #[error("row {row}: Burn log p = {burn}, runtime log p = {runtime}")]
    NotComparable {
        /// Row.
        row: usize,
        /// Burn's log p.
        burn: f64,
        /// The runtime's log p.
        runtime: f64,
    },
    /// A row beyond its tolerance.
    #[error(
        "row {row}: Burn log p = {burn:.6}, runtime log p = {runtime:.6} (|diff| {diff:.2e} > {allowed:.2e}, \
         of which {allowance:.2e} for the row's f32 sensitivity)"
    )]
    Exceeded {
        /// Row.
        row: usize,
        /// Burn's log p.
        burn: f64,
        /// The runtime's log p.
        runtime: f64,
        /// |burn − runtime|.
        diff: f64,
        /// What the row was allowed.
        allowed: f64,
        /// The part of `allowed` from the row's f32 sensitivity.
        allowance: f64,
    },
    /// A quantized conditioner's output differs from the reference arithmetic.
    #[error(
        "quantized model differs from the simulated quantization: layer {layer}: runtime output {index} = \
         {runtime:?}, reference {reference:?}"
    )]
    Conditioner {
        /// Layer.
        layer: u16,
        /// Output index.
        index: usize,
        /// The runtime's value.
        runtime: Option<f32>,
        /// The reference's value.
        reference: Option<f32>,
    },
    /// A quantized model's log p differs from the simulated quantization's.
    #[error("quantized model differs from the simulated quantization: row {row}: runtime log p {runtime} != simulated {simulated}")]
    LogProb {
        /// Row.
        row: usize,
        /// The runtime's log p on the quantized file.
        runtime: f32,
        /// The f32 model's log p with the reference conditioners substituted.
        simulated: f32,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, FloeError>;
