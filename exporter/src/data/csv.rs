//! CSV with a header row.

use std::path::Path;

use super::Table;
use crate::error::{FloeError, Result};

/// Read the columns `want` (by name; all when `None`) of a CSV file.
pub(super) fn read_csv(path: &Path, want: Option<&[String]>) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| FloeError::io(path, e))?;
    let perr =
        |line: usize, msg: String| FloeError::Parse { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| perr(1, "empty file".into()))?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect();
    let pick: Vec<usize> = match want {
        None => (0..names.len()).collect(),
        Some(w) => w
            .iter()
            .map(|c| {
                names
                    .iter()
                    .position(|n| n == c)
                    .ok_or_else(|| perr(1, format!("no column named {c:?} (have {names:?})")))
            })
            .collect::<Result<_>>()?,
    };
    let mut x = Vec::new();
    let mut n = 0;
    for (ln, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() {
            return Err(perr(ln + 1, format!("{} fields, the header has {}", fields.len(), names.len())));
        }
        for &j in &pick {
            let f = fields[j].trim().trim_matches('"');
            let v: f32 =
                f.parse().map_err(|_| perr(ln + 1, format!("column {:?}: {f:?} is not a number", names[j])))?;
            x.push(v);
        }
        n += 1;
    }
    Ok(Table { n, d: pick.len(), x, columns: pick.iter().map(|&j| names[j].clone()).collect(), labels: None })
}

/// Write a row-major matrix as CSV with a header.
pub fn write_csv(path: &Path, x: &[f32], d: usize, columns: &[String]) -> Result<()> {
    let mut s = columns.join(",");
    s.push('\n');
    for row in x.chunks(d) {
        let r: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        s.push_str(&r.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| FloeError::io(path, e))
}
