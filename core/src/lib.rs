//! The core of `titan-lifecycle`: everything that must keep working while the JavaScript thread is stuck,
//! with no napi type in it, so `cargo test` covers it. The napi-rs binding (the workspace's root crate) is
//! a thin layer over this. See ARCHITECTURE.md for the design and the measurements behind it.
//!
//! - [`plan`] and [`coordinator`]: the task graph, the order a shutdown runs it in, and the authoritative
//!   record of which task is running since when. Pure logic.
//! - [`clock`]: monotonic time and deadline arithmetic.
//! - [`handler`]: the signal handler and what it records; everything in it is async-signal-safe. [`errno`]
//!   and [`exit_write`] (bounded writes to stderr on exit paths) are safe there too.
//! - [`signals`] and [`uv`]: ownership of SIGTERM/SIGINT/SIGHUP (and SIGQUIT/SIGUSR2 on request) through the
//!   handler on top of a pinned libuv handler; [`main_loop`]: what libuv calls on the main thread (a signal
//!   reaching the loop, the per-turn check).
//! - [`watchdog`] and [`session`]: the thread that begins signal-triggered shutdowns and enforces deadlines
//!   with `_exit`, and what it shares with each manager; [`guard`]: when the watchdog checks the slots.
//! - [`report`]: the report printed at a hard exit; [`js_stack`] (through [`v8`]) and [`main_thread`]: where
//!   a blocked event loop is stuck, for that report and for stall events.
//! - [`manager`]: one manager's native half, what the binding calls: begin, settle, finish, own and give back
//!   the signals.
//! - [`children`]: the child processes and groups every exit path kills before `_exit`.
//! - [`systemd`]: READY, STOPPING, EXTEND_TIMEOUT and WATCHDOG datagrams to systemd, when it listens.
//! - [`error`]: the errors, each with the code JavaScript sees.

#![deny(clippy::all)]

#[cfg(not(unix))]
compile_error!("titan-lifecycle supports Unix-like systems only (signals are received natively)");

pub mod children;
pub mod clock;
pub mod coordinator;
pub mod errno;
pub mod error;
pub mod exit_write;
pub mod guard;
pub mod handler;
pub mod js_stack;
pub mod main_loop;
pub mod main_thread;
pub mod manager;
pub mod plan;
pub mod report;
pub mod session;
pub mod signals;
pub mod systemd;
pub mod text;
pub mod uv;
pub mod v8;
pub mod watchdog;
