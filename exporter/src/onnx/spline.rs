//! The rational-quadratic spline as ONNX operators, in the runtime's order
//! of operations (runtime/src/transforms/spline.rs).

use floe_runtime::format::spline::{
    DERIVATIVE_SHIFT, MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE, ZUKO_NEG_LN_SLOPE,
};
use onnx_protobuf::tensor_proto::DataType;

use super::graph::Attr;
use super::Builder;

impl Builder<'_> {
    /// zuko's soft clip `r / (1 + |k·r / A|)`, in the runtime's order of operations.
    pub(super) fn zuko_clip(&mut self, r: &str, k: f32, a: f32) -> String {
        let kk = self.g.f32(k);
        let t = self.g.mul(&kk, r);
        let aa = self.g.f32(a);
        let t = self.g.div(&t, &aa);
        let t = self.g.unary("Abs", &t);
        let one = self.g.f32(1.0);
        let t = self.g.add(&one, &t);
        self.g.div(r, &t)
    }

    /// Widths (or heights) `m + (1 − mK)·softmax(raw)` and their knots
    /// `[−B, 2B·cumsum − B …, B]`, `[N, n, K + 1]`, in the runtime's order of
    /// operations: `e^{r − max r}`, their sum left to right, each `e / sum`.
    /// With `zuko`, the logits are soft-clipped first and `m` is 0.
    fn knots(&mut self, raw: &str, k: usize, min: f32, bound: f32, zuko: bool) -> String {
        let (raw, min) = if zuko { (self.zuko_clip(raw, 2.0, ZUKO_NEG_LN_SLOPE), 0.0) } else { (raw.to_owned(), min) };
        let raw = raw.as_str();
        let max = self.g.op("ReduceMax", &[raw], &[Attr::Ints("axes", vec![2]), Attr::Int("keepdims", 1)]);
        let centred = self.g.sub(raw, &max);
        let e = self.g.unary("Exp", &centred);
        let mut sum = self.g.slice(&e, 2, 0, 1);
        for j in 1..k as i64 {
            let t = self.g.slice(&e, 2, j, j + 1);
            sum = self.g.add(&sum, &t);
        }
        let p = self.g.div(&e, &sum);
        let scale = self.g.f32(1.0 - min * k as f32);
        let w = self.g.mul(&scale, &p);
        let m = self.g.f32(min);
        let w = self.g.add(&m, &w);
        let axis = self.g.i64s("axis", &[], &[2]);
        let cum = self.g.op("CumSum", &[&w, &axis], &[Attr::Int("exclusive", 1)]);
        let two_b = self.g.f32(2.0 * bound);
        let b = self.g.f32(bound);
        let inner = self.g.mul(&two_b, &cum);
        let inner = self.g.sub(&inner, &b);
        let first = self.g.slice(&w, 2, 0, 1);
        let zero = self.g.f32(0.0);
        let last = self.g.mul(&first, &zero);
        let last = self.g.add(&last, &b);
        self.g.concat(&[&inner, &last], 2)
    }

    /// The knots `x`, `y` and derivatives `d` (`[N, n, K + 1]` each) of the
    /// splines whose raw parameters are `out` (`[N, n(3K − 1)]`).
    fn spline_knots(&mut self, out: &str, n: usize, k: usize, bound: f32, zuko: bool) -> (String, String, String) {
        let kk = k as i64;
        let p = self.g.reshape(out, &[0, n as i64, 3 * kk - 1]);
        let wr = self.g.slice(&p, 2, 0, kk);
        let hr = self.g.slice(&p, 2, kk, 2 * kk);
        let dr = self.g.slice(&p, 2, 2 * kk, 3 * kk - 1);
        let xs = self.knots(&wr, k, MIN_BIN_WIDTH, bound, zuko);
        let ys = self.knots(&hr, k, MIN_BIN_HEIGHT, bound, zuko);
        let d = if zuko {
            let c = self.zuko_clip(&dr, 1.0, ZUKO_NEG_LN_SLOPE);
            self.g.unary("Exp", &c)
        } else {
            let shift = self.g.f32(DERIVATIVE_SHIFT);
            let d = self.g.add(&dr, &shift);
            let d = self.g.unary("Softplus", &d);
            let md = self.g.f32(MIN_DERIVATIVE);
            self.g.add(&md, &d)
        };
        let first = self.g.slice(&xs, 2, 0, 1);
        let zero = self.g.f32(0.0);
        let one = self.g.f32(1.0);
        let ones = self.g.mul(&first, &zero);
        let ones = self.g.add(&ones, &one);
        let ds = self.g.concat(&[&ones, &d, &ones], 2);
        (xs, ys, ds)
    }

    /// `(inside [−B, B], the value clipped to it as [N, n, 1])`.
    fn inside(&mut self, v: &str, n: usize, bound: f32) -> (String, String) {
        let (lo, hi) = (self.g.f32(-bound), self.g.f32(bound));
        let ge = self.g.op("GreaterOrEqual", &[v, &lo], &[]);
        let le = self.g.op("LessOrEqual", &[v, &hi], &[]);
        let inside = self.g.op("And", &[&ge, &le], &[]);
        let c = self.g.op("Clip", &[v, &lo, &hi], &[]);
        (inside, self.g.reshape(&c, &[0, n as i64, 1]))
    }

    /// The bin of `v` (`[N, n, 1]`) among the knots `t`: how many of
    /// `t_0 … t_{K−1}` are ≤ v, minus one; and that count (the bin's right end).
    fn bin(&mut self, t: &str, v: &str, k: usize) -> (String, String) {
        let left = self.g.slice(t, 2, 0, k as i64);
        let below = self.g.op("LessOrEqual", &[&left, v], &[]);
        let below = self.g.cast(&below, DataType::INT64);
        let axis = self.g.ints(&[2]);
        let count = self.g.op("ReduceSum", &[&below, &axis], &[Attr::Int("keepdims", 1)]);
        let one_i = self.g.i64s("one", &[], &[1]);
        (self.g.sub(&count, &one_i), count)
    }

    /// The bin's ends `[x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}]`.
    fn bin_values(&mut self, knots: [&str; 3], bin: &str, next: &str) -> [String; 6] {
        let mut at = |t: &str, i: &str| self.g.op("GatherElements", &[t, i], &[Attr::Int("axis", 2)]);
        let [xs, ys, ds] = knots;
        [at(xs, bin), at(xs, next), at(ys, bin), at(ys, next), at(ds, bin), at(ds, next)]
    }

    /// The inverse of [`Builder::spline`]: `x` from `y` (`[N, n]`), in the
    /// runtime's order of operations (transforms/spline.rs `inverse`): the bin
    /// by the y-knots, then the stable root of the quadratic.
    pub(super) fn spline_inverse(&mut self, y: &str, out: &str, n: usize, k: usize, bound: f32, zuko: bool) -> String {
        let (xs, ys, ds) = self.spline_knots(out, n, k, bound, zuko);
        let (inside, v) = self.inside(y, n, bound);
        let (bin, count) = self.bin(&ys, &v, k);
        let [x0, x1, y0, y1, d0, d1] = self.bin_values([&xs, &ys, &ds], &bin, &count);
        let g = &mut self.g;
        let w = g.sub(&x1, &x0);
        let h = g.sub(&y1, &y0);
        let delta = g.div(&h, &w);
        let dy = g.sub(&v, &y0);
        let two = g.f32(2.0);
        let four = g.f32(4.0);
        let zero = g.f32(0.0);
        // s = d_{k+1} + d_k − 2δ
        let s = g.add(&d1, &d0);
        let two_delta = g.mul(&two, &delta);
        let s = g.sub(&s, &two_delta);
        // a = h(δ − d_k) + Δ·s, b = h·d_k − Δ·s, c = −δΔ
        let dmd = g.sub(&delta, &d0);
        let a = g.mul(&h, &dmd);
        let dys = g.mul(&dy, &s);
        let a = g.add(&a, &dys);
        let b = g.mul(&h, &d0);
        let b = g.sub(&b, &dys);
        let c = g.mul(&delta, &dy);
        let c = g.unary("Neg", &c);
        // θ = 2c / (−b − √max(b² − 4ac, 0))
        let bb = g.mul(&b, &b);
        let fa = g.mul(&four, &a);
        let fac = g.mul(&fa, &c);
        let disc = g.sub(&bb, &fac);
        let disc = g.op("Max", &[&disc, &zero], &[]);
        let root = g.unary("Sqrt", &disc);
        let nb = g.unary("Neg", &b);
        let den = g.sub(&nb, &root);
        let num = g.mul(&two, &c);
        let theta = g.div(&num, &den);
        let xw = g.mul(&theta, &w);
        let x = g.add(&xw, &x0);
        let x = g.reshape(&x, &[0, n as i64]);
        g.op("Where", &[&inside, &x, y], &[])
    }

    /// The rational-quadratic spline of `x` (`[N, n]`) with parameters `out`
    /// (`[N, n(3K − 1)]`), identity outside `[−B, B]`; `zuko`: zuko's
    /// parameterization (`FLAG_ZUKO`).
    pub(super) fn spline(&mut self, x: &str, out: &str, n: usize, k: usize, bound: f32, zuko: bool) -> String {
        let (xs, ys, ds) = self.spline_knots(out, n, k, bound, zuko);
        let one = self.g.f32(1.0);
        let zero = self.g.f32(0.0);
        // Inside [−B, B]: the spline; outside: the identity.
        let (inside, v) = self.inside(x, n, bound);
        let (bin, count) = self.bin(&xs, &v, k);
        let [x0, x1, y0, y1, d0, d1] = self.bin_values([&xs, &ys, &ds], &bin, &count);
        let g = &mut self.g;
        let w = g.sub(&x1, &x0);
        let h = g.sub(&y1, &y0);
        let delta = g.div(&h, &w);
        let two = g.f32(2.0);
        let two_delta = g.mul(&two, &delta);
        let s = g.add(&d1, &d0);
        let s = g.sub(&s, &two_delta);
        let th = g.sub(&v, &x0);
        let th = g.div(&th, &w);
        let one_m = g.sub(&one, &th);
        let t1 = g.mul(&th, &one_m);
        // The runtime's order of operations (transforms/spline.rs):
        // y = y_k + h·((δ·θ)·θ + d_k·θ(1−θ)) / (δ + s·θ(1−θ))
        let dth = g.mul(&delta, &th);
        let dth2 = g.mul(&dth, &th);
        let dk_t1 = g.mul(&d0, &t1);
        let inner_y = g.add(&dth2, &dk_t1);
        let num = g.mul(&h, &inner_y);
        let st1 = g.mul(&s, &t1);
        let den = g.add(&delta, &st1);
        let frac = g.div(&num, &den);
        let y = g.add(&y0, &frac);
        // log|det| = ln((δ·δ)·((d_{k+1}·θ)·θ + 2δ·θ(1−θ) + (d_k·(1−θ))·(1−θ))) − 2·ln(δ + s·θ(1−θ))
        let a1 = g.mul(&d1, &th);
        let a1 = g.mul(&a1, &th);
        let a2 = g.mul(&two_delta, &t1);
        let a3 = g.mul(&d0, &one_m);
        let a3 = g.mul(&a3, &one_m);
        let inner = g.add(&a1, &a2);
        let inner = g.add(&inner, &a3);
        let dd = g.mul(&delta, &delta);
        let inner = g.mul(&dd, &inner);
        let l1 = g.unary("Log", &inner);
        let l2 = g.unary("Log", &den);
        let l2 = g.mul(&two, &l2);
        let ld = g.sub(&l1, &l2);
        let y = g.reshape(&y, &[0, n as i64]);
        let ld = g.reshape(&ld, &[0, n as i64]);
        let y = g.op("Where", &[&inside, &y, x], &[]);
        let ld = g.op("Where", &[&inside, &ld, &zero], &[]);
        let ld = g.sum_last(&ld);
        self.ld_terms.push(ld);
        y
    }
}
