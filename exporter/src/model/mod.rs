//! Burn modules: one per runtime transform, same names and parameterization.

pub mod conditioner;
pub mod coupling;
pub mod linear;
pub mod spline;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use floe_runtime::LayerKind;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use conditioner::{Mlp, MlpSpec};
pub use coupling::{Coupling, Elementwise, Made};
pub use linear::{ActNorm, LuLinear, Permute};

use crate::error::{FloeError, Result};
use crate::writer::{FrozenBase, FrozenLayer, FrozenModel, FrozenTensor};

/// A tensor's values as `Vec<f32>`.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`, as the runtime computes it.
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// `ln Gamma(x)` for `x > 0`: shift by 6 with the recurrence, then Stirling's
/// series (error < 1e-8 for the shifted argument). Differentiable.
pub fn lgamma<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let y = x.clone().add_scalar(6.0);
    let mut prod = x.clone();
    for k in 1..6 {
        prod = prod * x.clone().add_scalar(k as f32);
    }
    let inv = y.clone().recip();
    let inv2 = inv.clone() * inv.clone();
    let series = inv.clone()
        * (inv2.clone().mul_scalar(-1.0 / 360.0) + inv2.clone() * inv2.mul_scalar(1.0 / 1260.0)).add_scalar(1.0 / 12.0);
    let st = (y.clone().sub_scalar(0.5)) * y.clone().log() - y + series;
    st.add_scalar(0.918_938_5) - prod.log()
}

/// Which transform the flow stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TransformKind {
    /// Rational-quadratic spline coupling (NSF-C).
    SplineCoupling,
    /// Affine coupling (RealNVP).
    AffineCoupling,
    /// MADE affine (MAF).
    Maf,
    /// MADE rational-quadratic spline (NSF-AR).
    MadeSpline,
}

/// Base distribution choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BaseChoice {
    /// N(0, I).
    Normal,
    /// Learned diagonal normal.
    DiagNormal,
    /// Student-t with learned degrees of freedom per dimension.
    StudentT,
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
    pub base: BaseChoice,
    /// Seed of the random permutations and initial weights.
    pub seed: u64,
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
            base: BaseChoice::Normal,
            seed: 0,
        }
    }

    /// Check the settings; a clear message for each problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(FloeError::Config(m.to_string()));
        if self.dim == 0 || self.dim > floe_runtime::format::MAX_DIM {
            return bad("dim must be in 1..=4096");
        }
        if self.context_dim > floe_runtime::format::MAX_DIM {
            return bad("context_dim must be at most 4096");
        }
        let coupling = matches!(self.transform, TransformKind::SplineCoupling | TransformKind::AffineCoupling);
        if coupling && self.dim < 2 {
            return bad("coupling layers need dim >= 2; use --transform maf or made-spline for 1-D data");
        }
        if self.steps == 0 || self.steps > 64 {
            return bad("steps must be in 1..=64");
        }
        if self.hidden == 0 || self.hidden > 4096 {
            return bad("hidden must be in 1..=4096");
        }
        if (!self.residual && self.blocks == 0) || self.blocks > 64 {
            return bad("blocks must be in 1..=64 (0 allowed only with residual)");
        }
        if matches!(self.transform, TransformKind::SplineCoupling | TransformKind::MadeSpline)
            && !(2..=floe_runtime::format::MAX_BINS).contains(&self.bins)
        {
            return bad("bins must be in 2..=256");
        }
        if !(self.tail_bound.is_finite() && self.tail_bound > 0.0) {
            return bad("tail_bound must be > 0");
        }
        if !(self.clamp.is_finite() && self.clamp > 0.0) {
            return bad("clamp must be > 0");
        }
        Ok(())
    }

    fn spec(&self) -> MlpSpec {
        MlpSpec { hidden: self.hidden, blocks: self.blocks, residual: self.residual, tanh: self.tanh }
    }
}

/// One layer of a flow. (Variant sizes differ; a flow holds a handful of layers,
/// so boxing buys nothing.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// Coupling (affine or spline).
    Coupling(Coupling),
    /// MADE (affine or spline).
    Made(Made),
    /// LU linear.
    LuLinear(LuLinear),
    /// Permutation or reversal.
    Permute(Permute),
    /// ActNorm.
    ActNorm(ActNorm),
}

impl Layer {
    /// Data to latent: `(z, log|det| per row)`.
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        match self {
            Layer::Coupling(l) => l.forward(x, ctx),
            Layer::Made(l) => l.forward(x, ctx),
            Layer::LuLinear(l) => l.forward(x),
            Layer::Permute(l) => l.forward(x),
            Layer::ActNorm(l) => l.forward(x),
        }
    }
}

/// Base distribution parameters (only those of `kind` are used).
#[derive(Module, Debug)]
pub struct BaseDist {
    /// 0 normal, 1 diagonal normal, 2 Student-t.
    pub kind: u8,
    /// Diagonal normal: means.
    pub loc: Option<Param<Tensor<1>>>,
    /// Diagonal normal: log standard deviations.
    pub log_scale: Option<Param<Tensor<1>>>,
    /// Student-t: log degrees of freedom.
    pub log_df: Option<Param<Tensor<1>>>,
}

const HALF_LN_2PI: f32 = 0.918_938_5;

impl BaseDist {
    fn new(choice: BaseChoice, d: usize, device: &Device) -> Self {
        let p = |v: f32| Some(Param::from_tensor(Tensor::full([d], v, device)));
        match choice {
            BaseChoice::Normal => BaseDist { kind: 0, loc: None, log_scale: None, log_df: None },
            BaseChoice::DiagNormal => BaseDist { kind: 1, loc: p(0.0), log_scale: p(0.0), log_df: None },
            BaseChoice::StudentT => BaseDist { kind: 2, loc: None, log_scale: None, log_df: p(10f32.ln()) },
        }
    }

    /// `log p(z)` per row.
    pub fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        let [n, d] = z.dims();
        let c = -(d as f32) * HALF_LN_2PI;
        match (self.kind, &self.loc, &self.log_scale, &self.log_df) {
            (1, Some(loc), Some(ls), _) => {
                let u = (z - loc.val().unsqueeze::<2>()) * ls.val().neg().exp().unsqueeze::<2>();
                let k = u.clone().powf_scalar(2.0).sum_dim(1).reshape([n]).mul_scalar(-0.5);
                k.add_scalar(c) - ls.val().sum()
            }
            (2, _, _, Some(ldf)) => {
                let nu = ldf.val().exp();
                let norm = lgamma(nu.clone().add_scalar(1.0).mul_scalar(0.5))
                    - lgamma(nu.clone().mul_scalar(0.5))
                    - (nu.clone().mul_scalar(std::f32::consts::PI)).log().mul_scalar(0.5);
                let nu2 = nu.clone().unsqueeze::<2>();
                let t = (z.clone() * z / nu2.clone()).log1p() * nu2.add_scalar(1.0).mul_scalar(-0.5);
                t.sum_dim(1).reshape([n]) + norm.sum()
            }
            _ => z.powf_scalar(2.0).sum_dim(1).reshape([n]).mul_scalar(-0.5).add_scalar(c),
        }
    }

    fn frozen(&self) -> FrozenBase {
        match (self.kind, &self.loc, &self.log_scale, &self.log_df) {
            (1, Some(loc), Some(ls), _) => {
                FrozenBase::DiagNormal { loc: to_vec(loc.val()), log_scale: to_vec(ls.val()) }
            }
            (2, _, _, Some(ldf)) => FrozenBase::StudentT { df: to_vec(ldf.val().exp()) },
            _ => FrozenBase::StdNormal,
        }
    }
}

/// A normalizing flow: layers (data side first) and a base distribution. Works in
/// standardized units; [`Standardization`] holds the map from data units.
#[derive(Module, Debug)]
pub struct Flow {
    /// Layers, data side first.
    pub layers: Vec<Layer>,
    /// Base distribution.
    pub base: BaseDist,
    /// D.
    pub dim: usize,
    /// C.
    pub context_dim: usize,
}

/// Per-column affine standardization of data (and context).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Column means of the training rows.
    pub mean: Vec<f32>,
    /// Column standard deviations of the training rows. A column whose deviation
    /// is at most 1e-6 of the largest (constant on the training rows) gets 1, so
    /// a value never seen in training stays finitely far away.
    pub std: Vec<f32>,
}

impl Standardization {
    /// Statistics of the rows of a row-major `n x d` matrix.
    pub fn fit(x: &[f32], d: usize) -> Self {
        let n = x.len().checked_div(d).unwrap_or(0);
        let mut mean = vec![0.0f32; d];
        let mut std = vec![1.0f32; d];
        for j in 0..d {
            let m = (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n.max(1) as f64;
            let v = (0..n).map(|i| (x[i * d + j] as f64 - m).powi(2)).sum::<f64>() / n.max(1) as f64;
            mean[j] = m as f32;
            std[j] = v.sqrt() as f32;
        }
        let top = std.iter().cloned().fold(0.0f32, f32::max);
        let floor = top * 1e-6;
        for s in std.iter_mut() {
            if !(*s > floor) {
                *s = 1.0;
            }
        }
        Standardization { mean, std }
    }

    /// Identity (for an empty context).
    pub fn identity(d: usize) -> Self {
        Standardization { mean: vec![0.0; d], std: vec![1.0; d] }
    }

    /// Standardize a row-major matrix.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        x.iter().enumerate().map(|(k, &v)| (v - self.mean[k % d]) / self.std[k % d]).collect()
    }

    /// `sum(ln std)`: subtract from a standardized log-density to get data units.
    pub fn log_det(&self) -> f64 {
        self.std.iter().map(|&s| (s as f64).ln()).sum()
    }
}

impl Flow {
    /// Build an untrained flow (every layer the identity, ActNorm not yet initialized).
    pub fn new(cfg: &FlowConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dim;
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5EED_F10E);
        let mut layers = Vec::new();
        let elem = match cfg.transform {
            TransformKind::SplineCoupling | TransformKind::MadeSpline => {
                Elementwise::Spline { bins: cfg.bins, bound: cfg.tail_bound }
            }
            _ => Elementwise::Affine { clamp: cfg.clamp },
        };
        for step in 0..cfg.steps {
            if step > 0 {
                match cfg.permutation {
                    PermChoice::Reverse if d > 1 => layers.push(Layer::Permute(Permute::reversal(d))),
                    PermChoice::Random if d > 1 => layers.push(Layer::Permute(Permute::random(d, &mut rng))),
                    _ => {}
                }
            }
            if cfg.actnorm {
                layers.push(Layer::ActNorm(ActNorm::new(d, device)));
            }
            if cfg.lu && d > 1 {
                layers.push(Layer::LuLinear(LuLinear::new(d, device)));
            }
            match cfg.transform {
                TransformKind::SplineCoupling | TransformKind::AffineCoupling => {
                    layers.push(Layer::Coupling(Coupling::new(d, cfg.context_dim, d / 2, elem, cfg.spec(), device)))
                }
                TransformKind::Maf | TransformKind::MadeSpline => {
                    layers.push(Layer::Made(Made::new(d, cfg.context_dim, elem, cfg.spec(), device)))
                }
            }
        }
        Ok(Flow { layers, base: BaseDist::new(cfg.base, d, device), dim: d, context_dim: cfg.context_dim })
    }

    /// Data to latent: `(z, summed log|det|)`.
    pub fn forward(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [n, _] = x.dims();
        let mut ld = Tensor::<1>::zeros([n], &x.device());
        let mut z = x;
        for l in &self.layers {
            let (nz, l_ld) = l.forward(z, ctx.clone());
            z = nz;
            ld = ld + l_ld;
        }
        (z, ld)
    }

    /// `log p(x | ctx)` per row, in standardized units.
    pub fn log_prob(&self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> Tensor<1> {
        let (z, ld) = self.forward(x, ctx);
        self.base.log_prob(z) + ld
    }

    /// Data-dependent initialization of every ActNorm from a batch.
    pub fn data_init(mut self, x: Tensor<2>, ctx: Option<Tensor<2>>) -> Self {
        let mut z = x;
        for l in self.layers.iter_mut() {
            if let Layer::ActNorm(a) = l {
                *a = a.init_from(&z);
            }
            z = l.forward(z, ctx.clone()).0.detach();
        }
        self
    }

    /// The flow as a file description. An ActNorm directly followed by an LU
    /// linear is folded into it: `L (U + D)(x e^s + b) + c` is again an LU linear
    /// with `U' = U E`, `log D' = log D + s` and bias `L (U + D) b + c`.
    pub fn frozen(&self, x_std: &Standardization, c_std: &Standardization) -> Result<FrozenModel> {
        let d = self.dim;
        let mut layers = Vec::new();
        let mut i = 0;
        while i < self.layers.len() {
            match (&self.layers[i], self.layers.get(i + 1)) {
                (Layer::ActNorm(a), Some(Layer::LuLinear(l))) => {
                    let (s, b) = a.values();
                    let (mut lu, mut ld, bias) = l.values();
                    // new bias: W b + c, with W = L (U + D) evaluated in f64.
                    let w = to_vec(l.weight());
                    let nb: Vec<f32> = (0..d)
                        .map(|r| (0..d).map(|c| w[r * d + c] as f64 * b[c] as f64).sum::<f64>() as f32 + bias[r])
                        .collect();
                    for r in 0..d {
                        for c in r + 1..d {
                            lu[r * d + c] = (lu[r * d + c] as f64 * (s[c] as f64).exp()) as f32;
                        }
                    }
                    for (x, si) in ld.iter_mut().zip(&s) {
                        *x += si;
                    }
                    layers.push(linear::lu_frozen(d, lu, ld, nb));
                    i += 2;
                    continue;
                }
                (Layer::ActNorm(a), _) => {
                    let (s, b) = a.values();
                    layers.push(FrozenLayer::plain(
                        LayerKind::ActNorm,
                        vec![FrozenTensor::vector(s), FrozenTensor::vector(b)],
                    ));
                }
                (Layer::LuLinear(l), _) => {
                    let (lu, ld, b) = l.values();
                    layers.push(linear::lu_frozen(d, lu, ld, b));
                }
                (Layer::Permute(p), _) => layers.push(p.frozen()),
                (Layer::Coupling(c), _) => layers.push(c.frozen()),
                (Layer::Made(m), _) => layers.push(m.frozen()),
            }
            i += 1;
        }
        let m = FrozenModel {
            dim: d,
            context_dim: self.context_dim,
            x_mean: x_std.mean.clone(),
            x_std: x_std.std.clone(),
            c_mean: c_std.mean.clone(),
            c_std: c_std.std.clone(),
            base: self.base.frozen(),
            layers,
            anomaly: None,
            stream: None,
        };
        let all_finite = m.layers.iter().flat_map(|l| l.tensors.iter()).all(|t| t.f32s().iter().all(|v| v.is_finite()));
        if !all_finite {
            return Err(FloeError::Model("the trained model holds NaN or infinite weights".into()));
        }
        Ok(m)
    }
}

/// Adds seeded `N(0, scale^2)` noise to every trainable parameter: turns the
/// identity-initialized flow into a generic one (tests, parity checks).
pub fn perturb(flow: Flow, scale: f32) -> Flow {
    struct Noise(f32);
    impl burn::module::ModuleMapper for Noise {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let v = param.val();
            let noise = v.random_like(burn::tensor::Distribution::Normal(0.0, self.0 as f64));
            Param::from_tensor((v + noise).detach())
        }
    }
    flow.map(&mut Noise(scale))
}
