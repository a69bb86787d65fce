//! ETH/UCY pedestrian tracks: the reader (`frame  ped_id  x  y`, 2.5 Hz), windows
//! of `observed + horizon` consecutive positions, leave-one-scene-out splits and
//! the mirror augmentation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use floe_runtime::trajectory::{features, Frame, Point};

use crate::error::{FloeError, Result};

/// The four scenes of the usual protocol, by the names the CLI takes, and their
/// files under `data/eth_ucy/`.
pub const SCENES: [(&str, &str); 4] = [
    ("eth", "biwi_eth.txt"),
    ("hotel", "biwi_hotel.txt"),
    ("zara1", "crowds_zara01.txt"),
    ("zara2", "crowds_zara02.txt"),
];

/// FlowChain's published best-of-20 ADE/FDE (ICCV 2023), metres, per scene.
pub const FLOWCHAIN: [(&str, f64, f64); 4] =
    [("eth", 0.55, 0.99), ("hotel", 0.20, 0.35), ("zara1", 0.22, 0.40), ("zara2", 0.20, 0.34)];

/// Frames between two consecutive observations (0.4 s).
pub const FRAME_STEP: f64 = 10.0;
/// Observed positions (3.2 s).
pub const OBSERVED: usize = 8;
/// Predicted steps (4.8 s).
pub const HORIZON: usize = 12;

/// One pedestrian's positions at consecutive frames (a gap splits a track).
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Pedestrian id in the file.
    pub id: i64,
    /// Frame number of the first position.
    pub first_frame: i64,
    /// Positions, metres, one per [`FRAME_STEP`].
    pub points: Vec<Point>,
}

/// A scene: its tracks, in the file's order of first appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Scene name.
    pub name: String,
    /// Tracks.
    pub tracks: Vec<Track>,
}

/// `observed + horizon` consecutive positions of one pedestrian, world frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Index of the track in its scene.
    pub track: usize,
    /// Frame number of the last observed position.
    pub frame: i64,
    /// Positions, oldest first: `points[..OBSERVED]` observed, the rest the future.
    pub points: [Point; OBSERVED + HORIZON],
}

impl Window {
    /// The observed positions.
    pub fn history(&self) -> &[Point] {
        &self.points[..OBSERVED]
    }
    /// The future positions.
    pub fn future(&self) -> &[Point] {
        &self.points[OBSERVED..]
    }
    /// The window mirrored across the x axis (`y → −y`).
    pub fn mirrored(&self) -> Window {
        let mut w = *self;
        for p in w.points.iter_mut() {
            p[1] = -p[1];
        }
        w
    }
}

/// The path of a scene's file under `dir`.
pub fn scene_path(dir: &Path, scene: &str) -> Result<PathBuf> {
    SCENES.iter().find(|(n, _)| *n == scene).map(|(_, f)| dir.join(f)).ok_or_else(|| {
        crate::error::ConfigError::invalid("--test-scene", "one of eth, hotel, zara1, zara2", scene).into()
    })
}

/// Parse a scene file: whitespace-separated `frame ped_id x y` per line. Every
/// malformed line is an error that names it.
pub fn parse_scene(name: &str, text: &str, path: &Path) -> Result<Scene> {
    let bad =
        |line: usize, msg: String| FloeError::Parse { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    // id -> (first appearance, [(frame, point)])
    let mut by_id: BTreeMap<i64, (usize, Vec<(i64, Point)>)> = BTreeMap::new();
    for (k, line) in text.lines().enumerate() {
        let line_no = k + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 {
            return Err(bad(line_no, format!("{} fields, expected 4 (frame ped_id x y)", f.len())));
        }
        let mut v = [0f64; 4];
        for (o, s) in v.iter_mut().zip(&f) {
            *o = s.parse::<f64>().map_err(|_| bad(line_no, format!("{s:?} is not a number")))?;
            if !o.is_finite() {
                return Err(bad(line_no, format!("{s:?} is not finite")));
            }
        }
        let (frame, id) = (v[0], v[1]);
        if frame.fract() != 0.0 || id.fract() != 0.0 || frame.abs() > 1e12 || id.abs() > 1e12 {
            return Err(bad(line_no, format!("frame {frame} and id {id} must be integers")));
        }
        if v[2].abs() > 1e6 || v[3].abs() > 1e6 {
            return Err(bad(line_no, "a coordinate beyond 1e6 m".into()));
        }
        let order = by_id.len();
        by_id.entry(id as i64).or_insert((order, Vec::new())).1.push((frame as i64, [v[2] as f32, v[3] as f32]));
    }
    let mut ids: Vec<(usize, i64)> = by_id.iter().map(|(&id, (o, _))| (*o, id)).collect();
    ids.sort_unstable();
    let mut tracks = Vec::new();
    let step = FRAME_STEP as i64;
    for (_, id) in ids {
        let mut obs = by_id.remove(&id).map(|(_, v)| v).unwrap_or_default();
        obs.sort_by_key(|&(f, _)| f);
        let mut cur: Option<Track> = None;
        for (frame, p) in obs {
            match cur.as_mut() {
                Some(t) if frame == t.first_frame + step * t.points.len() as i64 => t.points.push(p),
                Some(t) if frame < t.first_frame + step * t.points.len() as i64 => {
                    let msg = if (frame - t.first_frame) % step == 0 {
                        format!("pedestrian {id} appears twice at frame {frame}")
                    } else {
                        format!("pedestrian {id}: frame {frame} is not on the track's grid of {step} frames")
                    };
                    return Err(FloeError::Parse { path: path.to_path_buf(), msg });
                }
                _ => {
                    tracks.extend(cur.take());
                    cur = Some(Track { id, first_frame: frame, points: vec![p] });
                }
            }
        }
        tracks.extend(cur);
    }
    if tracks.is_empty() {
        return Err(FloeError::Parse { path: path.to_path_buf(), msg: "no observations".into() });
    }
    Ok(Scene { name: name.to_string(), tracks })
}

/// Read scene `name` from its file under `dir`.
pub fn read_scene(dir: &Path, name: &str) -> Result<Scene> {
    let path = scene_path(dir, name)?;
    let text = std::fs::read_to_string(&path).map_err(|e| FloeError::io(&path, e))?;
    parse_scene(name, &text, &path)
}

impl Scene {
    /// Every window of `OBSERVED + HORIZON` consecutive positions, stride 1.
    pub fn windows(&self) -> Vec<Window> {
        let len = OBSERVED + HORIZON;
        let mut out = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for s in 0..t.points.len().saturating_sub(len - 1) {
                let mut points = [[0.0f32; 2]; OBSERVED + HORIZON];
                points.copy_from_slice(&t.points[s..s + len]);
                let frame = t.first_frame + (s + OBSERVED - 1) as i64 * FRAME_STEP as i64;
                out.push(Window { track: ti, frame, points });
            }
        }
        out
    }

    /// Positions of the other pedestrians at `frame` (a scene's neighbours).
    pub fn others(&self, frame: i64, except: usize) -> Vec<Point> {
        let step = FRAME_STEP as i64;
        self.tracks
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != except)
            .filter_map(|(_, t)| {
                let k = frame - t.first_frame;
                (k >= 0 && k % step == 0).then(|| t.points.get((k / step) as usize).copied()).flatten()
            })
            .collect()
    }
}

/// A window as the model sees it: the encoder's features and the step
/// displacements, in the window's frame (the runtime's [`Frame`] and
/// [`features`], so host and device agree bit for bit on the inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `2 (OBSERVED − 1)` history displacements, oldest first.
    pub features: Vec<f32>,
    /// `2 HORIZON` future displacements `v_1 .. v_T`.
    pub steps: Vec<f32>,
}

/// The model-frame inputs of a window.
pub fn example(w: &Window, heading: bool) -> Result<Example> {
    let frame = Frame::of(w.history(), heading)?;
    let mut feat = vec![0.0f32; 2 * (OBSERVED - 1)];
    features(w.history(), &frame, &mut feat)?;
    let mut steps = Vec::with_capacity(2 * HORIZON);
    let mut prev = [0.0f32; 2];
    for &p in w.future() {
        let u = frame.to_local(p);
        steps.extend_from_slice(&[u[0] - prev[0], u[1] - prev[1]]);
        prev = u;
    }
    Ok(Example { features: feat, steps })
}

/// Leave-one-scene-out: the windows of the three other scenes (training) and of
/// `test_scene` (test), with their scenes.
#[derive(Debug, Clone)]
pub struct Split {
    /// Training scenes.
    pub train: Vec<Scene>,
    /// The held-out scene.
    pub test: Scene,
}

/// Read the four scenes from `dir` and hold `test_scene` out.
pub fn leave_one_out(dir: &Path, test_scene: &str) -> Result<Split> {
    scene_path(dir, test_scene)?;
    let mut train = Vec::new();
    let mut test = None;
    for (name, _) in SCENES {
        let s = read_scene(dir, name)?;
        if name == test_scene {
            test = Some(s);
        } else {
            train.push(s);
        }
    }
    let test = test.ok_or(FloeError::Internal("the test scene was not read"))?;
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_split_at_gaps_and_windows_slide() {
        let mut text = String::new();
        for f in 0..25 {
            text.push_str(&format!("{} 1.0 {} 0.5\n", f * 10, f as f32 * 0.4));
        }
        // Pedestrian 2 with a gap at frame 40.
        for f in [0, 10, 20, 30, 50] {
            text.push_str(&format!("{f}\t2\t1.0\t{}\n", f as f32 / 10.0));
        }
        let s = parse_scene("t", &text, Path::new("t.txt")).unwrap();
        assert_eq!(s.tracks.len(), 3);
        assert_eq!(s.tracks[0].points.len(), 25);
        assert_eq!((s.tracks[1].points.len(), s.tracks[2].points.len()), (4, 1));
        let w = s.windows();
        assert_eq!(w.len(), 25 - 20 + 1);
        assert_eq!(w[0].frame, 70);
        assert_eq!(s.others(20, 0), vec![[1.0, 2.0]]);
        let e = example(&w[0], true).unwrap();
        // Walking straight along +x at 0.4 m per step: every displacement (0.4, 0).
        assert!(e.steps.chunks(2).all(|v| (v[0] - 0.4).abs() < 1e-5 && v[1].abs() < 1e-5), "{:?}", e.steps);
        let m = example(&w[0].mirrored(), false).unwrap();
        assert!(m.steps.chunks(2).all(|v| (v[0] - 0.4).abs() < 1e-5 && v[1].abs() < 1e-5));
    }

    #[test]
    fn malformed_lines_are_named() {
        for (text, want) in [
            ("0 1 2\n", "line 1: 3 fields"),
            ("0 1 2 3\n10 1 x 3\n", "line 2: \"x\" is not a number"),
            ("0 1 2 nan\n", "not finite"),
            ("0.5 1 2 3\n", "must be integers"),
            ("", "no observations"),
        ] {
            let e = parse_scene("t", text, Path::new("t.txt")).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(scene_path(Path::new("."), "univ").is_err());
    }
}
