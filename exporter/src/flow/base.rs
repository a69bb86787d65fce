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
}

impl BaseDist {
    /// A base of `kind` over `d` dimensions: N(0, I), or a diagonal normal or
    /// Student-t (10 degrees of freedom) to be learned.
    pub fn new(kind: BaseKind, d: usize, device: &Device) -> Self {
        let p = |v: f32| Some(Param::from_tensor(Tensor::full([d], v, device)));
        match kind {
            BaseKind::StdNormal => BaseDist { kind, loc: None, log_scale: None, log_df: None },
            BaseKind::DiagNormal => BaseDist { kind, loc: p(0.0), log_scale: p(0.0), log_df: None },
            BaseKind::StudentT => BaseDist { kind, loc: None, log_scale: None, log_df: p(10f32.ln()) },
        }
    }

    /// `log p(z)` per row.
    pub fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        let [n, d] = z.dims();
        let c = -(d as f32) * HALF_LN_2PI;
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
