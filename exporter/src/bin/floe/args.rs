//! Arguments several commands share, and parsers for the runtime's own types.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use floe_exporter::anomaly::{FlowSettings, DETECTOR_LR_DROPS};
use floe_exporter::data::DataSpec;
use floe_exporter::error::{ConfigError, Result};
use floe_exporter::train::DeviceName;
use floe_exporter::train::MAX_LR_DROPS;
use floe_runtime::format::{BaseKind, Precision};

/// `--quantize int8|w8`: the runtime's [`Precision`] by name.
pub fn precision_parser() -> impl TypedValueParser<Value = Precision> {
    PossibleValuesParser::new([Precision::Int8.name(), Precision::W8.name()])
        .try_map(|s| Precision::from_name(&s).ok_or("not a precision"))
}

/// `--base normal|diag-normal|student-t|mixture|full-mixture`: the runtime's [`BaseKind`] by name.
pub fn base_parser() -> impl TypedValueParser<Value = BaseKind> {
    PossibleValuesParser::new(BaseKind::ALL.map(BaseKind::name))
        .try_map(|s| BaseKind::from_name(&s).ok_or("not a base distribution"))
}

/// Where the data are.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data file: .csv (header row), .npy or .npz.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Array inside an .npz (default X).
    #[arg(long)]
    pub array: Option<String>,
    /// CSV columns to use, comma-separated names (default all).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Keep only rows whose label equals this (e.g. 0 for the normal rows of an
    /// ADBench set).
    #[arg(long)]
    pub only_label: Option<i64>,
}

impl DataArgs {
    /// The spec: `--data` (else `base`, a settings file's `[data]`) with the flags
    /// applied.
    pub fn spec(&self, base: Option<DataSpec>) -> Result<DataSpec> {
        let mut spec = match (&self.data, base) {
            (Some(p), _) => DataSpec::file(p),
            (None, Some(s)) => s,
            (None, None) => return Err(ConfigError::NoData.into()),
        };
        if self.array.is_some() {
            spec.array = self.array.clone();
        }
        if self.columns.is_some() {
            spec.columns = self.columns.clone();
        }
        if self.only_label.is_some() {
            spec.only_label = self.only_label;
        }
        Ok(spec)
    }
}

/// Flow and training settings of the anomaly commands.
#[derive(Args, Debug, Clone)]
pub struct FlowArgs {
    /// Coupling steps [default: 5; `anomaly stream`: 4].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Conditioner width.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Spline bins.
    #[arg(long, default_value_t = 8)]
    pub bins: usize,
    /// Maximum epochs [default: 200; `anomaly stream`: 60].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Early-stopping patience (epochs).
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Restarts at a tenth of the learning rate: when patience runs out,
    /// training goes on from the best model so far, this many times.
    #[arg(long, default_value_t = DETECTOR_LR_DROPS as u64, value_parser = clap::value_parser!(u64).range(0..=MAX_LR_DROPS as u64))]
    pub lr_drops: u64,
    /// Choose the flow per data set, without labels: train a small family (linear
    /// flows with a normal, a Student-t, a 4-component mixture and a 4-component
    /// full-covariance mixture base; spline flows 2 x 32, steps x hidden and
    /// steps x 2·hidden with a normal base) and keep the one with the lowest NLL
    /// on held-out normal rows.
    #[arg(long)]
    pub select: bool,
    /// Time budget of --select per data set and seed, seconds: no candidate
    /// starts after it (the first always trains).
    #[arg(long, default_value_t = 900.0, value_parser = positive_seconds, requires = "select")]
    pub budget: f64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Training device.
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl FlowArgs {
    /// The library's settings.
    pub fn settings(&self) -> FlowSettings {
        FlowSettings {
            steps: self.steps.unwrap_or(FlowSettings::default().steps),
            hidden: self.hidden,
            bins: self.bins,
            epochs: self.epochs.unwrap_or(FlowSettings::default().epochs),
            patience: self.patience,
            lr_drops: self.lr_drops as usize,
            progress: !self.quiet,
            select: self.select.then_some(self.budget),
        }
    }
}

/// The model file a command writes, and how.
#[derive(Args, Debug, Clone)]
pub struct ModelOut {
    /// Write an int8 or w8 model (its threshold calibrated on it).
    #[arg(long, value_parser = precision_parser())]
    pub quantize: Option<Precision>,
    /// Seed (split, initialization, batches).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// A labelled data file.
#[derive(Args, Debug, Clone)]
pub struct LabelledData {
    /// Data file: an .npz with the data array and a labels array (`X` and `y`).
    #[arg(long)]
    pub data: PathBuf,
    /// Array inside an .npz (default X).
    #[arg(long)]
    pub array: Option<String>,
    /// Labels array inside an .npz (default y).
    #[arg(long)]
    pub labels: Option<String>,
    /// The label of normal rows; every other label is an anomaly.
    #[arg(long, default_value_t = 0)]
    pub normal_label: i64,
}

impl LabelledData {
    /// The spec.
    pub fn spec(&self) -> DataSpec {
        DataSpec { array: self.array.clone(), labels: self.labels.clone(), ..DataSpec::file(&self.data) }
    }
}

/// `--device`: where training runs.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Training device: cpu (Burn's ndarray backend), wgpu, vulkan, vulkan-cpu
    /// (Vulkan on a software driver such as Mesa lavapipe) or cuda[:N] (a build with
    /// the `cuda` feature). `floe train` and `floe demo` take several, comma-separated,
    /// for data-parallel training (e.g. `cpu,cpu` or `vulkan-cpu,wgpu-cpu`).
    #[arg(long, default_value = "cpu", value_delimiter = ',', value_parser = clap::value_parser!(DeviceName))]
    pub device: Vec<DeviceName>,
}

impl DeviceArgs {
    /// The one device of a command that trains on one, or a typed error.
    pub fn open(&self) -> Result<burn::prelude::Device> {
        match self.device.as_slice() {
            [one] => one.open(),
            _ => Err(ConfigError::Invalid {
                setting: "--device",
                expected: "one device here (several are for `floe train` and `floe demo`)",
                value: self.device.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            }
            .into()),
        }
    }

    /// Every device named, opened (data-parallel training).
    pub fn open_all(&self) -> Result<Vec<burn::prelude::Device>> {
        self.device.iter().map(|d| d.open()).collect()
    }
}

/// A number of seconds > 0.
fn positive_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds > 0")),
    }
}
