//! Helpers shared by the integration tests of skiff-templates.
//!
//! Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod cloud_config;
pub mod examples;
pub mod moto;
pub mod sandbox;
pub mod tools;
