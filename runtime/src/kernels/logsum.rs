//! A running log-sum-exp: the tracker's particle mixtures and the mixture base.

/// `ln Σ e^{a_k}` accumulated left to right in one pass: a running maximum and a
/// sum rescaled to it. NaN and `−∞` terms add nothing; with no finite term the
/// value is `−∞`.
#[derive(Clone, Copy)]
pub(crate) struct LogSum {
    max: f32,
    sum: f32,
}

impl LogSum {
    pub(crate) const fn new() -> LogSum {
        LogSum { max: f32::NEG_INFINITY, sum: 0.0 }
    }
    /// Not inlined: one copy for every caller (flash is tight on Cortex-M0 boards).
    #[inline(never)]
    pub(crate) fn add(&mut self, a: f32) {
        if !(a > f32::NEG_INFINITY) {
            return;
        }
        if a > self.max {
            self.sum = self.sum * crate::kernels::math::exp(self.max - a) + 1.0;
            self.max = a;
        } else {
            self.sum += crate::kernels::math::exp(a - self.max);
        }
    }
    pub(crate) fn value(&self) -> f32 {
        if self.sum > 0.0 {
            self.max + libm::logf(self.sum)
        } else {
            f32::NEG_INFINITY
        }
    }
}
