//! Links `hello`, the cold-init yardstick, as `bootstrap` is linked (`-no-pie`, see the
//! project's build.rs): the two differ in what they do, not in how they are loaded.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=hello=-no-pie");
    }
}
