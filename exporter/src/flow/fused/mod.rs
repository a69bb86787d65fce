//! The rational-quadratic spline as one fused CubeCL kernel per direction —
//! forward (value and log|det|), inverse, and the backward pass with respect to
//! the input and the raw widths / heights / derivatives — registered as a Burn
//! backend extension ([`RqsOps`]) with a hand-written autodiff rule, so that
//! training on a CubeCL device (wgpu, Vulkan, CUDA) runs one kernel per
//! coupling instead of the dozens of small ops of [`super::spline::rqs_forward`].
//!
//! The Burn-ops spline stays the reference and the CPU path: [`rqs_forward`]
//! takes the fused kernel only on a CubeCL device, and only while
//! [`set_enabled`] has not turned it off (benchmarks compare both).
//!
//! Layout: `x [E]`, raw parameters `[E, 3K−1]` (the runtime's), results packed as
//! `[2, E]` = (value, log|dy/dx|) so that one kernel writes both.

mod kernels;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, AutodiffBackend, Backend, DispatchDevice, TensorMetadata};
use burn::prelude::*;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::CubeDim;
use floe_runtime::format::spline::{DERIVATIVE_SHIFT, MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE};

use crate::error::{FloeError, Result};

/// `[E]` → the packed `[2, E]` of a forward or inverse result.
fn packed(s: &burn::tensor::Shape) -> burn::tensor::Shape {
    burn::tensor::Shape::new([2, s.num_elements()])
}

/// The fused spline as a Burn backend extension: implemented for the CubeCL
/// backend (kernels), for Burn's fusion wrapper around it (generated: an opaque
/// op) and for autodiff (below).
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait RqsOps: Backend {
    /// Forward map of `x [E]` with raw parameters `[E, 3K−1]`: packed `[2, E]`.
    #[fusion(dtype = x, shape = packed(x))]
    fn rqs_forward(x: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self>;

    /// Inverse map of `y [E]`: packed `[2, E]` = (x, forward log|dy/dx| at x).
    #[fusion(dtype = y, shape = packed(y))]
    fn rqs_inverse(y: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self>;

    /// Gradients of the forward map from the packed upstream gradient `[2, E]`:
    /// `(∂L/∂x [E], ∂L/∂params [E, 3K−1])`.
    #[fusion(meta = |x, params, _grad, _bins, _bound| (x.clone(), params.clone()))]
    fn rqs_backward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bins: u32,
        bound: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// One thread per element.
fn launch_dims(t: &CubeTensor) -> (cubecl::prelude::CubeCount, CubeDim, usize) {
    let n = t.shape().num_elements();
    let dim = CubeDim::new(&t.client, n);
    (cubecl::calculate_cube_count_elemwise(&t.client, n, dim), dim, n)
}

/// Forward or inverse map of `v [E]`: one launch of the matching kernel into a
/// packed `[2, E]` output.
fn packed_map(v: CubeTensor, params: CubeTensor, bins: u32, bound: f32, inverse: bool) -> CubeTensor {
    let (v, params) = (into_contiguous(v), into_contiguous(params));
    let out = empty_device_contiguous_dtype(v.client.clone(), v.device.clone(), packed(&v.shape()), v.dtype);
    let (count, dim, n) = launch_dims(&v);
    if n == 0 {
        return out;
    }
    let dtype = burn::backend::cubecl::dtype_to_storage_type(v.dtype);
    let client = v.client.clone();
    let (v, params, o) = (v.into_tensor_arg(), params.into_tensor_arg(), out.clone().into_tensor_arg());
    // The two kernels take the same arguments.
    macro_rules! launch {
        ($kernel:path) => {
            $kernel(
                &client,
                count,
                dim,
                v,
                params,
                o,
                bins,
                bound,
                MIN_BIN_WIDTH,
                MIN_BIN_HEIGHT,
                MIN_DERIVATIVE,
                DERIVATIVE_SHIFT,
                dtype,
            )
        };
    }
    if inverse {
        launch!(kernels::rqs_inverse_kernel::launch);
    } else {
        launch!(kernels::rqs_forward_kernel::launch);
    }
    out
}

impl RqsOps for CubeBackend {
    fn rqs_forward(x: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self> {
        packed_map(x, params, bins, bound, false)
    }

    fn rqs_inverse(y: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self> {
        packed_map(y, params, bins, bound, true)
    }

    fn rqs_backward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bins: u32,
        bound: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (x, params, grad) = (into_contiguous(x), into_contiguous(params), into_contiguous(grad));
        let gx = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), x.shape(), x.dtype);
        let gp = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), params.shape(), x.dtype);
        let (count, dim, n) = launch_dims(&x);
        if n > 0 {
            let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
            let client = x.client.clone();
            kernels::rqs_backward_kernel::launch(
                &client,
                count,
                dim,
                x.into_tensor_arg(),
                params.into_tensor_arg(),
                grad.into_tensor_arg(),
                gx.clone().into_tensor_arg(),
                gp.clone().into_tensor_arg(),
                bins,
                bound,
                MIN_BIN_WIDTH,
                MIN_BIN_HEIGHT,
                MIN_DERIVATIVE,
                DERIVATIVE_SHIFT,
                dtype,
            );
        }
        (gx, gp)
    }
}

/// The autodiff rule: the forward kernel's output is tracked; its backward
/// step runs the backward kernel on the saved input and parameters.
impl<B: Backend + RqsOps, C: CheckpointStrategy> RqsOps for Autodiff<B, C> {
    fn rqs_forward(x: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct RqsBackward;

        impl<B: Backend + RqsOps> Backward<B, 2> for RqsBackward {
            type State = (FloatTensor<B>, FloatTensor<B>, u32, f32);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let [node_x, node_p] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, p, bins, bound) = ops.state;
                let (gx, gp) = B::rqs_backward(x, p, grad, bins, bound);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, gx);
                }
                if let Some(node) = node_p {
                    grads.register::<B>(node.id, gp);
                }
            }
        }

        match RqsBackward.prepare::<C>([x.node(), params.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xp, pp) = (x.primitive().clone(), params.primitive().clone());
                let out = B::rqs_forward(xp.clone(), pp.clone(), bins, bound);
                prep.finish((xp, pp, bins, bound), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::rqs_forward(x.into_primitive(), params.into_primitive(), bins, bound))
            }
        }
    }

    fn rqs_inverse(y: FloatTensor<Self>, params: FloatTensor<Self>, bins: u32, bound: f32) -> FloatTensor<Self> {
        // Sampling: no gradient.
        <Self as AutodiffBackend>::from_inner(B::rqs_inverse(Self::inner(y), Self::inner(params), bins, bound))
    }

    fn rqs_backward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bins: u32,
        bound: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gp) = B::rqs_backward(Self::inner(x), Self::inner(params), Self::inner(grad), bins, bound);
        (<Self as AutodiffBackend>::from_inner(gx), <Self as AutodiffBackend>::from_inner(gp))
    }
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turn the fused kernel on or off for this process (on by default); off, a
/// CubeCL device runs the Burn-ops reference like the CPU does. For benchmarks
/// and tests.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::SeqCst);
}

/// Whether `device` is a CubeCL device (directly or under autodiff).
pub fn on_cube(device: &Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Cube(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(&**inner, DispatchDevice::Cube(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Whether [`rqs_forward`] on `device` takes the fused kernel.
pub fn fused_on(device: &Device) -> bool {
    ENABLED.load(Ordering::SeqCst) && on_cube(device)
}

fn unpack(out: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
    let [_, e] = out.dims();
    (out.clone().slice([0..1, 0..e]).reshape([e]), out.slice([1..2, 0..e]).reshape([e]))
}

/// Forward spline by the fused kernel (differentiable). `x [E]`, `raw [E, 3K−1]`;
/// returns `(y, log|dy/dx|)`. Off a CubeCL device (where the kernel cannot run)
/// this is the Burn-ops reference.
pub fn forward(x: Tensor<1>, raw: Tensor<2>, bins: usize, bound: f32) -> (Tensor<1>, Tensor<1>) {
    if !on_cube(&x.device()) {
        return super::spline::rqs_forward_reference(x, raw, bins, bound);
    }
    let out =
        <burn::backend::Dispatch as RqsOps>::rqs_forward(x.into_dispatch(), raw.into_dispatch(), bins as u32, bound);
    unpack(Tensor::<2>::from_dispatch(out))
}

/// Inverse spline by the fused kernel: `(x, forward log|dy/dx| at x)`. Only on
/// a CubeCL device (there is no Burn-ops inverse): elsewhere a typed error.
pub fn inverse(y: Tensor<1>, raw: Tensor<2>, bins: usize, bound: f32) -> Result<(Tensor<1>, Tensor<1>)> {
    require_cube(&y.device())?;
    let out =
        <burn::backend::Dispatch as RqsOps>::rqs_inverse(y.into_dispatch(), raw.into_dispatch(), bins as u32, bound);
    Ok(unpack(Tensor::<2>::from_dispatch(out)))
}

/// The backward kernel alone, for tests and benchmarks: `(∂L/∂x, ∂L/∂raw)` of
/// `L = Σ gy·y + gld·log|det|`. Only on a CubeCL device: elsewhere a typed error.
pub fn backward(
    x: Tensor<1>,
    raw: Tensor<2>,
    gy: Tensor<1>,
    gld: Tensor<1>,
    bins: usize,
    bound: f32,
) -> Result<(Tensor<1>, Tensor<2>)> {
    require_cube(&x.device())?;
    let grad = Tensor::stack::<2>(vec![gy, gld], 0);
    let (gx, gp) = <burn::backend::Dispatch as RqsOps>::rqs_backward(
        x.into_dispatch(),
        raw.into_dispatch(),
        grad.into_dispatch(),
        bins as u32,
        bound,
    );
    Ok((Tensor::from_dispatch(gx), Tensor::from_dispatch(gp)))
}

fn require_cube(device: &Device) -> Result<()> {
    if on_cube(device) {
        Ok(())
    } else {
        Err(FloeError::Device {
            name: format!("{device:?}"),
            message: "the fused spline's inverse and backward kernels need a CubeCL device".into(),
        })
    }
}
