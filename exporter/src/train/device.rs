//! Devices. Training and evaluation take their device from the caller; this is
//! where the CLI gets one, by name (`--device`).
//!
//! | name          | backend                                   | notes                               |
//! |---------------|-------------------------------------------|-------------------------------------|
//! | `cpu`         | Burn's ndarray backend                    | the default; the reference path     |
//! | `wgpu`        | CubeCL on wgpu, the best adapter          | Vulkan / Metal / DX12, WGSL kernels |
//! | `vulkan`      | CubeCL on Vulkan, the best adapter        | WGSL (SPIR-V with the `vulkan-spirv` feature) |
//! | `vulkan-cpu`  | CubeCL on Vulkan, a CPU adapter           | Mesa lavapipe: every GPU code path on a machine without a GPU |
//! | `wgpu-cpu`    | CubeCL on wgpu, a CPU adapter             | lavapipe again, a second device (own queue and memory): two devices on one machine |
//! | `cuda`, `cuda:N` | CubeCL on CUDA device N                | only with the `cuda` cargo feature  |
//!
//! A CubeCL device is acquired once per process, on first use here, with a typed
//! error when it cannot be (instead of a panic inside the runtime's thread).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use burn::prelude::*;

use crate::error::{FloeError, Result};
use crate::flow::Flow;

/// The CPU device (Burn's ndarray backend): the default for every command.
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::ndarray()
}

/// Run `f` with `device`'s random generator seeded by `seed`, one caller at a
/// time.
///
/// Burn draws initial weights and `random_like` from one generator per
/// backend, shared by every thread of the process, so two trainings (or tests)
/// that seed and draw at once interleave their draws and neither gets what its
/// seed promised. floe draws from it only inside `seeded`, and draws training
/// noise from its own seeded generators on the host: a seed gives the same
/// model whatever else the process is doing.
///
/// Burn initializes a layer's weights lazily, on their first use, so a closure
/// that builds a module must [`materialize`] it before returning: otherwise
/// the draws happen after the lock is released, and another thread's seed can
/// come between them.
pub fn seeded<T>(device: &Device, seed: u64, f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    f()
}

/// Draw every lazily initialized parameter of `module` now (inside
/// [`seeded`]). Parameters are visited in declaration order, which for floe's
/// modules is the order their forward pass first uses them, so a seed draws the
/// same weights as when they were drawn on first use.
pub fn materialize<M: burn::module::Module>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

/// The device a flow's parameters live on.
pub fn of(flow: &Flow) -> Device {
    flow.devices().into_iter().next().unwrap_or_else(cpu)
}

/// A device by name, as `--device` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceName {
    /// Burn's ndarray backend.
    #[default]
    Cpu,
    /// CubeCL on wgpu, the adapter wgpu prefers (any graphics API).
    Wgpu,
    /// CubeCL on Vulkan, the adapter Vulkan prefers.
    Vulkan,
    /// CubeCL on Vulkan, a CPU adapter (Mesa lavapipe).
    VulkanCpu,
    /// CubeCL on wgpu (graphics API left to wgpu), a CPU adapter: on Linux the
    /// same lavapipe as [`DeviceName::VulkanCpu`], but a second device.
    WgpuCpu,
    /// CubeCL on CUDA, device N.
    Cuda(usize),
}

impl DeviceName {
    /// Every spelling `--device` accepts, for help texts.
    pub const HELP: &'static str = "cpu | wgpu | vulkan | vulkan-cpu | wgpu-cpu | cuda[:N]";

    /// Whether this is a CubeCL (GPU-path) device.
    pub fn is_cube(self) -> bool {
        self != DeviceName::Cpu
    }

    /// Open the device: acquire the adapter once per process, or say why not.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceName::Cpu => Ok(cpu()),
            DeviceName::Wgpu => acquire(self, || {
                Device::wgpu_options().device_kind(DeviceKind::DefaultDevice).init().map_err(|e| e.to_string())
            }),
            DeviceName::Vulkan => acquire(self, || {
                Device::wgpu_options()
                    .device_kind(DeviceKind::DefaultDevice)
                    .graphics_api(burn::tensor::wgpu::WgpuBackend::Vulkan)
                    .init()
                    .map_err(|e| e.to_string())
            }),
            DeviceName::VulkanCpu => acquire(self, || {
                Device::wgpu_options()
                    .device_kind(DeviceKind::Cpu)
                    .graphics_api(burn::tensor::wgpu::WgpuBackend::Vulkan)
                    .init()
                    .map_err(|e| format!("{e} (a software Vulkan driver such as Mesa lavapipe, Debian package mesa-vulkan-drivers, provides one)"))
            }),
            DeviceName::WgpuCpu => {
                acquire(self, || Device::wgpu_options().device_kind(DeviceKind::Cpu).init().map_err(|e| e.to_string()))
            }
            DeviceName::Cuda(i) => cuda(self, i),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda(name: DeviceName, index: usize) -> Result<Device> {
    acquire(name, || {
        // Enumeration checks for the driver library first, so it answers instead of
        // panicking on a machine without one.
        let n = Device::enumerate(burn::tensor::DeviceType::Cuda).len();
        if index < n {
            Ok(Device::cuda(index))
        } else {
            Err(format!("{n} CUDA devices found (is the NVIDIA driver installed?)"))
        }
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda(name: DeviceName, _index: usize) -> Result<Device> {
    Err(FloeError::Device {
        name: name.to_string(),
        message:
            "this floe was built without CUDA: rebuild with `--features cuda` (its build downloads LLVM for nvptx)"
                .into(),
    })
}

/// Acquire a CubeCL device once per process: Burn's runtime can be initialized
/// only once per adapter selector, and a failed attempt is remembered too.
fn acquire(name: DeviceName, init: impl FnOnce() -> std::result::Result<Device, String>) -> Result<Device> {
    static OPENED: OnceLock<Mutex<HashMap<DeviceName, std::result::Result<Device, String>>>> = OnceLock::new();
    let mut map = OPENED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let got = map.entry(name).or_insert_with(init).clone();
    got.map_err(|message| FloeError::Device { name: name.to_string(), message })
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Cpu => f.write_str("cpu"),
            DeviceName::Wgpu => f.write_str("wgpu"),
            DeviceName::Vulkan => f.write_str("vulkan"),
            DeviceName::VulkanCpu => f.write_str("vulkan-cpu"),
            DeviceName::WgpuCpu => f.write_str("wgpu-cpu"),
            DeviceName::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "cpu" => DeviceName::Cpu,
            "wgpu" => DeviceName::Wgpu,
            "vulkan" => DeviceName::Vulkan,
            "vulkan-cpu" => DeviceName::VulkanCpu,
            "wgpu-cpu" => DeviceName::WgpuCpu,
            "cuda" => DeviceName::Cuda(0),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => DeviceName::Cuda(i),
                _ => return Err(format!("unknown device `{s}`: expected {}", DeviceName::HELP)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for d in [
            DeviceName::Cpu,
            DeviceName::Wgpu,
            DeviceName::Vulkan,
            DeviceName::VulkanCpu,
            DeviceName::WgpuCpu,
            DeviceName::Cuda(3),
        ] {
            assert_eq!(d.to_string().parse::<DeviceName>(), Ok(d));
        }
        assert_eq!("cuda".parse::<DeviceName>(), Ok(DeviceName::Cuda(0)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            assert!(bad.parse::<DeviceName>().is_err(), "{bad}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_typed_error() {
        let e = DeviceName::Cuda(0).open().unwrap_err();
        assert!(matches!(e, FloeError::Device { .. }), "{e}");
        assert!(e.to_string().contains("--features cuda"), "{e}");
    }
}
