//! A differential tester: the same sessions run straight against PostgreSQL
//! and through the proxy, step by step, and every answer is compared.
//!
//! Two identical databases live in one cluster (`universe`); each logical
//! session is a pair of raw connections with the same login, one per database
//! (`runner`). An action (`action`) is what a driver would send; a seeded
//! generator (`generate`, `rng`) draws a program of them; `compare` turns
//! answers into lines with only legitimate differences normalised away.

pub mod action;
pub mod compare;
pub mod generate;
pub mod rng;
pub mod runner;
pub mod universe;
