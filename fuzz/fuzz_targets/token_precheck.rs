//! `Authorization` header values, one per line, through `bearer_token`, `precheck` and
//! `decode_header`.
//! The invariants are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth0_idp_proxy_fuzz::token_precheck(data));
