//! Devices. Training and evaluation take their device from the caller; this is
//! where the CLI gets one.

use burn::prelude::*;

use crate::flow::Flow;

/// The CPU device (Burn's ndarray backend): the default for every command.
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::ndarray()
}

/// The device a flow's parameters live on.
pub fn of(flow: &Flow) -> Device {
    flow.devices().into_iter().next().unwrap_or_else(cpu)
}
