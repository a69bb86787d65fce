//! The runtime's module graph flows one way (docs/ARCHITECTURE.md): no module
//! imports a module to its right in
//! `format → kernels → transforms → base → model → anomaly → trajectory → work →
//! exporter_hooks`;
//! `error`, `fmt` and `rng` are leaves every module may use.

use std::path::{Path, PathBuf};

const ORDER: [&str; 9] =
    ["format", "kernels", "transforms", "base", "model", "anomaly", "trajectory", "work", "exporter_hooks"];
const LEAVES: [&str; 3] = ["error", "fmt", "rng"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("runtime/src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of runtime/src belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The module an item re-exported at the crate root comes from.
fn home(name: &str) -> &str {
    match name {
        "Model" | "LayerInfo" => "model",
        "Score" | "Stream" => "anomaly",
        "Error" | "Result" => "error",
        "Rng" => "rng",
        other => other,
    }
}

fn ident(s: &str) -> String {
    s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The top-level modules a file's code (comments left out) names in `crate::…`
/// paths, grouped ones (`use crate::{a::X, b};`) included.
fn imports(text: &str) -> Vec<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<String> = match rest.strip_prefix('{') {
            // Top-level names of the group: what follows `{` or a `,` at depth 0.
            Some(group) => {
                let (mut depth, mut start, mut names) = (0usize, 0usize, Vec::new());
                for (k, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            names.push(ident(&group[start..k]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(ident(&group[start..k]));
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
                names
            }
            None => vec![ident(rest)],
        };
        out.extend(names.into_iter().filter(|n| !n.is_empty()).map(|n| home(&n).to_owned()));
    }
    out
}

#[test]
fn runtime_modules_import_only_leftwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut checked = 0;
    for f in &files {
        let me = module_of(&src, f);
        let Some(my_rank) = rank(&me) else { continue };
        // Tests may use anything: a test-only file, or a file's `#[cfg(test)]` module.
        if f.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs")) {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        for m in imports(code) {
            if LEAVES.contains(&m.as_str()) || m == me {
                continue;
            }
            let r = rank(&m)
                .unwrap_or_else(|| panic!("{}: imports crate::{m}, a module the order does not know", f.display()));
            assert!(r < my_rank, "{}: {me} imports crate::{m}, which comes after it", f.display());
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} imports found: is the scan reading the runtime?");
}

#[test]
fn the_scan_sees_an_import_against_the_order() {
    assert_eq!(imports("use crate::model::Model;\nuse crate::format::{View};"), ["model", "format"]);
    assert_eq!(imports("/// [`crate::Model`]\nlet s = crate::Stream::<4>::new(m);"), ["anomaly"]);
    assert_eq!(imports("use crate::{\n    model::{Model, X},\n    format::View,\n};"), ["model", "format"]);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    assert!(rank("model") > rank("transforms"));
}
