//! What libuv calls on the main thread, between JavaScript callbacks: the pin's callback when an owned signal
//! reaches the event loop (the shortest way from a signal to JavaScript), and the per-turn check that takes
//! back a signal slot other code on the main thread displaced.
//!
//! The check costs one `sigaction` query per owned signal. A busy server turns its loop tens of thousands of
//! times a second, and checking every turn cost 7% of its requests per second (three system calls a turn),
//! so the check runs at most once per [`CHECK_SPACING`]: a turn that comes sooner starts a one-shot,
//! unref'd timer for the rest of the spacing instead. Either way a displacement is undone within 1 ms, also
//! when the loop goes idle right after it (the timer wakes it), where it used to be undone before the loop
//! waited again.
//!
//! The timer's callback does not check: it marks the turn it wakes, and that turn's hook checks
//! unconditionally and arms nothing. A timer that checked itself made its own turn come "too soon" after
//! a check, which armed the timer again: an idle service woke its loop every millisecond for ever (900
//! wake-ups a second, `idle.test.cjs` now counts them).

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::clock::MonoTime;
use crate::session::NativeEvent;
use crate::{handler, signals, uv, watchdog};

/// The least time between two checks of the slots from the main loop.
pub const CHECK_SPACING: Duration = Duration::from_millis(1);

/// When the main loop last checked the slots (nanoseconds on CLOCK_MONOTONIC; 0: never).
static LAST_CHECK_NS: AtomicU64 = AtomicU64::new(0);

/// The deferred check's timer fired: the next turn's hook checks, whatever the spacing, and arms nothing.
static DEFERRED_CHECK_DUE: AtomicBool = AtomicBool::new(false);

/// A direct way to JavaScript for signals that reach the main loop, set by the binding: it calls the
/// owner's JavaScript at once and returns true, or returns false to fall back to the owner's notifier.
pub type LoopSignalHook = fn(signo: c_int, at: MonoTime) -> bool;

/// The [`LoopSignalHook`] as a function address (0 = none).
static LOOP_SIGNAL_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Sets or clears the [`LoopSignalHook`]. Main thread only, like the pins whose callback uses it.
pub fn set_loop_signal_hook(hook: Option<LoopSignalHook>) {
  LOOP_SIGNAL_HOOK.store(hook.map_or(0, |h| h as usize), Ordering::Release);
}

/// libuv calls this on the main loop for each owned signal, through the pin, at the moment Node's own
/// signal listeners would run.
///
/// # Safety
/// Only libuv calls it, on the main thread, with the pin's handle, which it does not touch.
pub unsafe extern "C" fn signal_reached_loop(_handle: *mut libc::c_void, signo: c_int) {
  handler::delivered_by_loop();
  let Some(owner) = watchdog::owner() else { return };
  let at = signals::first_signal_time().unwrap_or_else(MonoTime::now);
  let hook = LOOP_SIGNAL_HOOK.load(Ordering::Acquire);
  if hook != 0 {
    // SAFETY: the only values stored are `LoopSignalHook` function pointers (see `set_loop_signal_hook`).
    let hook: LoopSignalHook = unsafe { std::mem::transmute::<usize, LoopSignalHook>(hook) };
    if hook(signo, at) {
      return;
    }
  }
  owner.session.notify(NativeEvent::Signal { signo, at, seq: None });
}

/// libuv calls this once per loop turn, before it waits: a displacement made on the main thread (Node's
/// one-shot handler put back when `vm`'s `breakOnSigint` ends, a native addon installing its own) is undone
/// before a signal can find it, at most [`CHECK_SPACING`] later (see the module's comment).
///
/// # Safety
/// Only libuv calls it, on the main thread, with the hook's handle, which it does not touch.
pub unsafe extern "C" fn on_loop_turn(_handle: *mut libc::c_void) {
  let now = MonoTime::now();
  if DEFERRED_CHECK_DUE.swap(false, Ordering::Relaxed) {
    check_slots(now);
    return;
  }
  let since_last = Duration::from_nanos(
    now
      .as_nanos()
      .saturating_sub(LAST_CHECK_NS.load(Ordering::Relaxed)),
  );
  if since_last < CHECK_SPACING {
    if let Ok(uv) = uv::api() {
      let rest_ms = (CHECK_SPACING - since_last).as_millis().max(1) as u64;
      signals::check_later(uv, on_deferred_check, rest_ms);
    }
    return;
  }
  check_slots(now);
}

/// The deferred check's timer: libuv calls it on the main thread, and runs the hook of the loop turn it
/// wakes right after its timers (with only pending and idle callbacks in between), which checks.
///
/// # Safety
/// Only libuv calls it, on the main thread, with the timer's handle, which it does not touch.
unsafe extern "C" fn on_deferred_check(_handle: *mut libc::c_void) {
  signals::deferred_check_ran();
  DEFERRED_CHECK_DUE.store(true, Ordering::Relaxed);
}

/// Takes back displaced slots and tells the owner of what it found. Main thread.
fn check_slots(now: MonoTime) {
  LAST_CHECK_NS.store(now.as_nanos(), Ordering::Relaxed);
  let displaced = signals::reassert(false);
  if displaced.is_empty() {
    return;
  }
  watchdog::displacement_seen();
  if let Some(owner) = watchdog::owner() {
    for displacement in displaced.into_iter().filter(|d| !d.node_internal) {
      owner.session.notify(NativeEvent::Displaced(displacement));
    }
  }
}
