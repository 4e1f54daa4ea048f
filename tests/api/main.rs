//! Integration tests: the handler driven with the sample events in `events/`, against loopback
//! stand-ins only (a stand-in Auth0 tenant and IdPs, moto for Secrets Manager).

mod auth;
mod binary;
mod faults;
mod helpers;
mod management;
mod proxy;
mod routing;
mod speaks_http;
mod tokens;
