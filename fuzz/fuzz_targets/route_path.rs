//! `METHOD /path?query` through `route`, `normalise` and `IdpRequest::new`.
//! The invariants are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth0_idp_proxy_fuzz::route_path(data));
