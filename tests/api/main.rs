//! Integration tests: the handler driven with the sample events in `events/`, against loopback
//! stand-ins only (a stand-in Auth0 tenant and IdPs, moto for Secrets Manager and DynamoDB).

mod audit;
mod auth;
mod binary;
mod binary_gates;
mod catalogue;
mod consent;
mod dialects;
mod downloads;
mod dpop;
mod faults;
mod fleet;
mod freeze;
mod head;
mod helpers;
mod hosts;
mod kill_switch;
mod management;
mod metrics;
mod permissions;
mod proxy;
mod refresh_rules;
mod routing;
mod sdk_config;
mod second_sight;
mod speaks_http;
mod spelling;
mod streaming;
mod streaming_attack;
mod tokens;
mod vault;
