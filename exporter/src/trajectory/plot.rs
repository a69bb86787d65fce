//! A picture of a real scene: observed history, true future, sampled futures,
//! the other pedestrians, and the step-t position density as a heat map — the
//! runtime's particle mixture of exact conditionals evaluated on a grid, not a
//! density estimated from samples.

use std::path::Path;

use floe_runtime::trajectory::Tracker;
use floe_runtime::Model;
use plotters::prelude::*;

use super::data::{Scene, Window, HORIZON};
use crate::error::{FloeError, Result};

/// Particles of the pictured tracker.
pub const PLOT_PARTICLES: usize = 256;
/// Grid cells per side.
pub const GRID: usize = 80;

fn err(path: &Path, e: impl std::fmt::Display) -> FloeError {
    FloeError::io(path, std::io::Error::other(e.to_string()))
}

/// Draw window `w` of `scene` with the density of steps `steps` (1-based), one
/// panel each.
pub fn plot_window(
    path: &Path,
    model: &Model<'_>,
    scene: &Scene,
    w: &Window,
    steps: &[usize],
    seed: u64,
) -> Result<()> {
    crate::plot::register_font();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FloeError::io(parent, e))?;
    }
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut t = Box::new(Tracker::<PLOT_PARTICLES, HORIZON>::new(*model, seed)?);
    t.predict(w.history(), &mut scratch)?;
    let root = BitMapBackend::new(path, (560 * steps.len() as u32, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let panels = root.split_evenly((1, steps.len().max(1)));
    let others = scene.others(w.frame, w.track);
    for (area, &step) in panels.iter().zip(steps) {
        // A square window around the truth and the particles of this step.
        let mut pts: Vec<[f32; 2]> = w.points.to_vec();
        pts.extend((0..PLOT_PARTICLES).filter_map(|i| t.position(i, step)));
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in &pts {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let side = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(2.0) * 1.15;
        let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        let origin = [centre[0] - side / 2.0, centre[1] - side / 2.0];
        let cell = side / GRID as f32;
        let mut grid = vec![0.0f32; GRID * GRID];
        let first = [origin[0] + cell / 2.0, origin[1] + cell / 2.0];
        t.log_density_grid(step, first, cell, GRID, GRID, &mut grid, &mut scratch)?;
        let top = grid.iter().copied().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} t+{:.1} s (step {step})", scene.name, 0.4 * step as f32), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(origin[0]..origin[0] + side, origin[1]..origin[1] + side)
            .map_err(|e| err(path, e))?;
        chart.configure_mesh().x_desc("x (m)").y_desc("y (m)").draw().map_err(|e| err(path, e))?;
        // Heat map: log density over its top 8 nats.
        chart
            .draw_series(grid.iter().enumerate().map(|(k, &v)| {
                let (i, j) = ((k % GRID) as f32, (k / GRID) as f32);
                let a = if v.is_finite() { ((v - (top - 8.0)) / 8.0).clamp(0.0, 1.0) } else { 0.0 };
                let c = RGBColor(255, (255.0 * (1.0 - 0.85 * a)) as u8, (255.0 * (1.0 - a)) as u8);
                let p0 = (origin[0] + i * cell, origin[1] + j * cell);
                Rectangle::new([p0, (p0.0 + cell, p0.1 + cell)], c.filled())
            }))
            .map_err(|e| err(path, e))?;
        // Sampled futures (grey), neighbours (black), history (blue), truth (green).
        for i in 0..PLOT_PARTICLES.min(32) {
            let path_i: Vec<(f32, f32)> = (1..=step).filter_map(|s| t.position(i, s)).map(|p| (p[0], p[1])).collect();
            chart
                .draw_series(LineSeries::new(path_i, RGBColor(120, 120, 120).stroke_width(1)))
                .map_err(|e| err(path, e))?;
        }
        chart
            .draw_series(others.iter().map(|p| Circle::new((p[0], p[1]), 4, BLACK.filled())))
            .map_err(|e| err(path, e))?
            .label("others now")
            .legend(|(x, y)| Circle::new((x, y), 4, BLACK.filled()));
        let hist: Vec<(f32, f32)> = w.history().iter().map(|p| (p[0], p[1])).collect();
        chart
            .draw_series(LineSeries::new(hist.clone(), BLUE.stroke_width(3)))
            .map_err(|e| err(path, e))?
            .label("observed 3.2 s")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE.stroke_width(3)));
        let truth: Vec<(f32, f32)> =
            std::iter::once(hist[hist.len() - 1]).chain(w.future()[..step].iter().map(|p| (p[0], p[1]))).collect();
        chart
            .draw_series(LineSeries::new(truth, GREEN.stroke_width(3)))
            .map_err(|e| err(path, e))?
            .label("true future")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], GREEN.stroke_width(3)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
