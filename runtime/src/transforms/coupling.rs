//! Coupling layers: RealNVP (affine) and NSF (rational-quadratic spline).
//!
//! The first `split` coordinates pass through unchanged; together with the context
//! they feed the conditioner, whose output parameterizes an elementwise map
//! ([`super::Elementwise`]) of the remaining `D - split` coordinates. Reverse or
//! permutation layers between couplings let every coordinate be transformed.

use super::conditioner::Conditioner;
use super::spline::{self, Spline};
use super::{Elementwise, Tracer};
use crate::error::{Error, Result};
use crate::kernels::{at, run_wide, set, sub, sub_mut, take, Wide, LANES};

/// A coupling layer bound to its conditioner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coupling<'v, 'a> {
    pub(crate) cond: Conditioner<'v, 'a>,
    pub(crate) elem: Elementwise,
    pub(crate) split: usize,
}

impl Coupling<'_, '_> {
    /// Forward (`inverse == false`) or inverse pass, in place on `x`.
    pub(crate) fn apply(
        &self,
        x: &mut [f32],
        ctx: &[f32],
        mut work: &mut [f32],
        inverse: bool,
        trace: &mut Tracer<'_>,
    ) -> Result<f32> {
        let (shape, elem, split) = (self.cond.shape(), &self.elem, self.split);
        let cond_in = take(&mut work, shape.n_in)?;
        let out = take(&mut work, shape.n_out)?;
        let mlp_work = take(&mut work, shape.work_len())?;
        let elem_work = take(&mut work, elem.work_len())?;
        let (head, tail) = x.split_at_mut(split.min(x.len()));
        if head.len() != split || head.len() + ctx.len() != cond_in.len() {
            return Err(Error::Internal);
        }
        sub_mut(cond_in, 0, split)?.copy_from_slice(head);
        sub_mut(cond_in, split, ctx.len())?.copy_from_slice(ctx);
        self.cond.eval(cond_in, out, mlp_work)?;
        trace.emit(cond_in, out);
        let mut logdet = 0.0f32;
        for (j, v) in tail.iter_mut().enumerate() {
            let (nv, ld) =
                if inverse { elem.inverse(*v, out, j, elem_work)? } else { elem.forward(*v, out, j, elem_work)? };
            *v = nv;
            logdet += ld;
        }
        Ok(logdet)
    }
}

/// `f32` words of shared work space [`forward_lanes`] needs.
pub(crate) fn lanes_work_len(cond: &Conditioner<'_, '_>, elem: &Elementwise) -> usize {
    let shape = cond.shape();
    let elem = match *elem {
        Elementwise::Spline { bins, .. } => spline::lanes::work_len(bins),
        Elementwise::Affine { .. } => 0,
    };
    let mlp = if cond.has_lanes() { cond.lanes_work_len() } else { 0 };
    (shape.n_in + shape.n_out) * LANES + mlp.max(elem)
}

/// The forward pass of a conditioned elementwise layer (a coupling, a MADE
/// layer) on [`LANES`] rows at once: the conditioner reads each row's first
/// `n_cond` coordinates and its context and runs on all lanes together
/// ([`Conditioner::eval_lanes`], f32 and int8; a w8 one row by row, its
/// single-row call); coordinates `first..` are then transformed —
/// splines on all lanes ([`Spline::forward_lanes`]), affine maps row by row.
/// `(n_cond, first)` is `(split, split)` for a coupling and `(D, 0)` for MADE.
/// `xs` holds the rows' states (`LANES × D`, row-major), `ctxs` their
/// standardized contexts (`LANES × C`), `works` each row's layer work space
/// (`LANES` equal parts); `lds` gets each row's log-determinant added. Every
/// lane performs the single-row sequence of operations.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_lanes(
    cond: &Conditioner<'_, '_>,
    elem: &Elementwise,
    (n_cond, first): (usize, usize),
    xs: &mut [f32],
    ctxs: &[f32],
    works: &mut [f32],
    mut shared: &mut [f32],
    lds: &mut [f32; LANES],
) -> Result<()> {
    let shape = cond.shape();
    let (d, cd) = (xs.len() / LANES, ctxs.len() / LANES);
    if n_cond + cd != shape.n_in || d * LANES != xs.len() || cd * LANES != ctxs.len() || n_cond > d || first > d {
        return Err(Error::Internal);
    }
    let ins = take(&mut shared, shape.n_in * LANES)?;
    let outs = take(&mut shared, shape.n_out * LANES)?;
    for (l, x) in xs.chunks_exact(d).enumerate() {
        let c = ctxs.get(l * cd..(l + 1) * cd).ok_or(Error::Internal)?;
        for (j, &v) in x.iter().take(n_cond).chain(c).enumerate() {
            *ins.get_mut(j * LANES + l).ok_or(Error::Internal)? = v;
        }
    }
    // Each row's own layer work space, for what runs row by row.
    let per = (works.len() / LANES).max(1);
    if cond.has_lanes() {
        cond.eval_lanes(ins, outs, shared)?;
    } else {
        // A w8 conditioner: row by row, its single-row call, into and out of
        // the lanes' layout.
        for (l, mut work) in works.chunks_exact_mut(per).enumerate() {
            let cin = take(&mut work, shape.n_in)?;
            let cout = take(&mut work, shape.n_out)?;
            for (j, v) in cin.iter_mut().enumerate() {
                *v = at(ins, j * LANES + l)?;
            }
            cond.eval(cin, cout, take(&mut work, shape.work_len())?)?;
            for (i, &v) in cout.iter().enumerate() {
                set(outs, i * LANES + l, v)?;
            }
        }
    }
    if let Elementwise::Spline { bins, bound, zuko } = *elem {
        let work = take(&mut shared, spline::lanes::work_len(bins))?;
        let spline = Spline { bins, bound, zuko };
        return run_wide(SplineLanes { spline, xs, outs, first, work, lds });
    }
    for (l, ((x, mut work), ld)) in
        xs.chunks_exact_mut(d).zip(works.chunks_exact_mut(per)).zip(lds.iter_mut()).enumerate()
    {
        let out = take(&mut work, shape.n_out)?;
        let elem_work = take(&mut work, elem.work_len())?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = at(outs, i * LANES + l)?;
        }
        let mut logdet = 0.0f32;
        for (j, v) in x.iter_mut().skip(first).enumerate() {
            let (nv, ld) = elem.forward(*v, out, j, elem_work)?;
            *v = nv;
            logdet += ld;
        }
        *ld += logdet;
    }
    Ok(())
}

/// The spline half of [`forward_lanes`]: every transformed
/// coordinate of every lane, in [`run_wide`]'s vectors. Each lane sums its
/// coordinates' log-derivatives from 0.0 in order, then adds the sum to its
/// log-determinant, as [`Coupling::apply`] and its caller do.
struct SplineLanes<'a> {
    spline: Spline,
    xs: &'a mut [f32],
    outs: &'a [f32],
    first: usize,
    work: &'a mut [f32],
    lds: &'a mut [f32; LANES],
}

impl Wide for SplineLanes<'_> {
    type Out = Result<()>;
    #[inline(always)]
    fn run(self) -> Result<()> {
        let SplineLanes { spline, xs, outs, first, work, lds } = self;
        let d = xs.len() / LANES;
        let per = crate::format::spline::params_per_dim(spline.bins) * LANES;
        let mut logdet = [0.0f32; LANES];
        for j in 0..d.saturating_sub(first) {
            let mut v = [0.0f32; LANES];
            for (l, vl) in v.iter_mut().enumerate() {
                *vl = *xs.get(l * d + first + j).ok_or(Error::Internal)?;
            }
            let mut ld = [0.0f32; LANES];
            spline.forward_lanes(&mut v, sub(outs, j * per, per)?, work, &mut ld)?;
            for (l, (&vl, (acc, ldl))) in v.iter().zip(logdet.iter_mut().zip(ld)).enumerate() {
                *xs.get_mut(l * d + first + j).ok_or(Error::Internal)? = vl;
                *acc += ldl;
            }
        }
        for (o, acc) in lds.iter_mut().zip(logdet) {
            *o += acc;
        }
        Ok(())
    }
}
