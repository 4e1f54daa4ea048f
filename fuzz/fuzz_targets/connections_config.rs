//! `IDP_CONNECTIONS` text (and a single allow rule) through `Connections::from_json` and
//! `AllowRule::parse`.
//! The invariants are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth0_idp_proxy_fuzz::connections_config(data));
