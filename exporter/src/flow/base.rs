//! The base distribution in Burn: the trainable twin of the runtime's `base.rs`,
//! one module for every [`BaseKind`].

use burn::module::Param;
use burn::prelude::*;
use floe_runtime::format::BaseKind;

use super::math::lgamma;

const HALF_LN_2PI: f32 = 0.918_938_5;

/// Base distribution parameters (only those of `kind` are used).
#[derive(Module, Debug)]
pub struct BaseDist {
    /// Which distribution.
    #[module(skip)]
    pub kind: BaseKind,
    /// Diagonal normal: means.
    pub loc: Option<Param<Tensor<1>>>,
    /// Diagonal normal: log standard deviations.
    pub log_scale: Option<Param<Tensor<1>>>,
    /// Student-t: log degrees of freedom.
    pub log_df: Option<Param<Tensor<1>>>,
    /// Mixture: component logits (K).
    pub mix_logits: Option<Param<Tensor<1>>>,
    /// Mixture: component means (K × D).
    pub mix_loc: Option<Param<Tensor<2>>>,
    /// Mixture: component log standard deviations (K × D); with full
    /// covariances, minus the log of the whitening matrices' diagonals.
    pub mix_log_scale: Option<Param<Tensor<2>>>,
    /// Full-covariance mixture: the whitening matrices' strictly lower
    /// triangles (K × D × D; the diagonal and upper triangle are unused).
    pub mix_lower: Option<Param<Tensor<3>>>,
}

impl BaseDist {
    /// A base of `kind` over `d` dimensions: N(0, I), or to be learned: a
    /// diagonal normal, a Student-t (10 degrees of freedom), or a mixture of
    /// `components` diagonal or full-covariance normals (equal weights, unit
    /// covariances, means drawn from N(0, I) by the backend's seeded generator).
    pub fn new(kind: BaseKind, d: usize, components: usize, device: &Device) -> Self {
        let p = |v: f32| Some(Param::from_tensor(Tensor::full([d], v, device)));
        let none = BaseDist {
            kind,
            loc: None,
            log_scale: None,
            log_df: None,
            mix_logits: None,
            mix_loc: None,
            mix_log_scale: None,
            mix_lower: None,
        };
        match kind {
            BaseKind::StdNormal => none,
            BaseKind::DiagNormal => BaseDist { loc: p(0.0), log_scale: p(0.0), ..none },
            BaseKind::StudentT => BaseDist { log_df: p(10f32.ln()), ..none },
            BaseKind::Mixture | BaseKind::FullMixture => {
                let k = components.max(1);
                let means = Tensor::random([k, d], burn::tensor::Distribution::Normal(0.0, 1.0), device);
                let lower =
                    (kind == BaseKind::FullMixture).then(|| Param::from_tensor(Tensor::zeros([k, d, d], device)));
                BaseDist {
                    mix_logits: Some(Param::from_tensor(Tensor::zeros([k], device))),
                    mix_loc: Some(Param::from_tensor(means)),
                    mix_log_scale: Some(Param::from_tensor(Tensor::zeros([k, d], device))),
                    mix_lower: lower,
                    ..none
                }
            }
        }
    }

    /// `log p(z)` per row.
    pub fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        let [n, d] = z.dims();
        let c = -(d as f32) * HALF_LN_2PI;
        if let (true, Some(w), Some(loc), Some(ls)) =
            (self.kind.is_mixture(), &self.mix_logits, &self.mix_loc, &self.mix_log_scale)
        {
            let k = w.val().dims()[0];
            // Per row and component: log softmax(w)_k − ½‖W_k(z − μ_k)‖² − Σ ln σ_k,
            // W_k = diag(1/σ_k) (+ L_k, strictly lower triangular, with full covariances).
            let diff = z.unsqueeze_dim::<3>(1) - loc.val().unsqueeze::<3>();
            let mut u = diff.clone() * ls.val().neg().exp().unsqueeze::<3>();
            if let (BaseKind::FullMixture, Some(lower)) = (self.kind, &self.mix_lower) {
                // [K, n, D] × [K, D, D]ᵀ: row i gains Σ_{j<i} L_kij (z_j − μ_kj).
                let l = lower.val().tril(-1).swap_dims(1, 2);
                u = u + diff.swap_dims(0, 1).matmul(l).swap_dims(0, 1);
            }
            let kernel = u.powf_scalar(2.0).sum_dim(2).reshape([n, k]).mul_scalar(-0.5);
            let comp = kernel - ls.val().sum_dim(1).reshape([1, k])
                + burn::tensor::activation::log_softmax(w.val(), 0).reshape([1, k]);
            // Log-sum-exp over components, shifted by the (constant) row maximum.
            let top = comp.clone().max_dim(1).detach();
            let lse = (comp - top.clone()).exp().sum_dim(1).log() + top;
            return lse.reshape([n]).add_scalar(c);
        }
        match (self.kind, &self.loc, &self.log_scale, &self.log_df) {
            (BaseKind::DiagNormal, Some(loc), Some(ls), _) => {
                let u = (z - loc.val().unsqueeze::<2>()) * ls.val().neg().exp().unsqueeze::<2>();
                let k = u.clone().powf_scalar(2.0).sum_dim(1).reshape([n]).mul_scalar(-0.5);
                k.add_scalar(c) - ls.val().sum_dim(0)
            }
            (BaseKind::StudentT, _, _, Some(ldf)) => {
                let nu = ldf.val().exp();
                let norm = lgamma(nu.clone().add_scalar(1.0).mul_scalar(0.5))
                    - lgamma(nu.clone().mul_scalar(0.5))
                    - (nu.clone().mul_scalar(std::f32::consts::PI)).log().mul_scalar(0.5);
                let nu2 = nu.clone().unsqueeze::<2>();
                let t = (z.clone() * z / nu2.clone()).log1p() * nu2.add_scalar(1.0).mul_scalar(-0.5);
                t.sum_dim(1).reshape([n]) + norm.sum_dim(0)
            }
            _ => z.powf_scalar(2.0).sum_dim(1).reshape([n]).mul_scalar(-0.5).add_scalar(c),
        }
    }
}
