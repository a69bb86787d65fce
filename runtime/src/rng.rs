//! A small seeded PRNG and the samplers the runtime needs, all `no_std` and
//! bit-reproducible on every target (integer arithmetic plus `libm`).

/// xoshiro128++ (Blackman & Vigna), seeded through SplitMix64.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng {
    s: [u32; 4],
}

impl Rng {
    /// A generator from a 64-bit seed. Equal seeds give equal streams everywhere.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let a = next();
        let b = next();
        let mut s = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(7).wrapping_add(s0);
        let t = s1 << 9;
        let mut n = [s0, s1, s2 ^ s0, s3 ^ s1];
        n[1] ^= n[2];
        n[0] ^= n[3];
        n[2] ^= t;
        n[3] = n[3].rotate_left(11);
        self.s = n;
        result
    }

    /// Uniform on the open interval (0, 1): never 0, never 1.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u32() >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
    }

    /// Standard normal by Box–Muller (one of the pair is used).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        libm::sqrtf(-2.0 * libm::logf(u1)) * crate::kernels::math::cos_turns(u2)
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 through the
    /// `U^(1/shape)` boost. The rejection loop is capped (acceptance is > 95 %, the
    /// cap is never reached in practice); at the cap it returns the mean `shape`.
    pub fn gamma(&mut self, shape: f32) -> f32 {
        if !(shape > 0.0) || !shape.is_finite() {
            return f32::NAN;
        }
        let (a, boost) = if shape < 1.0 {
            let u = self.uniform();
            (shape + 1.0, libm::powf(u, 1.0 / shape))
        } else {
            (shape, 1.0)
        };
        let d = a - 1.0 / 3.0;
        let c = 1.0 / libm::sqrtf(9.0 * d);
        for _ in 0..256 {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            if libm::logf(u) < 0.5 * x * x + d - d * v + d * libm::logf(v) {
                return d * v * boost;
            }
        }
        shape
    }

    /// Standard Student-t with `df` degrees of freedom: `Z / sqrt(V / df)` with
    /// `V ~ chi^2(df) = 2 Gamma(df / 2)`.
    pub fn student_t(&mut self, df: f32) -> f32 {
        let z = self.normal();
        let v = 2.0 * self.gamma(0.5 * df);
        z / libm::sqrtf(v / df)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_seeds_differ() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let va: [u32; 8] = core::array::from_fn(|_| a.next_u32());
        let vb: [u32; 8] = core::array::from_fn(|_| b.next_u32());
        let vc: [u32; 8] = core::array::from_fn(|_| c.next_u32());
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn moments_of_samplers() {
        let mut r = Rng::new(7);
        // Under Miri (a few thousand times slower) the samplers run for undefined
        // behaviour only: too few draws for the moments, which are not checked.
        let n = if cfg!(miri) { 300 } else { 200_000 };
        let check = !cfg!(miri);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let x = r.normal() as f64;
            s1 += x;
            s2 += x * x;
        }
        let (m, v) = (s1 / n as f64, s2 / n as f64 - (s1 / n as f64).powi(2));
        assert!(!check || (m.abs() < 0.01 && (v - 1.0).abs() < 0.02), "normal mean {m} var {v}");
        for &shape in &[0.3f32, 1.0, 2.5, 10.0] {
            let mut s = 0.0f64;
            for _ in 0..n {
                s += r.gamma(shape) as f64;
            }
            let m = s / n as f64;
            assert!(!check || (m - shape as f64).abs() < 0.02 * shape as f64 + 0.01, "gamma({shape}) mean {m}");
        }
        // Student-t with 5 dof has variance 5/3.
        let mut s2 = 0.0f64;
        for _ in 0..n {
            let t = r.student_t(5.0) as f64;
            s2 += t * t;
        }
        let v = s2 / n as f64;
        assert!(!check || (v - 5.0 / 3.0).abs() < 0.08, "t(5) variance {v}");
    }
}
