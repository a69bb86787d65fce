//! The int8 conditioner as ONNX integer arithmetic (docs/FORMAT.md,
//! "Quantized conditioners"): exactly the runtime's pipeline.

use floe_runtime::format::{requant_words, Activation, LayerRecord};
use floe_runtime::kernels::quant::multiplier;
use onnx_protobuf::tensor_proto::DataType;

use super::{transposed, unsupported, Builder, Data, Tensor};
use crate::error::{FloeError, Result};

impl Builder<'_> {
    /// The int8 conditioner, integer for integer (docs/FORMAT.md, "Quantized
    /// conditioners").
    pub(super) fn int8_conditioner(&mut self, r: &LayerRecord, t: &[Tensor], input: &str) -> Result<String> {
        let layers = usize::from(r.blocks) + 1;
        if r.residual() || r.activation != Activation::Relu || t.len() != 1 + 3 * layers {
            return Err(FloeError::Internal("ONNX export: int8 conditioner layout"));
        }
        let table = t[0].f32()?;
        let a = |row: usize, col: usize| table.get(2 * row + col).copied().ok_or(FloeError::Internal("int8 table"));
        // 1. q = clamp(round(u / s0) + z0, -128, 127) − z0, round half away
        // from zero (exactly: floor(|p|) plus one where the fraction is ≥ ½).
        let (inv_s0, z0) = (a(0, 0)?, a(0, 1)?);
        let inv = self.g.f32(inv_s0);
        let p = self.g.mul(input, &inv);
        let abs = self.g.unary("Abs", &p);
        let fl = self.g.unary("Floor", &abs);
        let frac = self.g.sub(&abs, &fl);
        let half = self.g.f32(0.5);
        let up = self.g.op("GreaterOrEqual", &[&frac, &half], &[]);
        let up = self.g.cast(&up, DataType::FLOAT);
        let mag = self.g.add(&fl, &up);
        let sign = self.g.unary("Sign", &p);
        let rnd = self.g.mul(&sign, &mag);
        let (lo, hi) = (self.g.f32(-128.0 - z0), self.g.f32(127.0 - z0));
        let mut q = self.g.op("Clip", &[&rnd, &lo, &hi], &[]);
        for l in 0..layers {
            let (w, s, b) = (&t[1 + 3 * l], &t[2 + 3 * l], &t[3 + 3 * l]);
            let (Data::I8(wv), Data::I32(bv)) = (&w.data, &b.data) else {
                return Err(FloeError::Internal("ONNX export: int8 dense dtypes"));
            };
            // Every partial sum of |w| ≤ 127 times |q − z| ≤ 255 is an integer
            // of magnitude at most 2^24, exact in f32, so the product is exact
            // in any order: up to 518 inputs.
            if w.cols * 127 * 255 > 1 << 24 {
                return Err(unsupported(format!("an int8 dense with {} inputs (exact up to 518)", w.cols)));
            }
            let mut plain = wv.clone();
            if r.row_pairs() {
                floe_runtime::format::row_pairs::unpack(wv, w.rows, w.cols, &mut plain)?;
            }
            let wf: Vec<f32> = plain.iter().map(|&v| f32::from(v)).collect();
            let wt = self.g.f32s("w8", &[w.cols as i64, w.rows as i64], &transposed(&wf, w.rows, w.cols));
            let dot = self.g.op("MatMul", &[&q, &wt], &[]);
            let dot = self.g.cast(&dot, DataType::INT32);
            let bias = self.g.i32s("bias", &[b.rows as i64], bv);
            let acc = self.g.add(&dot, &bias);
            if l + 1 < layers {
                // 3. requantize: ⌊(acc·M + 2^(t−1)) / 2^t⌋ then the ReLU clamp.
                // ONNX's integer Div truncates; it differs from the floor only
                // for a negative quotient, which the clamp at 0 maps to 0 either way.
                let (ratio, z) = (a(1 + l, 0)?, a(1 + l, 1)?);
                // Each unit's ratio: stored as a requantization word (exactly
                // the f32 it stands for) or its scale times the layer's ratio.
                let reals: Vec<f32> = match &s.data {
                    Data::I32(words) if r.requant_words() => words
                        .iter()
                        .map(|&w| requant_words::real(w).ok_or(FloeError::Internal("ONNX export: requantization word")))
                        .collect::<Result<_>>()?,
                    _ => s.f32()?.iter().map(|&si| si * ratio).collect(),
                };
                let (mut ms, mut rs, mut ds) = (Vec::new(), Vec::new(), Vec::new());
                for &real in &reals {
                    let (m, sh) = multiplier(real);
                    let total = 31 - sh;
                    if m == 0 || total > 62 {
                        ms.push(0);
                        rs.push(0);
                        ds.push(1);
                    } else if total <= 0 {
                        return Err(unsupported(format!("an int8 requantization multiplier ≥ 2^30 ({real})")));
                    } else {
                        ms.push(i64::from(m));
                        rs.push(1i64 << (total - 1));
                        ds.push(1i64 << total);
                    }
                }
                let n = ms.len() as i64;
                let (mm, rr, dd) =
                    (self.g.i64s("m", &[n], &ms), self.g.i64s("r", &[n], &rs), self.g.i64s("d", &[n], &ds));
                let wide = self.g.cast(&acc, DataType::INT64);
                let prod = self.g.mul(&wide, &mm);
                let num = self.g.add(&prod, &rr);
                let y = self.g.div(&num, &dd);
                let zero = self.g.i64s("zero", &[], &[0]);
                let top = self.g.i64s("top", &[], &[127 - z as i64]);
                let y = self.g.op("Max", &[&y, &zero], &[]);
                let y = self.g.op("Min", &[&y, &top], &[]);
                q = self.g.cast(&y, DataType::FLOAT);
            } else {
                // 4. out = (f32(acc)·s_i)·s_L.
                let scales = s.f32()?;
                let s_last = a(layers, 0)?;
                let accf = self.g.cast(&acc, DataType::FLOAT);
                let ss = self.g.f32s("s", &[s.rows as i64], scales);
                let y = self.g.mul(&accf, &ss);
                let sl = self.g.f32(s_last);
                return Ok(self.g.mul(&y, &sl));
            }
        }
        Err(FloeError::Internal("ONNX export: int8 conditioner without layers"))
    }
}
