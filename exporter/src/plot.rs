//! PNG reports with plotters: the training curve, and 2-D marginals of held-out
//! data next to samples drawn by the runtime.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{FloeError, Result};
use crate::train::History;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

/// Register the bundled font as "sans-serif" (idempotent).
pub fn register_font() {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
}

fn err(path: &Path, e: impl std::fmt::Display) -> FloeError {
    FloeError::io(path, std::io::Error::other(e.to_string()))
}

fn range(v: impl Iterator<Item = f32> + Clone) -> (f32, f32) {
    let mut s: Vec<f32> = v.filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (-1.0, 1.0);
    }
    s.sort_by(f32::total_cmp);
    let lo = s[(s.len() as f32 * 0.005) as usize];
    let hi = s[((s.len() as f32 * 0.995) as usize).min(s.len() - 1)];
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// Write a PNG: training curve plus up to three 2-D marginals (data in blue,
/// model samples in red). `data` and `samples` are row-major with `d` columns.
pub fn report(path: &Path, hist: &History, data: &[f32], samples: &[f32], d: usize, names: &[String]) -> Result<()> {
    register_font();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FloeError::io(parent, e))?;
    }
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((2, 2));

    // Training curve.
    let n = hist.train_nll.len().max(1);
    let all = hist.train_nll.iter().chain(&hist.val_nll).map(|&v| v as f32);
    let (lo, hi) = range(all);
    let mut chart = ChartBuilder::on(&areas[0])
        .caption("NLL (nats/dim) per epoch", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f32..n as f32, lo..hi)
        .map_err(|e| err(path, e))?;
    chart.configure_mesh().x_desc("epoch").draw().map_err(|e| err(path, e))?;
    for (series, color, label) in [(&hist.train_nll, BLUE, "train"), (&hist.val_nll, RED, "validation")] {
        chart
            .draw_series(LineSeries::new(series.iter().enumerate().map(|(i, &v)| (i as f32 + 1.0, v as f32)), color))
            .map_err(|e| err(path, e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(path, e))?;

    // Marginals.
    let pairs: Vec<(usize, usize)> = (0..3).map(|k| (2 * k, 2 * k + 1)).filter(|&(_, b)| b < d).collect();
    let pairs = if pairs.is_empty() { vec![(0, 0)] } else { pairs };
    for (area, &(a, b)) in areas[1..].iter().zip(&pairs) {
        let col = |v: &[f32], j: usize| v.chunks(d).map(move |r| r[j]).collect::<Vec<f32>>();
        let (dx, dy, sx, sy) = (col(data, a), col(data, b), col(samples, a), col(samples, b));
        let xr = range(dx.iter().chain(&sx).copied());
        let yr = range(dy.iter().chain(&sy).copied());
        let name = |j: usize| names.get(j).cloned().unwrap_or_else(|| format!("x{j}"));
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} vs {}: data (blue), floe samples (red)", name(a), name(b)), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(|e| err(path, e))?;
        chart.configure_mesh().draw().map_err(|e| err(path, e))?;
        let inside = |x: f32, y: f32| x >= xr.0 && x <= xr.1 && y >= yr.0 && y <= yr.1;
        chart
            .draw_series(
                dx.iter()
                    .zip(&dy)
                    .filter(|(x, y)| inside(**x, **y))
                    .map(|(&x, &y)| Circle::new((x, y), 2, BLUE.mix(0.35).filled())),
            )
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(
                sx.iter()
                    .zip(&sy)
                    .filter(|(x, y)| inside(**x, **y))
                    .map(|(&x, &y)| Circle::new((x, y), 2, RED.mix(0.35).filled())),
            )
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
