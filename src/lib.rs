//! The native addon of `titan-lifecycle`: the napi-rs binding over `titan-lifecycle-core`. It converts
//! values and errors and holds no logic of its own; see `binding.rs`.

#![deny(clippy::all)]
// In a test build napi-derive registers nothing, so the exported functions would look unused.
#![cfg_attr(test, allow(dead_code))]

mod binding;
