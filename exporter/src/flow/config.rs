//! The architecture of a flow: what a settings file's `[flow]` table holds.

use floe_runtime::format::{BaseKind, LayerKind, MAX_BINS, MAX_BLOCKS, MAX_COMPONENTS, MAX_DIM};
use serde::{Deserialize, Serialize};

use super::conditioner::MlpSpec;
use crate::error::{ConfigError, Result};

/// Which conditioned transform the flow stacks. Variants are named as the
/// runtime's [`LayerKind`]s they freeze to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TransformKind {
    /// Rational-quadratic spline coupling (NSF-C).
    SplineCoupling,
    /// Affine coupling (RealNVP).
    AffineCoupling,
    /// MADE affine: the masked autoregressive flow (MAF).
    #[serde(rename = "maf", alias = "made-affine")]
    #[value(name = "maf", alias = "made-affine")]
    MadeAffine,
    /// MADE rational-quadratic spline (NSF-AR).
    MadeSpline,
    /// No conditioned layer: each step is ActNorm → LU linear only. With a normal
    /// base, a full-covariance Gaussian; with a mixture base, a Gaussian mixture
    /// sharing one linear map.
    Linear,
}

impl TransformKind {
    /// The layer kind it freezes to.
    pub const fn layer_kind(self) -> LayerKind {
        match self {
            TransformKind::SplineCoupling => LayerKind::SplineCoupling,
            TransformKind::AffineCoupling => LayerKind::AffineCoupling,
            TransformKind::MadeAffine => LayerKind::MadeAffine,
            TransformKind::MadeSpline => LayerKind::MadeSpline,
            TransformKind::Linear => LayerKind::LuLinear,
        }
    }
    /// Whether each step has a conditioned layer (all but [`TransformKind::Linear`]).
    pub const fn is_conditioned(self) -> bool {
        !matches!(self, TransformKind::Linear)
    }
    /// Whether it is a coupling (else MADE).
    pub const fn is_coupling(self) -> bool {
        matches!(self, TransformKind::SplineCoupling | TransformKind::AffineCoupling)
    }
}

/// Permutation between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PermChoice {
    /// Reverse the coordinates.
    Reverse,
    /// A fixed random permutation per step.
    Random,
    /// None.
    None,
}

/// Serde for [`BaseKind`] by its stable name (`normal`, `diag-normal`, `student-t`, `mixture`).
pub mod base_kind_serde {
    use floe_runtime::format::BaseKind;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the name.
    pub fn serialize<S: Serializer>(k: &BaseKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.name())
    }

    /// Read a name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BaseKind, D::Error> {
        let name = String::deserialize(d)?;
        BaseKind::from_name(&name).ok_or_else(|| {
            let names: Vec<&str> = BaseKind::ALL.iter().map(|k| k.name()).collect();
            serde::de::Error::custom(format!("unknown base {name:?}, expected one of {names:?}"))
        })
    }
}

/// Architecture of a flow. In a settings file every field is optional (defaults:
/// [`FlowConfig::spline`]); `dim` and `context_dim` always come from the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// D.
    pub dim: usize,
    /// C.
    pub context_dim: usize,
    /// The transform of each step.
    pub transform: TransformKind,
    /// Number of steps.
    pub steps: usize,
    /// Conditioner width.
    pub hidden: usize,
    /// Conditioner depth (hidden layers, or residual blocks).
    pub blocks: usize,
    /// Residual conditioner.
    pub residual: bool,
    /// tanh instead of ReLU.
    pub tanh: bool,
    /// Spline bins K.
    pub bins: usize,
    /// Spline tail bound B.
    pub tail_bound: f32,
    /// Affine log-scale soft clamp A.
    pub clamp: f32,
    /// ActNorm at the start of each step.
    pub actnorm: bool,
    /// LU linear at the start of each step (after ActNorm).
    pub lu: bool,
    /// Permutation between steps.
    pub permutation: PermChoice,
    /// Base distribution.
    #[serde(with = "base_kind_serde")]
    pub base: BaseKind,
    /// Components of a mixture base (`base = "mixture"`).
    pub components: usize,
    /// Seed of the random permutations and initial weights.
    pub seed: u64,
    /// The conditioners' output layers start at zero, so every step starts as
    /// the identity (default); `false`: Burn's default initialization, a
    /// random perturbation of the identity, as FlowJAX's couplings start (the
    /// anomaly detector flow, [`crate::anomaly::detector_flow`]).
    pub zero_init: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig::spline(1)
    }
}

impl FlowConfig {
    /// A neural spline flow with sensible defaults for `dim`.
    pub fn spline(dim: usize) -> Self {
        FlowConfig {
            dim,
            context_dim: 0,
            transform: TransformKind::SplineCoupling,
            steps: 4,
            hidden: 32,
            blocks: 2,
            residual: false,
            tanh: false,
            bins: 8,
            tail_bound: 4.0,
            clamp: 3.0,
            actnorm: true,
            lu: true,
            permutation: PermChoice::Reverse,
            base: BaseKind::StdNormal,
            components: 4,
            seed: 0,
            zero_init: true,
        }
    }

    /// Check the settings; a clear message for each problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, expected: &'static str, value: usize| -> Result<()> {
            Err(ConfigError::invalid(setting, expected, value).into())
        };
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad("dim", "in 1..=4096", self.dim);
        }
        if self.context_dim > MAX_DIM {
            return bad("context_dim", "at most 4096", self.context_dim);
        }
        if self.transform == TransformKind::Linear && !self.lu {
            return bad("lu", "on for a linear flow (its LU layers are the flow)", 0);
        }
        if self.transform == TransformKind::Linear && self.dim == 1 && !self.actnorm {
            return bad("actnorm", "on for a 1-D linear flow (an LU layer needs 2 dims: it would have no layer)", 0);
        }
        if self.transform == TransformKind::Linear && self.context_dim > 0 {
            return bad(
                "context_dim",
                "0 for a linear flow (it has no conditioner to take a context)",
                self.context_dim,
            );
        }
        if self.transform.is_coupling() && self.dim < 2 {
            return bad("dim", ">= 2 for coupling layers (use --transform maf or made-spline for 1-D data)", self.dim);
        }
        if self.steps == 0 || self.steps > 64 {
            return bad("steps", "in 1..=64", self.steps);
        }
        if self.hidden == 0 || self.hidden > MAX_DIM {
            return bad("hidden", "in 1..=4096", self.hidden);
        }
        if (!self.residual && self.blocks == 0) || self.blocks > MAX_BLOCKS {
            return bad("blocks", "in 1..=64 (0 allowed only with residual)", self.blocks);
        }
        if self.transform.layer_kind().is_spline() && !(2..=MAX_BINS).contains(&self.bins) {
            return bad("bins", "in 2..=256", self.bins);
        }
        if !(self.tail_bound.is_finite() && self.tail_bound > 0.0) {
            return Err(ConfigError::invalid("tail_bound", "> 0", self.tail_bound).into());
        }
        if self.base.is_mixture() && !(1..=MAX_COMPONENTS).contains(&self.components) {
            return bad("components", "in 1..=64 for a mixture base", self.components);
        }
        if self.base == BaseKind::FullMixture && self.dim < 2 {
            return bad("dim", "at least 2 for a full-covariance mixture base", self.dim);
        }
        if !(self.clamp.is_finite() && self.clamp > 0.0) {
            return Err(ConfigError::invalid("clamp", "> 0", self.clamp).into());
        }
        Ok(())
    }

    /// The conditioners' shape.
    pub(crate) fn mlp_spec(&self) -> MlpSpec {
        MlpSpec {
            hidden: self.hidden,
            blocks: self.blocks,
            residual: self.residual,
            tanh: self.tanh,
            zero_last: self.zero_init,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_flows_and_mixture_bases_are_checked() {
        let linear = FlowConfig { transform: TransformKind::Linear, ..FlowConfig::spline(4) };
        assert!(linear.validate().is_ok());
        let e = FlowConfig { lu: false, ..linear.clone() }.validate().unwrap_err().to_string();
        assert!(e.contains("lu") && e.contains("linear"), "{e}");
        let e = FlowConfig { context_dim: 2, ..linear }.validate().unwrap_err().to_string();
        assert!(e.contains("context_dim"), "{e}");
        let mixture = |components| FlowConfig { base: BaseKind::Mixture, components, ..FlowConfig::spline(4) };
        assert!(mixture(1).validate().is_ok() && mixture(64).validate().is_ok());
        for bad in [0, 65] {
            let e = mixture(bad).validate().unwrap_err().to_string();
            assert!(e.contains("components"), "{e}");
        }
        let full = |components, dim| FlowConfig {
            transform: TransformKind::Linear,
            base: BaseKind::FullMixture,
            components,
            ..FlowConfig::spline(dim)
        };
        assert!(FlowConfig { base: BaseKind::Mixture, ..full(2, 1) }.validate().is_ok());
        assert!(full(8, 2).validate().is_ok());
        let e = full(0, 4).validate().unwrap_err().to_string();
        assert!(e.contains("components"), "{e}");
        let e = full(2, 1).validate().unwrap_err().to_string();
        assert!(e.contains("dim") && e.contains("full-covariance"), "{e}");
        // Components only matter with a mixture base.
        assert!(FlowConfig { components: 0, ..FlowConfig::spline(4) }.validate().is_ok());
    }
}
