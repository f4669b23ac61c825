//! The source tree's layering (ARCHITECTURE.md, "Layers"): a top-level part
//! of `src/` (a folder, or a file directly in it) may use only its own level
//! and the levels below it, so there is no import cycle between the parts.
//! Every `crate::` path counts, in `use` lines and inline, tests included.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

/// From the bottom up; the leaves first. A part missing here fails the test,
/// so a new folder gets a place in the order when it is added.
const LAYERS: &[&[&str]] = &[
    &["error", "keys", "phone", "names"],
    &["config"],
    &["store"],
    &["http"],
    &["otp"],
    &["delivery"],
    &["events"],
    &["pumping"],
    &["text"],
    &["state"],
    &["sending"],
    &["gate"],
    &["web"],
    &["admin"],
    &["server"],
    &["cli"],
];

fn level(part: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&part))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level parts a file names through `crate::`, brace groups too
/// (`use crate::{http::cookies, gate::factor};`).
fn parts_used(text: &str) -> BTreeSet<String> {
    let path = Regex::new(r"crate::([a-z_]+)").unwrap();
    let group = Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let item = Regex::new(r"(?:^|[\s,{])([a-z_]+)(?:::|\s*,|\s*$)").unwrap();
    let mut used: BTreeSet<String> = path.captures_iter(text).map(|c| c[1].to_string()).collect();
    for g in group.captures_iter(text) {
        used.extend(item.captures_iter(&g[1]).map(|c| c[1].to_string()));
    }
    used
}

/// Every use of a higher part, as "file uses part".
fn upward_uses(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let part = top.trim_end_matches(".rs");
        if part == "lib" || part == "main" {
            continue;
        }
        let own = level(part).unwrap_or_else(|| {
            panic!("src/{top} has no place in LAYERS (tests/layers.rs, ARCHITECTURE.md)")
        });
        for used in parts_used(&fs::read_to_string(&file).unwrap()) {
            if level(&used).is_some_and(|l| l > own) {
                found.push(format!("{} uses crate::{used}", file.display()));
            }
        }
    }
    found
}

#[test]
fn no_part_of_src_uses_a_part_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = upward_uses(&src);
    assert!(
        found.is_empty(),
        "uses against the layering:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_use_inside_a_brace_group_and_an_inline_path() {
    let used =
        parts_used("use crate::{http::cookies, gate::factor};\nfn f() { crate::web::pages::x(); }");
    for part in ["http", "gate", "web"] {
        assert!(used.contains(part), "{part} in {used:?}");
    }
}
