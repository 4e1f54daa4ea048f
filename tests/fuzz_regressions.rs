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

/// Each `dpop_proof` seed gets the verdict its name says, so that the fuzzer starts from every
/// kind of proof the check tells apart: the valid one (which the checks then hold to every other
/// request, token, key and time), one refused for each header defect, for its signature, and for
/// a claim signed as it should be.
#[test]
fn every_dpop_seed_gets_the_verdict_its_name_says() {
    use auth0_idp_proxy::auth::dpop::{self, ProofError};
    let verdicts: &[(&str, Result<(), ProofError>)] = &[
        ("alg-none", Err(ProofError::Algorithm)),
        ("an-hour-old", Err(ProofError::IssuedAt)),
        ("another-key-bound-elsewhere", Err(ProofError::Thumbprint)),
        ("es256-valid", Ok(())),
        ("es256-valid-with-authorization", Ok(())),
        ("garbage", Err(ProofError::Malformed)),
        ("garbage-bytes", Err(ProofError::Malformed)),
        ("hs256", Err(ProofError::Algorithm)),
        ("post-for-get", Err(ProofError::Method)),
        ("private-jwk", Err(ProofError::Key)),
        ("signed-by-another-key", Err(ProofError::Signature)),
        ("typ-jwt", Err(ProofError::Type)),
    ];
    let seeds: Vec<String> = inputs("seeds", "dpop_proof")
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let named: Vec<&str> = verdicts.iter().map(|(seed, _)| *seed).collect();
    assert_eq!(seeds, named, "a verdict for every seed");
    for (seed, verdict) in verdicts {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds/dpop_proof")
            .join(seed);
        let data = fs::read(&path).expect("a readable seed");
        let (proof, authorization) = match data.iter().position(|b| *b == b'\n') {
            Some(at) => (&data[..at], Some(&data[at + 1..])),
            None => (&data[..], None),
        };
        let proof = String::from_utf8_lossy(proof);
        let token = authorization.map_or(checks::DPOP_ACCESS_TOKEN.to_owned(), |line| {
            let line = String::from_utf8_lossy(line);
            line.strip_prefix("DPoP ")
                .expect("a DPoP Authorization line")
                .to_owned()
        });
        let got = dpop::verify(&proof, &checks::dpop_expected(&token), checks::DPOP_NOW);
        assert_eq!(got.map(|_| ()), *verdict, "{seed}");
    }
}
