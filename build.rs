//! Build-time work that would otherwise be every cold start's:
//!
//! - Mozilla's roots (`webpki-root-certs`) as the two forms the binary trusts them in, written to
//!   `OUT_DIR`: a PEM bundle for the AWS SDK's trust store (`src/aws.rs`), and the roots reduced
//!   to rustls trust anchors, as Rust source, for the shared HTTP client (`src/upstream/mod.rs`).
//!   One set of roots, neither encoded nor parsed at run time.
//! - The provider catalogue (`src/idp/catalogue.json`, 76 KB) split into its entries, each
//!   strategy with its entry's JSON text, as Rust source: a cold start no longer scans the whole
//!   document to find them (0.1 ms and some twenty page faults of every init), and each entry is
//!   still parsed only when first needed (`src/idp/catalogue.rs`).
//! - `bootstrap` linked as a position-dependent executable (`-no-pie`): the dynamic loader then
//!   applies none of the 21 000 relative relocations a PIE of this size carries (half a megabyte
//!   of them to read, 300 KB of pointers to write), and a cold start takes about 90 page faults
//!   fewer. Shared libraries, the heap and the stack are still placed at random; the
//!   executable's own code and data are not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={CATALOGUE}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=bootstrap=-no-pie");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    split_catalogue(&out);
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;

    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::with_capacity(300 * 1024);
    for der in roots {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&engine.encode(der.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    std::fs::write(out.join("roots.pem"), pem).expect("writing roots.pem");

    let mut anchors = String::from("&[\n");
    for der in roots {
        let anchor = webpki::anchor_from_trusted_cert(der)
            .unwrap_or_else(|e| panic!("a webpki-root-certs root is not a trust anchor: {e:?}"));
        let constraints = match &anchor.name_constraints {
            Some(der) => format!("Some(Der::from_slice(&{:?}))", der.as_ref()),
            None => "None".to_owned(),
        };
        writeln!(
            anchors,
            "TrustAnchor {{ subject: Der::from_slice(&{:?}), subject_public_key_info: \
             Der::from_slice(&{:?}), name_constraints: {constraints} }},",
            anchor.subject.as_ref(),
            anchor.subject_public_key_info.as_ref(),
        )
        .expect("writing to a String");
    }
    anchors.push(']');
    std::fs::write(out.join("trust_anchors.rs"), anchors).expect("writing trust_anchors.rs");
}

/// The provider catalogue, from the package's root.
const CATALOGUE: &str = "src/idp/catalogue.json";

/// Writes `catalogue_entries.rs`: the catalogue's entries as `(strategy, JSON text)` pairs,
/// sorted by strategy (`Debug` of a `str` is a Rust string literal).
fn split_catalogue(out: &Path) {
    let text = std::fs::read_to_string(CATALOGUE).expect("reading the catalogue");
    let entries: BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(&text).expect("the catalogue is a JSON object of entries");
    let mut split = String::from("&[\n");
    for (strategy, entry) in &entries {
        writeln!(split, "({strategy:?}, {:?}),", entry.get()).expect("writing to a String");
    }
    split.push(']');
    std::fs::write(out.join("catalogue_entries.rs"), split).expect("writing catalogue_entries.rs");
}
