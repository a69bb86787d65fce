//! Trajectory densities: a model of where a person will be over the next T steps,
//! given where they were over the last few.
//!
//! A trajectory file's layer 0 encodes the observed history into `h`; its step
//! flows give, for each future step `t`, the *exact* conditional density of the
//! step's displacement `v_t` given `h`, the previous displacement `v_{t−1}` and
//! (shared flow) a learned embedding `e_t` of the step:
//!
//! `log p(x_1..x_T | history) = Σ_t log p(v_t | h, v_{t−1}, e_t)`
//!
//! where `x_t` are world positions and `v_t = u_t − u_{t−1}` the displacements in
//! the model's [`Frame`] (origin at the last observed position, axes along the
//! last observed heading or the world's). Positions ↔ frame ↔ displacements are a
//! rotation, a translation and a unit-triangular map: the joint density needs no
//! Jacobian correction, in world units (nats, metres).
//!
//! [`Tracker`] holds `N` sampled futures (particles) of `T` steps in fixed memory
//! and answers: the joint density of a whole future, the density of the position
//! at step `t` at a point (the mixture over the particles' prefixes of the exact
//! conditional densities — smooth, consistent, no kernel density estimate, no
//! grid), the same on a grid, and a fast update when the next position is
//! observed (importance weights under a Gaussian sensor model, no network
//! evaluation).

mod tracker;

pub use tracker::{Refresh, Tracker, Update};

use crate::error::{Error, Result};
use crate::model::Model;

/// A 2-D position or displacement, metres.
pub type Point = [f32; 2];

/// Below this length (metres per step) the last observed displacement gives no
/// heading, and the heading frame is the world's axes.
pub const MIN_HEADING_STEP: f32 = 1e-3;

/// The frame a trajectory model predicts in: origin at the last observed
/// position, axes rotated so that the last observed displacement points along
/// +x (heading frame), or the world's axes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame {
    /// The last observed position, world coordinates.
    pub origin: Point,
    /// cos of the heading.
    pub cos: f32,
    /// sin of the heading.
    pub sin: f32,
}

impl Frame {
    /// The frame of `history` (oldest first, at least two positions): with
    /// `heading`, its last displacement's direction, unless that displacement is
    /// shorter than [`MIN_HEADING_STEP`].
    pub fn of(history: &[Point], heading: bool) -> Result<Frame> {
        let n = history.len();
        let (Some(&last), Some(&prev)) = (history.last(), history.get(n.wrapping_sub(2))) else {
            return Err(Error::DimMismatch { expected: 2, got: n as u32 });
        };
        let (dx, dy) = (last[0] - prev[0], last[1] - prev[1]);
        let len = libm::sqrtf(dx * dx + dy * dy);
        let (cos, sin) = if heading && len >= MIN_HEADING_STEP { (dx / len, dy / len) } else { (1.0, 0.0) };
        Ok(Frame { origin: last, cos, sin })
    }

    /// A world position in the frame.
    pub fn to_local(&self, p: Point) -> Point {
        let (dx, dy) = (p[0] - self.origin[0], p[1] - self.origin[1]);
        [self.cos * dx + self.sin * dy, self.cos * dy - self.sin * dx]
    }

    /// A frame position in world coordinates.
    pub fn to_world(&self, u: Point) -> Point {
        [self.cos * u[0] - self.sin * u[1] + self.origin[0], self.sin * u[0] + self.cos * u[1] + self.origin[1]]
    }
}

/// Encode `history` (the model's `observed` positions, world frame, finite)
/// into `h`: its frame, its displacements in that frame (into `feat`, raw), the
/// encoder's output; returns the frame and the last observed displacement.
/// What [`Tracker::predict`] and the exporter's hook both run.
pub(crate) fn encode_history(
    model: &Model<'_>,
    heading: bool,
    history: &[Point],
    feat: &mut [f32],
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(Frame, Point)> {
    let encoder = model.encoder()?;
    let frame = Frame::of(history, heading)?;
    features(history, &frame, feat)?;
    encoder.encode(feat, h, scratch)?;
    let v0 = match feat.get(feat.len().wrapping_sub(2)..) {
        Some([x, y]) => [*x, *y],
        _ => return Err(Error::Internal),
    };
    Ok((frame, v0))
}

/// The encoder's input: the `history.len() − 1` displacements of `history` in
/// `frame`, `[dx_1, dy_1, dx_2, …]`, oldest first.
pub fn features(history: &[Point], frame: &Frame, out: &mut [f32]) -> Result<()> {
    let expected = 2 * history.len().saturating_sub(1);
    if out.len() != expected {
        return Err(Error::DimMismatch { expected: expected as u32, got: out.len() as u32 });
    }
    for (o, w) in out.chunks_exact_mut(2).zip(history.windows(2)) {
        if let ([ox, oy], [a, b]) = (o, w) {
            let (ua, ub) = (frame.to_local(*a), frame.to_local(*b));
            *ox = ub[0] - ua[0];
            *oy = ub[1] - ua[1];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heading_frame_puts_the_last_step_on_plus_x() {
        let h = [[1.0, 1.0], [1.0, 2.0], [0.0, 3.0]];
        let f = Frame::of(&h, true).unwrap();
        let u = f.to_local([-1.0, 4.0]);
        assert!((u[0] - 2f32.sqrt()).abs() < 1e-6 && u[1].abs() < 1e-6, "{u:?}");
        let back = f.to_world(u);
        assert!((back[0] + 1.0).abs() < 1e-6 && (back[1] - 4.0).abs() < 1e-6);
        let mut feat = [0.0; 4];
        features(&h, &f, &mut feat).unwrap();
        // The last displacement has length sqrt(2) along +x.
        assert!((feat[2] - 2f32.sqrt()).abs() < 1e-6 && feat[3].abs() < 1e-6);
        // A standing person: world axes.
        let f = Frame::of(&[[2.0, 2.0], [2.0, 2.0]], true).unwrap();
        assert_eq!((f.cos, f.sin), (1.0, 0.0));
        assert!(Frame::of(&[[0.0, 0.0]], true).is_err());
    }
}
