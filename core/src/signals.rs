//! Signal ownership: our handler (`handler.rs`) installed on top of a pinned libuv handler, kept there, and
//! given back.
//!
//! Why it is built this way (the measurements are in ARCHITECTURE.md):
//! - libuv owns one `sigaction` slot per signal and does not save what was there: the first JavaScript
//!   `process.on('SIGTERM')` replaces a native handler, and removing the last listener resets the signal to
//!   SIG_DFL. `uv.rs` pins libuv with an unref'd `uv_signal_t` per owned signal, so listener changes in
//!   JavaScript never touch the slot again.
//! - On top of the pin, [`install`] puts [`handler::on_signal`] in the slot with a *full* `sa_mask` (an empty
//!   mask deadlocks when a nested signal re-enters libuv's handler) and chains to what it displaced, so other
//!   code's JavaScript listeners still receive each signal once.
//! - [`reassert`] takes the slot back if other code displaced us, and chains to the displacer when that is
//!   safe. It runs on the main thread from the event loop's turns, at most once a millisecond (a displacement
//!   made there, such as Node's own when `vm`'s `breakOnSigint` ends, is undone within 1 ms, see
//!   `main_loop`), and from the watchdog's guard for displacements made on other threads.
//!
//! The chain of each signal is published whole (see [`handler::Chain`]); a handler already in it is never
//! adopted again, and the slot is taken with `sigaction`'s out-parameter, so what was displaced at that very
//! moment is what gets chained. Node's own transient handlers are never chained: its one-shot start-up handler
//! re-raises the signal (chained to a handler that is not reset, that re-delivers forever), and its SIGINT
//! watchdog's handler only means something while a `breakOnSigint` evaluation runs.
//!
//! Everything here runs on the main thread or the watchdog thread, never in a signal handler; it may
//! allocate and lock.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::LifecycleError;
use crate::handler::{self, Chain, Slot, slot_of};
pub use crate::handler::{
  OWNABLE, Policy, configure, first_signal_time, is_exclusive, name_of, set_wake_fd, take_pending,
  wake_watchdog,
};
use crate::uv;

fn query(signo: c_int) -> libc::sigaction {
  // SAFETY: a zeroed sigaction is a valid out-parameter; a null `act` makes this a pure query.
  let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
  // SAFETY: `current` is a valid out-parameter; a null `act` changes nothing.
  unsafe { libc::sigaction(signo, ptr::null(), &mut current) };
  current
}

fn our_action() -> libc::sigaction {
  // SAFETY: zeroed is a valid starting sigaction; sigfillset only writes the mask.
  let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
  action.sa_sigaction = handler::on_signal as *const () as libc::sighandler_t;
  action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
  // SAFETY: `sa_mask` is a valid sigset_t that sigfillset only writes.
  unsafe { libc::sigfillset(&mut action.sa_mask) };
  action
}

fn is_ours(action: &libc::sigaction) -> bool {
  action.sa_sigaction == handler::on_signal as *const () as libc::sighandler_t
}

/// Whether calling this handler after ours is safe. Never SIG_DFL or SIG_IGN (that would kill or do
/// nothing), never ourselves, and never an SA_RESETHAND handler such as Node's start-up `SignalExit`: it
/// re-raises the signal, and since our handler is not reset, that re-delivers it forever.
fn is_chainable(action: &libc::sigaction) -> bool {
  action.sa_sigaction != libc::SIG_DFL
    && action.sa_sigaction != libc::SIG_IGN
    && !is_ours(action)
    && action.sa_flags & libc::SA_RESETHAND == 0
}

/// One of Node's own handlers other than libuv's signal handler: they live in Node's object or libuv's.
fn is_node_internal(action: &libc::sigaction) -> bool {
  Some(action.sa_sigaction) != handler::libuv_handler() && uv::is_in_node(action.sa_sigaction)
}

/// Whether to chain to a handler found in one of our slots: chainable, not chained already, not Node's
/// own, and the slot may still publish chains (see `handler::MAX_PUBLISHED_CHAINS`).
fn is_adoptable(slot: &Slot, chain: &Chain, action: &libc::sigaction) -> bool {
  is_chainable(action)
    && !chain.contains(action.sa_sigaction)
    && !is_node_internal(action)
    && slot.may_publish()
}

/// Remembers libuv's handler (the same function for every signal) if `action`, read right after a pin
/// started, is it: a handler in libuv's object that is not a one-shot.
fn learn_libuv(action: &libc::sigaction) {
  if !is_ours(action) && action.sa_flags & libc::SA_RESETHAND == 0 && uv::is_in_libuv(action.sa_sigaction) {
    handler::set_libuv_handler(action.sa_sigaction);
  }
}

/// A handler found in one of our slots, and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Displacement {
  pub signo: c_int,
  /// Address of the displacing handler (0 for SIG_DFL, 1 for SIG_IGN).
  pub handler: usize,
  /// Whether we now chain to it.
  pub chained: bool,
  /// One of Node's own handlers (expected, not worth a warning).
  pub node_internal: bool,
}

impl Displacement {
  /// The warning a manager logs about it. It asks the loader for the handler's symbol (`dladdr`, under the
  /// loader's lock, which a `dlopen` holds while it runs a library's constructors): main thread only.
  pub fn describe(&self) -> String {
    format!(
      "native code replaced the {} handler with {}; ownership was restored{}",
      name_of(self.signo).unwrap_or("signal"),
      describe_handler(self.handler),
      if self.chained {
        " and the new handler is chained after ours"
      } else {
        ""
      },
    )
  }
}

fn describe_handler(address: usize) -> String {
  if address == libc::SIG_DFL {
    return "SIG_DFL".into();
  }
  if address == libc::SIG_IGN {
    return "SIG_IGN".into();
  }
  match uv::symbol_at(address) {
    (Some(symbol), Some(file)) => format!("{symbol} in {file}"),
    (None, Some(file)) => format!("{address:#x} in {file}"),
    _ => format!("{address:#x}"),
  }
}

/// Puts our handler in the slot of `signo` unless it is there, chaining to what it finds there. `fresh`
/// starts a new chain instead of adding to the current one. Returns what it displaced, if anything.
///
/// libuv's handler is chained only when it is what we displace: put back behind another native handler that
/// pushed it out, it would run twice for every signal if that handler chains to it itself, as most do. Where
/// libuv's handler is not reached, the watchdog tells JavaScript of the signal instead.
fn take_slot(signo: c_int, slot: &Slot, fresh: bool) -> Result<Option<Displacement>, LifecycleError> {
  let current = query(signo);
  if is_ours(&current) {
    return Ok(None);
  }
  let mut chain = if fresh { Chain::empty() } else { *slot.chain() };
  let chained = is_adoptable(slot, &chain, &current);
  if chained {
    chain = chain.with_newest(current);
  }
  if fresh || chained {
    // Published before our handler goes in, so no signal finds ours without the chain it needs. Chains are
    // never freed, so one is published only when it changes.
    slot.publish(chain);
  }
  let ours = our_action();
  // SAFETY: zeroed is a valid out-parameter.
  let mut displaced: libc::sigaction = unsafe { std::mem::zeroed() };
  // SAFETY: `ours` is fully initialised and `on_signal` is async-signal-safe.
  if unsafe { libc::sigaction(signo, &ours, &mut displaced) } != 0 {
    return Err(LifecycleError::NativeUnavailable {
      what: format!("sigaction({signo}) failed"),
    });
  }
  // Someone else got in between the query and the swap: that is what we displaced, so chain it too.
  if displaced.sa_sigaction != current.sa_sigaction && is_adoptable(slot, slot.chain(), &displaced) {
    slot.publish(slot.chain().with_newest(displaced));
  }
  Ok(Some(Displacement {
    signo,
    handler: current.sa_sigaction,
    chained,
    node_internal: is_node_internal(&current),
  }))
}

/// Puts our handler in the slot of `signo`, chaining to the handler it displaces. Idempotent.
pub fn install(signo: c_int) -> Result<(), LifecycleError> {
  let slot = slot_of(signo).ok_or(LifecycleError::UnsupportedSignal { signal: signo })?;
  take_slot(signo, slot, true)?;
  slot.set_owned(true);
  Ok(())
}

/// Gives the slot of `signo` back to libuv's handler (or the oldest we chained to, or SIG_DFL).
pub fn uninstall(signo: c_int) {
  let Some(slot) = slot_of(signo) else { return };
  slot.set_owned(false);
  let chain = *slot.chain();
  if is_ours(&query(signo)) {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask.
    let restore = chain
      .oldest()
      .copied()
      .unwrap_or_else(|| unsafe { std::mem::zeroed() });
    // SAFETY: `restore` is a complete sigaction that was installed in this slot before (or SIG_DFL).
    unsafe { libc::sigaction(signo, &restore, ptr::null_mut()) };
  }
  // What still reaches our handler passes on to libuv's, so JavaScript listeners hear it: a handler already
  // running for a signal on another thread as the slot changed, and another handler that holds the slot
  // and chains to ours. (An empty chain would drop such a signal.)
  let libuv = handler::libuv_handler().and_then(|address| {
    chain
      .actions()
      .iter()
      .find(|a| a.sa_sigaction == address)
      .copied()
  });
  slot.publish(libuv.map_or(Chain::empty(), |action| Chain::empty().with_newest(action)));
}

/// Takes back every owned slot that other code displaced. Returns what it found. Runs on the main thread
/// from the loop's turns (at most once a millisecond, see `main_loop`) and on the watchdog thread (about
/// 0.2 µs per signal when nothing changed).
///
/// It holds the ownership lock throughout: without it, a `release` on the main thread could restore
/// libuv's handler between our check and our re-install, and we would take back a slot we no longer own.
///
/// `from_watchdog`: a slot holding one of Node's own handlers that stays installed (not a one-shot) is left
/// alone. That is Node's SIGINT watchdog for a `vm` evaluation with `breakOnSigint` (the REPL's), installed
/// for the evaluation only: the watchdog thread cannot tell whether one is still running, and taking the
/// slot then turns the Ctrl-C meant to interrupt it into a shutdown. The main loop's check can: when the
/// loop turns, the evaluation is over, and it takes back what Node left (its one-shot `SignalExit`).
pub fn reassert(from_watchdog: bool) -> Vec<Displacement> {
  let _serialized = ownership();
  handler::slots()
    .filter(|(_, slot)| slot.is_owned())
    .filter(|(signo, _)| !(from_watchdog && is_lasting_node_handler(&query(*signo))))
    .filter_map(|(signo, slot)| take_slot(signo, slot, false).ok().flatten())
    .collect()
}

/// One of Node's own handlers (not libuv's, which is taken back from anywhere) that is not a one-shot.
fn is_lasting_node_handler(action: &libc::sigaction) -> bool {
  !is_ours(action) && action.sa_flags & libc::SA_RESETHAND == 0 && is_node_internal(action)
}

/// Whether our handler is in the slot of `signo` right now.
pub fn is_installed(signo: c_int) -> bool {
  is_ours(&query(signo))
}

/// What ownership of one signal remembers to undo it.
struct Owned {
  signo: c_int,
  pin: uv::Pin,
  /// The slot's action before we pinned libuv (Node's start-up handler, typically).
  before_pin: libc::sigaction,
}

/// What the owner holds on the main loop.
#[derive(Default)]
struct Ownership {
  signals: Vec<Owned>,
  /// Checks the slots once per loop turn.
  turn_hook: Option<uv::Hook>,
  /// Checks them a moment later when a turn comes too soon after the last check (see `main_loop`).
  deferred_check: Option<uv::Timer>,
}

// SAFETY: the handle pointers are only dereferenced by libuv on the main thread (own/release/teardown all run
// there); the struct merely travels inside the mutex below.
unsafe impl Send for Ownership {}

static OWNERSHIP: Mutex<Ownership> = Mutex::new(Ownership {
  signals: Vec::new(),
  turn_hook: None,
  deferred_check: None,
});

/// Whether the deferred check is started (so a busy loop starts it once, not once per turn).
static DEFERRED_CHECK_STARTED: AtomicBool = AtomicBool::new(false);

fn ownership() -> MutexGuard<'static, Ownership> {
  OWNERSHIP.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes ownership of `signals` on the main loop `main_loop`: pins libuv, installs our handler, and starts
/// the per-turn check (what earlier owners received is forgotten before, by `Manager::own_signals`). libuv
/// calls `on_signal` on the main thread for each signal that reaches the loop, and `on_turn` once per loop
/// turn.
///
/// # Safety
/// Must run on the main thread, and `main_loop` must be its live libuv loop.
pub unsafe fn own(
  uv: &uv::Uv,
  main_loop: *mut libc::c_void,
  signals: &[c_int],
  on_signal: uv::SignalCallback,
  on_turn: uv::HookCallback,
) -> Result<(), LifecycleError> {
  let mut ownership = ownership();
  // Pin every signal first: a pin that makes libuv install its handler shows which handler is libuv's, and
  // every slot then chains to it, even one where other native code had pushed libuv out before we came.
  for &signo in signals {
    slot_of(signo).ok_or(LifecycleError::UnsupportedSignal { signal: signo })?;
    if ownership.signals.iter().any(|o| o.signo == signo) {
      continue;
    }
    let before_pin = query(signo);
    // SAFETY: this function's contract: main thread, live main loop.
    let pin = unsafe { uv.pin(main_loop, signo, on_signal)? };
    learn_libuv(&query(signo));
    ownership.signals.push(Owned {
      signo,
      pin,
      before_pin,
    });
  }
  for &signo in signals {
    install(signo)?;
  }
  if ownership.turn_hook.is_none() {
    // SAFETY: as above.
    ownership.turn_hook = Some(unsafe { uv.hook(main_loop, on_turn)? });
  }
  if ownership.deferred_check.is_none() {
    // SAFETY: as above.
    ownership.deferred_check = Some(unsafe { uv.timer(main_loop)? });
  }
  Ok(())
}

/// Starts the deferred check, unless it is started already: `on_due` runs on the main loop `after_ms` from
/// now. Main thread only (libuv's handles are not thread-safe).
pub fn check_later(uv: &uv::Uv, on_due: uv::HookCallback, after_ms: u64) {
  if DEFERRED_CHECK_STARTED.load(Ordering::Relaxed) {
    return;
  }
  let ownership = ownership();
  if let Some(timer) = &ownership.deferred_check {
    // SAFETY: main thread (this function's contract); the timer was made by `own` on the main loop.
    if unsafe { uv.start_timer(timer, on_due, after_ms) } {
      DEFERRED_CHECK_STARTED.store(true, Ordering::Relaxed);
    }
  }
}

/// The deferred check is running: a later turn may start it again.
pub fn deferred_check_ran() {
  DEFERRED_CHECK_STARTED.store(false, Ordering::Relaxed);
}

/// Releases every owned signal: closes the pins, restores libuv's handler, closes the per-turn check, and
/// if that left a signal at SIG_DFL, restores what Node had installed before us. Must run on the main
/// thread.
///
/// The pin is closed first, while our handler still owns the slot and records what arrives: a signal that
/// reached libuv's handler only for the pin would be dropped with it (libuv skips a stopped handle's
/// signals), with no shutdown and no default action. Recorded, it is handed to JavaScript by the caller
/// (`watchdog::release_signal_owner`). Closing the last handle of a signal may put SIG_DFL in the slot at
/// once: a signal after that has its default effect, which is what follows a release anyway.
pub fn release(uv: &uv::Uv) {
  let mut ownership = ownership();
  let libuv = handler::libuv_handler();
  for o in ownership.signals.drain(..) {
    // SAFETY: main thread; the pin was created by `own` on this loop and is closed exactly once.
    unsafe { uv.unpin(o.pin) };
    uninstall(o.signo);
    let now_default = query(o.signo).sa_sigaction == libc::SIG_DFL;
    if now_default && Some(o.before_pin.sa_sigaction) != libuv && o.before_pin.sa_sigaction != libc::SIG_DFL {
      // SAFETY: `before_pin` was read from this slot by `sigaction` itself.
      unsafe { libc::sigaction(o.signo, &o.before_pin, ptr::null_mut()) };
    }
  }
  if let Some(hook) = ownership.turn_hook.take() {
    // SAFETY: main thread; made by `own` on this loop, closed once.
    unsafe { uv.unhook(hook) };
  }
  if let Some(timer) = ownership.deferred_check.take() {
    // SAFETY: as above.
    unsafe { uv.close_timer(timer) };
    DEFERRED_CHECK_STARTED.store(false, Ordering::Relaxed);
  }
}

/// At the main environment's teardown (natural process exit): closes the pins and the per-turn check, as
/// libuv requires of the main loop's open handles, without the slot ever passing through SIG_DFL. Closing
/// the last handle of a signal resets its slot to SIG_DFL, and a SIGTERM arriving in that window (a few
/// microseconds, longer when the thread is preempted) kills the exiting process by signal instead of
/// letting it exit with its own code. So each signal first gets a keeper, a handle on a private loop that
/// is never closed: the pin is then not the last handle, libuv leaves the slot alone, and our handler stays
/// in it to the end. Only if libuv cannot make that loop is the old order kept (close, then put our
/// handler straight back).
pub fn on_env_teardown(uv: &uv::Uv) {
  extern "C" fn never_called(_handle: *mut libc::c_void, _signo: c_int) {}
  let mut ownership = ownership();
  // SAFETY: runs on the main thread inside its env cleanup hook.
  let keeper_loop = unsafe { uv.private_loop() };
  for o in ownership.signals.drain(..) {
    if let Some(keeper_loop) = keeper_loop {
      // SAFETY: main thread; no thread runs the private loop, so nothing else touches it and the callback
      // is never called.
      if let Ok(keeper) = unsafe { uv.pin(keeper_loop, o.signo, never_called) } {
        keeper.keep_for_good();
      }
    }
    // SAFETY: runs on the main thread inside its env cleanup hook; each pin is closed once.
    unsafe { uv.unpin(o.pin) };
    let _ = install(o.signo);
  }
  if let Some(hook) = ownership.turn_hook.take() {
    // SAFETY: as above.
    unsafe { uv.unhook(hook) };
  }
  if let Some(timer) = ownership.deferred_check.take() {
    // SAFETY: as above.
    unsafe { uv.close_timer(timer) };
    DEFERRED_CHECK_STARTED.store(false, Ordering::Relaxed);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn only_safe_signals_are_ownable() {
    assert_eq!(name_of(libc::SIGTERM), Some("SIGTERM"));
    assert_eq!(name_of(libc::SIGUSR1), None, "SIGUSR1 belongs to the inspector");
    assert_eq!(name_of(libc::SIGKILL), None);
    assert_eq!(
      install(libc::SIGKILL).unwrap_err().code(),
      "ERR_INVALID_ARG_VALUE"
    );
  }

  #[test]
  fn chainability_rules() {
    // SAFETY: zeroed sigaction = SIG_DFL.
    let mut a: libc::sigaction = unsafe { std::mem::zeroed() };
    assert!(!is_chainable(&a), "SIG_DFL");
    a.sa_sigaction = libc::SIG_IGN;
    assert!(!is_chainable(&a), "SIG_IGN");
    a = our_action();
    assert!(!is_chainable(&a), "ourselves");
    extern "C" fn other(_: c_int) {}
    a.sa_sigaction = other as *const () as libc::sighandler_t;
    a.sa_flags = 0;
    assert!(is_chainable(&a));
    let slot = slot_of(libc::SIGUSR2).unwrap();
    assert!(is_adoptable(slot, &Chain::empty(), &a));
    assert!(
      !is_adoptable(slot, &Chain::empty().with_newest(a), &a),
      "a handler already chained is not adopted again"
    );
    a.sa_flags = libc::SA_RESETHAND;
    assert!(!is_chainable(&a), "a one-shot handler re-raises forever");
  }
}
