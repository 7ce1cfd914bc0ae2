//! impostor: a milter that detects brand impersonation.
//!
//! The daemon is a thin shell ([`milter`]) around pure analysis
//! ([`analysis::analyze`]); the `check` and `scan` CLIs call the same function.

pub mod accept;
pub mod action;
pub mod analysis;
pub mod auth;
pub mod banner;
pub mod brand;
pub mod cli;
pub mod compare;
pub mod config;
pub mod domain;
pub mod fold;
pub mod intel;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod milter;
pub mod privdrop;
pub mod quarantine;
pub mod review;
pub mod rule;
pub mod verdict;

pub use milter::{run, MilterListener, Shared};
