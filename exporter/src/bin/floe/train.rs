//! `floe train`: a settings file and flags into a checkpoint.

use std::path::PathBuf;

use floe_exporter::flow::{FlowConfig, PermChoice, TransformKind};
use floe_exporter::train::{Experiment, SettingsFile, Trained};
use floe_exporter::Result;
use floe_runtime::format::BaseKind;

use crate::args::{base_parser, DataArgs, DeviceArgs};

/// `floe train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data selection.
    #[command(flatten)]
    data: DataArgs,
    /// Training device.
    #[command(flatten)]
    device: DeviceArgs,
    /// TOML settings file with optional [data], [flow] and [train] tables; flags
    /// override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Checkpoint directory to write.
    #[arg(long)]
    out: PathBuf,
    /// The last N columns are the context (conditional flow).
    #[arg(long)]
    context_dim: Option<usize>,
    /// Transform of each step.
    #[arg(long, value_enum)]
    transform: Option<TransformKind>,
    /// Number of steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Conditioner width.
    #[arg(long)]
    hidden: Option<usize>,
    /// Conditioner depth (hidden layers, or residual blocks with --residual).
    #[arg(long)]
    blocks: Option<usize>,
    /// Residual conditioners (NSF ResidualNet).
    #[arg(long)]
    residual: bool,
    /// tanh activations instead of ReLU.
    #[arg(long)]
    tanh: bool,
    /// Spline bins.
    #[arg(long)]
    bins: Option<usize>,
    /// Spline tail bound B (identity outside [-B, B]).
    #[arg(long, allow_negative_numbers = true)]
    tail_bound: Option<f32>,
    /// Base distribution.
    #[arg(long, value_parser = base_parser())]
    base: Option<BaseKind>,
    /// Components of a mixture base (`--base mixture` or `full-mixture`; default 4).
    #[arg(long)]
    components: Option<usize>,
    /// Permutation between steps.
    #[arg(long, value_enum)]
    permutation: Option<PermChoice>,
    /// No ActNorm layers.
    #[arg(long)]
    no_actnorm: bool,
    /// No LU linear layers.
    #[arg(long)]
    no_lu: bool,
    /// Maximum epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Early-stopping patience (epochs).
    #[arg(long)]
    patience: Option<usize>,
    /// Gradient clipping (per-tensor L2 norm).
    #[arg(long, allow_negative_numbers = true)]
    grad_clip: Option<f32>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Overwrite `dst` with `src` when the flag was given.
fn set<T>(dst: &mut T, src: Option<T>) {
    if let Some(v) = src {
        *dst = v;
    }
}

impl Args {
    /// The settings file (if any) with the flags applied.
    fn experiment(&self) -> Result<Experiment> {
        let file = match &self.config {
            Some(p) => SettingsFile::read(p)?,
            None => SettingsFile::default(),
        };
        let data = self.data.spec(file.data)?;
        let context_dim = self.context_dim.or(file.flow.as_ref().map(|f| f.context_dim)).unwrap_or(0);
        let mut train = file.train.unwrap_or_default();
        set(&mut train.epochs, self.epochs);
        set(&mut train.batch_size, self.batch_size);
        set(&mut train.lr, self.lr);
        set(&mut train.patience, self.patience);
        set(&mut train.grad_clip, self.grad_clip.map(Some));
        set(&mut train.seed, self.seed);
        let mut flow = file.flow.unwrap_or_else(FlowConfig::default);
        set(&mut flow.transform, self.transform);
        set(&mut flow.steps, self.steps);
        set(&mut flow.hidden, self.hidden);
        set(&mut flow.blocks, self.blocks);
        set(&mut flow.bins, self.bins);
        set(&mut flow.tail_bound, self.tail_bound);
        set(&mut flow.base, self.base);
        set(&mut flow.components, self.components);
        set(&mut flow.permutation, self.permutation);
        flow.residual |= self.residual;
        flow.tanh |= self.tanh;
        flow.actnorm &= !self.no_actnorm;
        flow.lu &= !self.no_lu;
        Ok(Experiment { data, context_dim, flow, train })
    }
}

/// The line `floe train` and `floe demo` print after training.
pub fn print_trained(t: &Trained) {
    let h = &t.checkpoint.history;
    println!(
        "trained {} epochs in {:.1} s (best epoch {}): test NLL {:.4} nats/dim; checkpoint {}",
        h.val_nll.len(),
        h.seconds,
        h.best_epoch + 1,
        t.test_nll,
        t.dir.display()
    );
}

pub fn run(a: Args) -> Result<()> {
    let trained = a.experiment()?.run_on(&a.device.open_all()?, &a.out, !a.quiet)?;
    print_trained(&trained);
    Ok(())
}
