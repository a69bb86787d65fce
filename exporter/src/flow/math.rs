//! Tensor helpers shared by the Burn modules: the runtime's numerical conventions
//! written in Burn ops.

use burn::prelude::*;
use burn::tensor::activation::relu;

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
