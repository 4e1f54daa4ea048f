//! Integration tests: the handler driven with the sample events in `events/`, against loopback
//! stand-ins only.

mod auth;
mod helpers;
mod routing;
