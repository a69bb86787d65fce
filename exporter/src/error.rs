//! The exporter's error type: every failure the CLI reports as one clear line.

use std::path::PathBuf;

/// Errors of the exporter and the `floe` CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FloeError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A data file could not be parsed.
    #[error("{path}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or field.
        msg: String,
    },
    /// The data do not fit the request (wrong dimension, too few rows, NaN, ...).
    #[error("data: {0}")]
    Data(String),
    /// A setting is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A model cannot be built or frozen.
    #[error("model: {0}")]
    Model(String),
    /// The runtime rejected a model file.
    #[error("{path}: invalid model file: {err}")]
    Runtime {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// The runtime's typed error.
        err: floe_runtime::Error,
    },
    /// The frozen file does not reproduce the trained model.
    #[error("parity check failed: {0}")]
    Parity(String),
    /// Training diverged.
    #[error("training: {0}")]
    Training(String),
}

impl FloeError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FloeError::Io { path: path.into(), source }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, FloeError>;
