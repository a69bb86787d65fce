//! The base density `log p_base(z)` as ONNX operators: normal, diagonal
//! normal, Student-t (with an accurate log1p), mixtures (diagonal or full
//! covariance, by `MatMul`) by `ReduceLogSumExp`.

use floe_runtime::format::BaseKind;

use super::graph::Attr;
use super::{Builder, HALF_LN_2PI};
use crate::error::Result;

impl Builder<'_> {
    /// `log p_base(z)` (`[N]`), its constant part included.
    pub(super) fn base(&mut self, z: &str) -> Result<String> {
        let d = self.d;
        let model = self.src.model;
        let first_base = 4u32;
        let half = self.g.f32(-0.5);
        Ok(match model.base_kind() {
            BaseKind::StdNormal => {
                let sq = self.g.mul(z, z);
                let s = self.g.sum_last(&sq);
                self.ld_const -= d as f64 * HALF_LN_2PI;
                self.g.mul(&s, &half)
            }
            BaseKind::DiagNormal => {
                let (loc, ls) = (self.src.tensor(first_base)?, self.src.tensor(first_base + 1)?);
                let (loc, ls) = (loc.f32()?, ls.f32()?);
                self.ld_const -= d as f64 * HALF_LN_2PI + ls.iter().map(|&v| f64::from(v)).sum::<f64>();
                let loc = self.g.f32s("loc", &[d as i64], loc);
                let inv: Vec<f32> = ls.iter().map(|&v| (-v).exp()).collect();
                let inv = self.g.f32s("inv_scale", &[d as i64], &inv);
                let u = self.g.sub(z, &loc);
                let u = self.g.mul(&u, &inv);
                let sq = self.g.mul(&u, &u);
                let s = self.g.sum_last(&sq);
                self.g.mul(&s, &half)
            }
            BaseKind::StudentT => {
                let df = self.src.tensor(first_base)?;
                let df = df.f32()?;
                for &v in df {
                    let v = f64::from(v);
                    self.ld_const +=
                        libm::lgamma(0.5 * (v + 1.0)) - libm::lgamma(0.5 * v) - 0.5 * (v * std::f64::consts::PI).ln();
                }
                let nu = self.g.f32s("df", &[d as i64], df);
                let coef: Vec<f32> = df.iter().map(|&v| -0.5 * (v + 1.0)).collect();
                let coef = self.g.f32s("coef", &[d as i64], &coef);
                let sq = self.g.mul(z, z);
                let q = self.g.div(&sq, &nu);
                // log1p(q) as the runtime has it, accurately for small q:
                // with u = 1 + q, log(u)·q/(u − 1), and q itself where u == 1.
                let one = self.g.f32(1.0);
                let u = self.g.add(&one, &q);
                let lu = self.g.unary("Log", &u);
                let um1 = self.g.sub(&u, &one);
                let l = self.g.mul(&lu, &q);
                let l = self.g.div(&l, &um1);
                let exact = self.g.op("Equal", &[&u, &one], &[]);
                let l = self.g.op("Where", &[&exact, &q, &l], &[]);
                let l = self.g.mul(&l, &coef);
                self.g.sum_last(&l)
            }
            kind @ (BaseKind::Mixture | BaseKind::FullMixture) => {
                let (w, loc, ls) =
                    (self.src.tensor(first_base)?, self.src.tensor(first_base + 1)?, self.src.tensor(first_base + 2)?);
                let k = w.rows;
                let (w, locv, lsv) = (w.f32()?, loc.f32()?, ls.f32()?);
                let max = w.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let lse = max + w.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
                self.ld_const -= d as f64 * HALF_LN_2PI + lse;
                let loc = self.g.f32s("loc", &[k as i64, d as i64], locv);
                let inv: Vec<f32> = lsv.iter().map(|&v| (-v).exp()).collect();
                let lsc = self.g.f32s("log_scale", &[k as i64, d as i64], lsv);
                let z3 = self.g.reshape(z, &[0, 1, d as i64]);
                let diff = self.g.sub(&z3, &loc);
                let u = if kind == BaseKind::FullMixture {
                    // u = W_k (z − μ_k), W_k = diag(e^{−ls_k}) + L_k: [N, K, 1, D] × W_kᵀ.
                    let lower = self.src.tensor(first_base + 3)?;
                    let lower = lower.f32()?;
                    let tri = d * (d - 1) / 2;
                    let mut wt = vec![0.0f32; k * d * d];
                    for c in 0..k {
                        let mut at = c * tri;
                        for i in 0..d {
                            wt[(c * d + i) * d + i] = inv[c * d + i];
                            for j in 0..i {
                                // Transposed: row j, column i.
                                wt[(c * d + j) * d + i] = lower[at];
                                at += 1;
                            }
                        }
                    }
                    let wt = self.g.f32s("whiten_t", &[k as i64, d as i64, d as i64], &wt);
                    let d4 = self.g.reshape(&diff, &[0, 0, 1, d as i64]);
                    let u = self.g.op("MatMul", &[&d4, &wt], &[]);
                    self.g.reshape(&u, &[0, 0, d as i64])
                } else {
                    let inv = self.g.f32s("inv_scale", &[k as i64, d as i64], &inv);
                    self.g.mul(&diff, &inv)
                };
                let sq = self.g.mul(&u, &u);
                let sq = self.g.mul(&sq, &half);
                let t = self.g.sub(&sq, &lsc);
                let t = self.g.sum_last(&t);
                let logits = self.g.f32s("logits", &[k as i64], w);
                let t = self.g.add(&t, &logits);
                self.g.op("ReduceLogSumExp", &[&t], &[Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 0)])
            }
        })
    }
}
