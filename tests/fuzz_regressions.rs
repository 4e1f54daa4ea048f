//! The fuzz targets' invariants on stable, in every `cargo test`: each seed in `fuzz/seeds/` and
//! each crash kept in `fuzz/regressions/` goes through the same checks as under `cargo fuzz`
//! (`fuzz/src/lib.rs`, included here as a module).

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The files of `fuzz/{kind}/{target}/`, sorted; none when the folder does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("a readable folder entry").path())
            .filter(|path| path.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The names of the entries of `fuzz/{folder}`, without `extension`, sorted.
fn names(folder: &str, extension: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("a fuzz folder")
        .map(|entry| entry.expect("a readable folder entry").file_name())
        .filter_map(|name| name.to_str()?.strip_suffix(extension).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Runs every input of `kind` through its target's checks and names every one that fails.
fn replay(kind: &str) -> usize {
    let mut failed = Vec::new();
    let mut count = 0;
    for (target, check) in checks::TARGETS {
        for file in inputs(kind, target) {
            let data = fs::read(&file).expect("a readable input");
            count += 1;
            if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "invariants broken by {failed:#?}");
    count
}

#[test]
fn every_fuzz_target_has_checks_seeds_and_a_dictionary() {
    let mut targets: Vec<String> = checks::TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    targets.sort();
    assert_eq!(names("fuzz_targets", ".rs"), targets);
    assert_eq!(names("seeds", ""), targets);
    assert_eq!(names("dicts", ".dict"), targets);
    for kept in names("regressions", "") {
        assert!(
            targets.contains(&kept),
            "fuzz/regressions/{kept} is no target"
        );
    }
}

#[test]
fn every_seed_input_keeps_the_invariants() {
    for (target, _) in checks::TARGETS {
        assert!(
            !inputs("seeds", target).is_empty(),
            "fuzz/seeds/{target} has no seed"
        );
    }
    assert!(replay("seeds") >= checks::TARGETS.len());
}

#[test]
fn every_crash_the_fuzzers_found_stays_fixed() {
    replay("regressions");
}
