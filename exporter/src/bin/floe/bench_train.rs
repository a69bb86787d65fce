//! `floe bench-train`: training throughput on each device, the fused spline vs
//! the Burn-ops one on the GPU path, and the spline op alone.

use floe_exporter::demo;
use floe_exporter::flow::{fused, FlowConfig, TransformKind};
use floe_exporter::train::bench::{spline_elems_per_s, train_rows_per_s};
use floe_exporter::train::DeviceName;
use floe_exporter::Result;

/// `floe bench-train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Devices to compare (the first CubeCL one is also run with the fused
    /// spline off); cpu is the reference of the ratios.
    #[arg(long, default_value = "cpu,vulkan-cpu", value_delimiter = ',', value_parser = clap::value_parser!(DeviceName))]
    devices: Vec<DeviceName>,
    /// Batch sizes.
    #[arg(long, default_value = "256,4096", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Timed steps per figure (after two warm-up steps).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Only the demo flow (skip the wide D = 32, 8 × 256 one).
    #[arg(long)]
    demo_only: bool,
}

pub fn run(a: Args) -> Result<()> {
    let demo_flow = {
        let mut f = demo::experiment(std::path::Path::new("."), 1, 0).flow;
        f.dim = 6;
        f
    };
    let wide = FlowConfig {
        dim: 32,
        transform: TransformKind::SplineCoupling,
        steps: 8,
        hidden: 256,
        blocks: 2,
        bins: 8,
        tail_bound: 4.0,
        ..FlowConfig::default()
    };
    let mut flows = vec![("demo (D 6, 4 × 64)", demo_flow)];
    if !a.demo_only {
        flows.push(("wide (D 32, 8 × 256)", wide));
    }
    let devices: Vec<_> = a.devices.iter().map(|d| d.open().map(|dev| (*d, dev))).collect::<Result<_>>()?;
    println!(
        "training throughput: rows/s of whole Adam steps (forward, backward, update), {} timed steps after 2 warm-up",
        a.reps
    );
    println!();
    println!("| flow | batch | device | spline | rows/s | vs cpu |");
    println!("|---|---|---|---|---|---|");
    for (name, cfg) in &flows {
        for &batch in &a.batches {
            let mut cpu_rate = None;
            for (dn, dev) in &devices {
                let variants: &[bool] = if dn.is_cube() { &[false, true] } else { &[false] };
                for &fuse in variants {
                    fused::set_enabled(fuse);
                    let r = train_rows_per_s(cfg, dev, batch, 2, a.reps)?;
                    if !dn.is_cube() {
                        cpu_rate.get_or_insert(r);
                    }
                    let label = if !dn.is_cube() {
                        "Burn ops"
                    } else if fuse {
                        "fused"
                    } else {
                        "Burn ops"
                    };
                    let vs = cpu_rate.map(|c| format!("{:.2}×", r / c)).unwrap_or_else(|| "–".into());
                    println!("| {name} | {batch} | {dn} | {label} | {r:.0} | {vs} |");
                }
            }
        }
    }
    fused::set_enabled(true);
    println!();
    println!("spline op alone (forward + backward, K = 8): elements/s");
    println!();
    println!("| device | elements | Burn ops | fused | fused / Burn ops |");
    println!("|---|---|---|---|---|");
    for (dn, dev) in devices.iter().filter(|(d, _)| d.is_cube()) {
        for n in [256 * 3, 4096 * 16] {
            let slow = spline_elems_per_s(dev, false, n, 8, 2, a.reps)?;
            let fast = spline_elems_per_s(dev, true, n, 8, 2, a.reps)?;
            println!("| {dn} | {n} | {slow:.3e} | {fast:.3e} | {:.2}× |", fast / slow);
        }
    }
    Ok(())
}
