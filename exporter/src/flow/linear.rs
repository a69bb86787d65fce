//! Volume-changing linear pieces in Burn: LU linear (Glow), permutations and
//! ActNorm. Same parameterization as the runtime's `lu_linear`, `permute`,
//! `actnorm`.

use burn::module::Param;
use burn::prelude::*;

use super::math::to_vec;

/// `z = L (U + diag(exp(log_diag))) x + bias`, `L` unit lower, `U` strictly upper,
/// both packed in `lu` (its diagonal unused).
#[derive(Module, Debug)]
pub struct LuLinear {
    /// Packed strictly-lower (L) and strictly-upper (U) entries.
    pub lu: Param<Tensor<2>>,
    /// Log of U's diagonal.
    pub log_diag: Param<Tensor<1>>,
    /// Bias.
    pub bias: Param<Tensor<1>>,
    /// 1 strictly below the diagonal.
    pub lower_mask: Tensor<2>,
    /// 1 strictly above the diagonal.
    pub upper_mask: Tensor<2>,
}

fn tri_mask(d: usize, lower: bool, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..d * d)
        .map(|k| {
            let (i, j) = (k / d, k % d);
            if (lower && j < i) || (!lower && j > i) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [d, d]), device)
}

impl LuLinear {
    /// Identity at initialization.
    pub fn new(d: usize, device: &Device) -> Self {
        LuLinear {
            lu: Param::from_tensor(Tensor::zeros([d, d], device)),
            log_diag: Param::from_tensor(Tensor::zeros([d], device)),
            bias: Param::from_tensor(Tensor::zeros([d], device)),
            lower_mask: tri_mask(d, true, device),
            upper_mask: tri_mask(d, false, device),
        }
    }

    /// The matrix `W = L (U + D)`.
    pub fn weight(&self) -> Tensor<2> {
        let [d, _] = self.lu.dims();
        let device = self.lu.device();
        let eye = Tensor::<2>::eye(d, &device);
        let l = self.lu.val() * self.lower_mask.clone() + eye.clone();
        let u = self.lu.val() * self.upper_mask.clone() + eye * self.log_diag.val().exp().unsqueeze::<2>();
        l.matmul(u)
    }

    /// Data to latent.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, _] = x.dims();
        let z = x.matmul(self.weight().transpose()) + self.bias.val().unsqueeze::<2>();
        let ld = Tensor::<1>::ones([n], &z.device()) * self.log_diag.val().sum_dim(0);
        (z, ld)
    }

    /// `(lu with zero diagonal, log_diag, bias)` as plain vectors.
    pub fn values(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let lu = to_vec(self.lu.val() * (self.lower_mask.clone() + self.upper_mask.clone()));
        (lu, to_vec(self.log_diag.val()), to_vec(self.bias.val()))
    }
}

/// Fixed permutation `z_i = x_perm[i]` (a reversal when `reverse`).
#[derive(Module, Debug)]
pub struct Permute {
    /// The permutation.
    pub perm: Vec<usize>,
    /// Whether it is the reversal (written as the tensor-free `reverse` kind).
    pub reverse: bool,
}

impl Permute {
    /// Reverse the coordinates.
    pub fn reversal(d: usize) -> Self {
        Permute { perm: (0..d).rev().collect(), reverse: true }
    }
    /// A seeded random permutation.
    pub fn random(d: usize, rng: &mut impl rand::Rng) -> Self {
        use rand::seq::SliceRandom;
        let mut perm: Vec<usize> = (0..d).collect();
        perm.shuffle(rng);
        Permute { perm, reverse: false }
    }
    /// Data to latent.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, d] = x.dims();
        let device = x.device();
        let idx: Vec<i64> = self.perm.iter().map(|&p| p as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [d]), &device);
        (x.select(1, idx), Tensor::zeros([n], &device))
    }
}

/// ActNorm (Glow): `z = x exp(log_scale) + shift`, initialized from the first batch
/// so its output has zero mean and unit variance per coordinate.
#[derive(Module, Debug)]
pub struct ActNorm {
    /// Log scale.
    pub log_scale: Param<Tensor<1>>,
    /// Shift.
    pub shift: Param<Tensor<1>>,
}

impl ActNorm {
    /// Identity until [`ActNorm::init_from`] runs.
    pub fn new(d: usize, device: &Device) -> Self {
        ActNorm {
            log_scale: Param::from_tensor(Tensor::zeros([d], device)),
            shift: Param::from_tensor(Tensor::zeros([d], device)),
        }
    }
    /// Data-dependent initialization from a batch of this layer's inputs.
    pub fn init_from(&self, x: &Tensor<2>) -> Self {
        let device = self.log_scale.device();
        let [n, d] = x.dims();
        let v = to_vec(x.clone());
        let mut ls = vec![0.0f32; d];
        let mut sh = vec![0.0f32; d];
        for j in 0..d {
            let col: Vec<f64> = (0..n).map(|i| v[i * d + j] as f64).collect();
            let m = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / n as f64;
            // A (near-)constant column keeps unit scale: 1/std would amplify any
            // later deviation by orders of magnitude.
            let sd = var.sqrt();
            let s = if sd > 1e-3 { 1.0 / sd } else { 1.0 };
            ls[j] = s.ln() as f32;
            sh[j] = (-m * s) as f32;
        }
        ActNorm {
            log_scale: Param::from_tensor(Tensor::from_data(TensorData::new(ls, [d]), &device)),
            shift: Param::from_tensor(Tensor::from_data(TensorData::new(sh, [d]), &device)),
        }
    }
    /// Data to latent.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, _] = x.dims();
        let z = x * self.log_scale.val().exp().unsqueeze::<2>() + self.shift.val().unsqueeze::<2>();
        let ld = Tensor::<1>::ones([n], &z.device()) * self.log_scale.val().sum_dim(0);
        (z, ld)
    }
    /// `(log_scale, shift)`.
    pub fn values(&self) -> (Vec<f32>, Vec<f32>) {
        (to_vec(self.log_scale.val()), to_vec(self.shift.val()))
    }
}
