//! The end-to-end tests: one binary, a module per area, each test one behaviour against the
//! real service binaries, PostgreSQL, Redis and a Kafka-protocol broker on loopback.

mod common;

mod accountability;

mod case;
mod catalog;
mod chart;
mod complaint;
mod contract;
mod evaluation;
mod events;
mod layering;
mod observability;
mod operator;
mod platform;
mod queue;
mod web;
