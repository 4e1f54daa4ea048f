//! Build-time work that would otherwise be every cold start's:
//!
//! - Mozilla's roots (`webpki-root-certs`) as the two forms the binary trusts them in, written to
//!   `OUT_DIR`: a PEM bundle for the AWS SDK's trust store (`src/aws.rs`), and the roots reduced
//!   to rustls trust anchors, as Rust source, for the shared HTTP client (`src/upstream/mod.rs`).
//!   One set of roots, neither encoded nor parsed at run time.
//! - The provider catalogue (`src/idp/catalogue.json`) checked against its JSON Schema
//!   (`catalogue.schema.json`) and the rules between its fields, then split into its entries,
//!   each strategy with the JSON text of what the function reads at run time, as Rust source:
//!   a bad entry fails the build, the setup prose stays out of the binary, a cold start scans
//!   no document to find an entry, and each entry is parsed only when first needed
//!   (`src/idp/catalogue.rs`).
//! - `bootstrap` linked as a position-dependent executable (`-no-pie`): the dynamic loader then
//!   applies none of the 21 000 relative relocations a PIE of this size carries (half a megabyte
//!   of them to read, 300 KB of pointers to write), and a cold start takes about 90 page faults
//!   fewer. Shared libraries, the heap and the stack are still placed at random; the
//!   executable's own code and data are not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

#[path = "build/catalogue.rs"]
mod catalogue;

/// The function's allow-rule parser, so that the build refuses a rule the function would.
#[path = "src/idp/allow.rs"]
#[allow(dead_code)]
mod allow;

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

/// The provider catalogue and its schema, from the package's root.
const CATALOGUE: &str = "src/idp/catalogue.json";
const SCHEMA: &str = "src/idp/catalogue.schema.json";

/// Checks the catalogue against its schema and the rules a schema cannot say
/// (`build/catalogue.rs`), then writes `catalogue_entries.rs`: each entry's run-time members as
/// `(strategy, JSON text)` pairs, sorted by strategy (`Debug` of a `str` is a Rust string
/// literal). A bad entry fails the build, naming the entry and the field.
fn split_catalogue(out: &Path) {
    let read = |path: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    };
    println!("cargo:rerun-if-changed={SCHEMA}");
    println!("cargo:rerun-if-changed=build/catalogue.rs");
    println!("cargo:rerun-if-changed=src/idp/allow.rs");
    let catalogue = read(CATALOGUE);
    let rule = |text: &str| allow::AllowRule::parse(text).map(drop);
    let faults = catalogue::faults(&catalogue, &read(SCHEMA), &rule);
    if !faults.is_empty() {
        panic!("{CATALOGUE} is not valid:\n  {}", faults.join("\n  "));
    }
    let mut split = String::from("&[\n");
    for (strategy, entry) in catalogue::entries(&catalogue) {
        let text =
            serde_json::to_string(&catalogue::run_time(entry)).expect("JSON values serialise");
        writeln!(split, "({strategy:?}, {text:?}),").expect("writing to a String");
    }
    split.push(']');
    std::fs::write(out.join("catalogue_entries.rs"), split).expect("writing catalogue_entries.rs");
}
