//! A `DPoP` header value, then optionally an `Authorization` value on a second line, through
//! `presented_token` and `dpop::verify` for a fixed request, token, key and clock.
//! The invariants are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth0_idp_proxy_fuzz::dpop_proof(data));
