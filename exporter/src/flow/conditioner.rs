//! MLP conditioners (plain or residual), optionally MADE-masked: the same
//! tensor order and evaluation as the runtime's `transforms/conditioner.rs`, the
//! masks from the format's one rule ([`floe_runtime::format::made`]).

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use floe_runtime::format::made::{mask_allows_by, MaskLayer, MaskRule};
use floe_runtime::format::Activation;

/// Shape of a conditioner.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpSpec {
    /// Hidden width.
    pub hidden: usize,
    /// Hidden layers (plain) or residual blocks.
    pub blocks: usize,
    /// Residual blocks (NSF's ResidualNet) instead of a plain MLP.
    pub residual: bool,
    /// `true` for tanh, `false` for ReLU.
    pub tanh: bool,
    /// The last layer starts at zero, so the transform starts as the identity
    /// (default); `false`: Burn's default initialization, a random
    /// perturbation of the identity (what FlowJAX's couplings start from).
    pub zero_last: bool,
}

impl MlpSpec {
    /// The runtime's activation code.
    pub fn activation(&self) -> Activation {
        if self.tanh {
            Activation::Tanh
        } else {
            Activation::Relu
        }
    }
}

/// A conditioner network.
#[derive(Module, Debug)]
pub struct Mlp {
    /// First, hidden (plain: `blocks - 1`; residual: `2 blocks`), last.
    pub linears: Vec<Linear>,
    /// MADE masks in Burn's `[in, out]` layout, one per linear; empty if unmasked.
    pub masks: Vec<Tensor<2>>,
    /// Residual blocks.
    pub residual: bool,
    /// tanh (else ReLU).
    pub tanh: bool,
    /// Depth.
    pub blocks: usize,
}

#[allow(clippy::too_many_arguments)]
fn mask(
    rule: MaskRule,
    layer: MaskLayer,
    n_in: usize,
    n_out: usize,
    dim: usize,
    ppd: usize,
    device: &Device,
) -> Tensor<2> {
    let mut v = Vec::with_capacity(n_in * n_out);
    for i in 0..n_in {
        for o in 0..n_out {
            v.push(if mask_allows_by(rule, layer, dim, ppd, o, i) { 1.0f32 } else { 0.0 });
        }
    }
    Tensor::from_data(TensorData::new(v, [n_in, n_out]), device)
}

impl Mlp {
    /// A conditioner `n_in -> n_out` whose last layer is zero (the transform starts
    /// as the identity) unless `spec.zero_last` is off. `made = Some((dim, params_per_dim))` masks it.
    pub fn new(spec: &MlpSpec, n_in: usize, n_out: usize, made: Option<(usize, usize)>, device: &Device) -> Mlp {
        Mlp::new_by(spec, n_in, n_out, made.map(|(d, p)| (d, p, MaskRule::Made)), device)
    }

    /// [`Mlp::new`] with the MADE masks of `rule` (zuko's conditional MaskedMLP
    /// for an imported flow).
    pub fn new_by(
        spec: &MlpSpec,
        n_in: usize,
        n_out: usize,
        made: Option<(usize, usize, MaskRule)>,
        device: &Device,
    ) -> Mlp {
        let h = spec.hidden;
        let mut dims = vec![(n_in, h)];
        let n_hidden = if spec.residual { 2 * spec.blocks } else { spec.blocks.saturating_sub(1) };
        dims.extend(std::iter::repeat_n((h, h), n_hidden));
        dims.push((h, n_out));
        let last = dims.len() - 1;
        let linears = dims
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| {
                let cfg = LinearConfig::new(a, b);
                if i == last && spec.zero_last {
                    cfg.with_initializer(Initializer::Zeros).init(device)
                } else {
                    cfg.init(device)
                }
            })
            .collect();
        let masks = match made {
            None => vec![],
            Some((dim, ppd, rule)) => dims
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| mask(rule, MaskLayer::of(i, last + 1), a, b, dim, ppd, device))
                .collect(),
        };
        Mlp { linears, masks, residual: spec.residual, tanh: spec.tanh, blocks: spec.blocks }
    }

    fn weight(&self, i: usize) -> Tensor<2> {
        let w = self.linears[i].weight.val();
        match self.masks.get(i) {
            Some(m) => w * m.clone(),
            None => w,
        }
    }

    fn lin(&self, i: usize, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight(i));
        match &self.linears[i].bias {
            Some(b) => y + b.val().unsqueeze::<2>(),
            None => y,
        }
    }

    fn act(&self, x: Tensor<2>) -> Tensor<2> {
        if self.tanh {
            x.tanh()
        } else {
            relu(x)
        }
    }

    /// Evaluate on a batch `[N, n_in]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.linears.len() - 1;
        if self.residual {
            let mut h = self.lin(0, x);
            for b in 0..self.blocks {
                let t = self.lin(1 + 2 * b, self.act(h.clone()));
                let t = self.lin(2 + 2 * b, self.act(t));
                h = h + t;
            }
            self.lin(last, h)
        } else {
            let mut h = self.act(self.lin(0, x));
            for i in 1..last {
                h = self.act(self.lin(i, h));
            }
            self.lin(last, h)
        }
    }
}
