//! Signal ownership: our raw handler installed on top of a pinned libuv handler.
//!
//! Why it is built this way (the measurements are in ARCHITECTURE.md):
//! - libuv owns one `sigaction` slot per signal and does not save what was there: the first JavaScript
//!   `process.on('SIGTERM')` replaces a native handler, and removing the last listener resets the signal to
//!   SIG_DFL. `uv.rs` pins libuv with an unref'd `uv_signal_t` per owned signal, so listener changes in
//!   JavaScript never touch the slot again.
//! - On top of the pin, [`install`] puts [`on_signal`] in the slot with a *full* `sa_mask` (an empty mask
//!   deadlocks when a nested signal re-enters libuv's handler) and chains to what it displaced, so other
//!   code's JavaScript listeners still receive each signal once.
//! - A guard ([`reassert`], called by the watchdog) takes the slot back if other native code displaces us,
//!   and chains to the displacer as well.
//!
//! # Async-signal-safety
//!
//! [`on_signal`] and everything it calls run inside a signal handler, on whichever thread the kernel picked.
//! They may only: read and write atomics, call `clock_gettime`, `write(2)`, `_exit(2)`, `gettid` (a raw
//! syscall) and `uv_tty_reset_mode` (which libuv documents as async-signal-safe), and call the chained
//! handlers. No allocation, no lock, no thread-local storage (TLS in a dlopen'ed library can allocate on
//! first use), no panic. Functions that are safe to call there say so in their docs; the others
//! ([`install`], [`uninstall`], [`reassert`], [`own`], [`release`]) run on the main or the watchdog thread.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::clock::MonoTime;
use crate::error::LifecycleError;
use crate::uv;

/// The signals a manager may own, with their names. Others are refused: SIGKILL and SIGSTOP cannot be
/// caught, SIGUSR1 starts Node's inspector, SIGPIPE is ignored by Node on purpose, SIGCHLD and SIGWINCH drive
/// libuv's child processes and terminals, and the synchronous faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) cannot
/// safely resume JavaScript.
pub const OWNABLE: [(c_int, &str); 5] = [
  (libc::SIGTERM, "SIGTERM"),
  (libc::SIGINT, "SIGINT"),
  (libc::SIGHUP, "SIGHUP"),
  (libc::SIGQUIT, "SIGQUIT"),
  (libc::SIGUSR2, "SIGUSR2"),
];

/// How many displaced handlers one signal can chain to: libuv's, plus displacers the guard adopted.
const MAX_CHAIN: usize = 4;

/// The per-signal state the handler reads.
struct Slot {
  owned: AtomicBool,
  /// Handlers to call after ours, newest first; null entries are empty. Each points at a leaked
  /// `libc::sigaction`: a handler on another thread may be reading one, so they are never freed.
  chain: [AtomicPtr<libc::sigaction>; MAX_CHAIN],
  /// Signals received and not yet taken by the watchdog.
  pending: AtomicU32,
  /// The address of libuv's handler for this signal (0 = unknown), found when the pin installed it. With
  /// [`EXCLUSIVE`] set it is skipped, so JavaScript `process.on(signal)` listeners never see the signal.
  libuv_handler: AtomicUsize,
}

impl Slot {
  const fn new() -> Self {
    Self {
      libuv_handler: AtomicUsize::new(0),
      owned: AtomicBool::new(false),
      chain: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHAIN],
      pending: AtomicU32::new(0),
    }
  }
}

static SLOTS: [Slot; OWNABLE.len()] = [const { Slot::new() }; OWNABLE.len()];

/// The write end of the watchdog's wake pipe (non-blocking), or -1.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by the first owned signal since ownership began; a signal that finds it set is a second signal.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// When the first owned signal arrived (nanoseconds on CLOCK_MONOTONIC).
static FIRST_SIGNAL_NS: AtomicU64 = AtomicU64::new(0);
/// Whether a second owned signal exits at once.
static ESCALATE: AtomicBool = AtomicBool::new(false);
/// Whether owned signals are kept from JavaScript listeners (`exclusiveSignals`).
static EXCLUSIVE: AtomicBool = AtomicBool::new(false);
/// The exit code of that exit; negative means 128 + the signal number.
static SECOND_SIGNAL_EXIT: AtomicI32 = AtomicI32::new(-1);
/// Threads currently inside [`on_signal`], by thread id (0 = free). It cuts chain cycles (a displacer that
/// chains back to us) without thread-local storage.
static ACTIVE_THREADS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// The name of an ownable signal.
pub fn name_of(signo: c_int) -> Option<&'static str> {
  OWNABLE.iter().find(|(n, _)| *n == signo).map(|(_, name)| *name)
}

fn slot_of(signo: c_int) -> Option<&'static Slot> {
  OWNABLE.iter().position(|(n, _)| *n == signo).map(|i| &SLOTS[i])
}

/// Tells the handler where to write its wake-up byte. Called once by the watchdog when it starts.
pub fn set_wake_fd(fd: c_int) {
  WAKE_FD.store(fd, Ordering::Release);
}

/// Writes one byte to the watchdog's wake pipe. A full pipe means a wake-up is already pending, so the
/// error is ignored; the state itself lives in atomics.
///
/// Async-signal-safe: one `write(2)` on a non-blocking pipe.
pub fn wake_watchdog() {
  let fd = WAKE_FD.load(Ordering::Acquire);
  if fd >= 0 {
    // SAFETY: writing one byte from a valid stack buffer; a stale or closed fd only yields an error.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
  }
}

/// How owned signals are handled; set from the main thread when a manager takes ownership.
#[derive(Copy, Clone, Debug)]
pub struct Policy {
  /// A second owned signal exits at once.
  pub escalate: bool,
  /// The exit code of that exit; `None` means 128 + the signal number.
  pub second_signal_exit: Option<i32>,
  /// Owned signals do not reach JavaScript `process.on(signal)` listeners.
  pub exclusive: bool,
}

/// Whether owned signals are kept from JavaScript listeners (and so never reach the pin's callback).
pub fn is_exclusive() -> bool {
  EXCLUSIVE.load(Ordering::Acquire)
}

/// Sets the policy for owned signals.
pub fn configure(policy: Policy) {
  SECOND_SIGNAL_EXIT.store(policy.second_signal_exit.unwrap_or(-1), Ordering::Relaxed);
  EXCLUSIVE.store(policy.exclusive, Ordering::Release);
  ESCALATE.store(policy.escalate, Ordering::Release);
}

/// Takes the signals received since the last call, as (signal number, count).
pub fn take_pending() -> impl Iterator<Item = (c_int, u32)> {
  OWNABLE.iter().zip(SLOTS.iter()).filter_map(|((signo, _), slot)| {
    let n = slot.pending.swap(0, Ordering::AcqRel);
    (n > 0).then_some((*signo, n))
  })
}

/// When the first owned signal since ownership began arrived, if one did.
pub fn first_signal_time() -> Option<MonoTime> {
  match FIRST_SIGNAL_NS.load(Ordering::Acquire) {
    0 => None,
    ns => Some(MonoTime::from_nanos(ns)),
  }
}

/// The handler in every owned slot.
///
/// Async-signal-safe (see the module docs): it saves and restores `errno`, returns at once if this thread is
/// already inside it, records the signal in atomics, exits on a second signal if asked to, wakes the
/// watchdog, then calls the handlers it chains to.
extern "C" fn on_signal(signo: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  let saved_errno = errno::get();
  if let Some(_inside) = Reentry::enter()
    && let Some(slot) = slot_of(signo)
  {
    if slot.owned.load(Ordering::Acquire) {
      record(signo, slot);
    }
    call_chain(slot, signo, info, context);
  }
  errno::set(saved_errno);
}

/// Async-signal-safe: atomics, `clock_gettime`, and on a second signal `write(2)` + `_exit(2)`.
fn record(signo: c_int, slot: &Slot) {
  if SIGNALLED.swap(true, Ordering::AcqRel) {
    if ESCALATE.load(Ordering::Acquire) {
      exit_on_second_signal(signo);
    }
  } else {
    FIRST_SIGNAL_NS.store(MonoTime::now().as_nanos(), Ordering::Release);
  }
  slot.pending.fetch_add(1, Ordering::AcqRel);
  wake_watchdog();
}

/// Async-signal-safe: calls each chained handler the way it asked to be called.
fn call_chain(slot: &Slot, signo: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  let skip = match (
    EXCLUSIVE.load(Ordering::Acquire),
    slot.owned.load(Ordering::Acquire),
  ) {
    (true, true) => slot.libuv_handler.load(Ordering::Acquire),
    _ => 0,
  };
  for entry in &slot.chain {
    let action = entry.load(Ordering::Acquire);
    if action.is_null() {
      continue;
    }
    // SAFETY: non-null chain entries point at leaked, never-freed `sigaction`s that `install`/`reassert`
    // accepted with `is_chainable`, so the handler is a real function, not SIG_DFL/SIG_IGN/ourselves.
    let action = unsafe { &*action };
    if skip != 0 && action.sa_sigaction == skip {
      continue;
    }
    if action.sa_flags & libc::SA_SIGINFO != 0 {
      // SAFETY: with SA_SIGINFO the kernel ABI of `sa_sigaction` is the three-argument form.
      let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        unsafe { std::mem::transmute(action.sa_sigaction) };
      handler(signo, info, context);
    } else {
      // SAFETY: without SA_SIGINFO the slot holds a one-argument `sa_handler`.
      let handler: extern "C" fn(c_int) = unsafe { std::mem::transmute(action.sa_sigaction) };
      handler(signo);
    }
  }
}

/// Writes one line and `_exit`s with the second-signal code. Never returns.
///
/// Async-signal-safe: the line is assembled in a stack buffer, then `write(2)`, `uv_tty_reset_mode` and
/// `_exit(2)`.
fn exit_on_second_signal(signo: c_int) -> ! {
  let code = match SECOND_SIGNAL_EXIT.load(Ordering::Acquire) {
    c if c >= 0 => c,
    _ => 128 + signo,
  };
  let mut line = [0u8; 128];
  let mut len = 0;
  for part in [
    b"titan-lifecycle: second ".as_slice(),
    name_of(signo).unwrap_or("signal").as_bytes(),
    b" during shutdown, exiting now with code ",
  ] {
    len += copy_into(&mut line[len..], part);
  }
  len += write_decimal(&mut line[len..], code as u32);
  len += copy_into(&mut line[len..], b"\n");
  write_stderr(&line[..len]);
  uv::reset_tty();
  // SAFETY: `_exit` is async-signal-safe and ends the process without running any user-space cleanup.
  unsafe { libc::_exit(code) }
}

/// Writes all of `bytes` to fd 2, retrying on EINTR and short writes.
///
/// Async-signal-safe: `write(2)` only.
pub fn write_stderr(mut bytes: &[u8]) {
  while !bytes.is_empty() {
    // SAFETY: the pointer and length describe the live slice `bytes`.
    let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    if n > 0 {
      bytes = &bytes[n as usize..];
    } else if n < 0 && errno::get() == libc::EINTR {
      continue;
    } else {
      return;
    }
  }
}

/// Async-signal-safe: plain copying.
fn copy_into(dst: &mut [u8], src: &[u8]) -> usize {
  let n = src.len().min(dst.len());
  dst[..n].copy_from_slice(&src[..n]);
  n
}

/// Formats `value` in decimal without allocating. Async-signal-safe.
fn write_decimal(dst: &mut [u8], mut value: u32) -> usize {
  let mut digits = [0u8; 10];
  let mut n = 0;
  loop {
    digits[n] = b'0' + (value % 10) as u8;
    n += 1;
    value /= 10;
    if value == 0 {
      break;
    }
  }
  digits[..n].reverse();
  copy_into(dst, &digits[..n])
}

/// Marks this thread as inside the handler for as long as it lives.
struct Reentry(Option<&'static AtomicUsize>);

impl Reentry {
  /// Returns `None` if this thread is already inside the handler (a chain cycle).
  ///
  /// Async-signal-safe: a syscall and atomics.
  fn enter() -> Option<Reentry> {
    let me = thread_id();
    if ACTIVE_THREADS.iter().any(|t| t.load(Ordering::Acquire) == me) {
      return None;
    }
    // If more than 32 threads are inside at once, the 33rd runs untracked: it still works, it just cannot
    // detect a chain cycle.
    let slot = ACTIVE_THREADS.iter().find(|t| {
      t.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    });
    Some(Reentry(slot))
  }
}

impl Drop for Reentry {
  fn drop(&mut self) {
    if let Some(slot) = self.0 {
      slot.store(0, Ordering::Release);
    }
  }
}

/// A number unique to the calling thread. Async-signal-safe: `gettid` is a raw syscall on Linux; elsewhere
/// `pthread_self` only reads the thread pointer.
fn thread_id() -> usize {
  #[cfg(target_os = "linux")]
  {
    // SAFETY: SYS_gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as usize }
  }
  #[cfg(not(target_os = "linux"))]
  {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
  }
}

/// errno access that works inside a signal handler (no TLS initialisation: errno's storage always exists).
mod errno {
  pub fn get() -> i32 {
    // SAFETY: the errno location of the calling thread is always valid.
    unsafe { *location() }
  }

  pub fn set(value: i32) {
    // SAFETY: as above.
    unsafe { *location() = value };
  }

  #[cfg(target_os = "linux")]
  fn location() -> *mut i32 {
    // SAFETY: no preconditions.
    unsafe { libc::__errno_location() }
  }

  #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
  fn location() -> *mut i32 {
    // SAFETY: no preconditions.
    unsafe { libc::__error() }
  }
}

fn query(signo: c_int) -> libc::sigaction {
  // SAFETY: a zeroed sigaction is a valid out-parameter; a null `act` makes this a pure query.
  let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
  unsafe { libc::sigaction(signo, ptr::null(), &mut current) };
  current
}

fn our_action() -> libc::sigaction {
  // SAFETY: zeroed is a valid starting sigaction; sigfillset only writes the mask.
  let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
  action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
  action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
  unsafe { libc::sigfillset(&mut action.sa_mask) };
  action
}

fn is_ours(action: &libc::sigaction) -> bool {
  action.sa_sigaction == on_signal as *const () as libc::sighandler_t
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

/// Puts our handler in the slot of `signo`, chaining to the handler it displaces. Idempotent.
pub fn install(signo: c_int) -> Result<(), LifecycleError> {
  let slot = slot_of(signo).ok_or(LifecycleError::UnsupportedSignal { signal: signo })?;
  let current = query(signo);
  if !is_ours(&current) {
    clear_chain(slot);
    if is_chainable(&current) {
      push_chain(slot, current);
    }
    let ours = our_action();
    // SAFETY: `ours` is fully initialised and `on_signal` is async-signal-safe.
    if unsafe { libc::sigaction(signo, &ours, ptr::null_mut()) } != 0 {
      return Err(LifecycleError::NativeUnavailable {
        what: format!("sigaction({signo}) failed"),
      });
    }
  }
  slot.owned.store(true, Ordering::Release);
  Ok(())
}

/// Gives the slot of `signo` back to the handler we chained to (libuv's, normally), or SIG_DFL.
pub fn uninstall(signo: c_int) {
  let Some(slot) = slot_of(signo) else { return };
  slot.owned.store(false, Ordering::Release);
  if !is_ours(&query(signo)) {
    clear_chain(slot);
    return;
  }
  let oldest = slot
    .chain
    .iter()
    .rev()
    .map(|e| e.load(Ordering::Acquire))
    .find(|p| !p.is_null());
  // SAFETY: chain entries are valid leaked sigactions; a zeroed sigaction is SIG_DFL with an empty mask.
  let restore = oldest
    .map(|p| unsafe { *p })
    .unwrap_or_else(|| unsafe { std::mem::zeroed() });
  // SAFETY: `restore` is a complete sigaction that was installed in this slot before.
  unsafe { libc::sigaction(signo, &restore, ptr::null_mut()) };
  clear_chain(slot);
}

fn clear_chain(slot: &Slot) {
  for entry in &slot.chain {
    entry.store(ptr::null_mut(), Ordering::Release);
  }
}

/// Adds a handler to the front of the chain (newest first). The oldest entry, normally libuv's, is kept:
/// the entry before it is overwritten when the chain is full.
fn push_chain(slot: &Slot, action: libc::sigaction) {
  let leaked = Box::into_raw(Box::new(action));
  let entries: Vec<*mut libc::sigaction> = slot.chain.iter().map(|e| e.load(Ordering::Acquire)).collect();
  let mut kept: Vec<*mut libc::sigaction> = entries.into_iter().filter(|p| !p.is_null()).collect();
  if kept.len() == MAX_CHAIN {
    kept.remove(MAX_CHAIN - 2);
  }
  kept.insert(0, leaked);
  // A handler running now may see a half-updated chain for one signal; each entry it sees is still valid.
  for (i, entry) in slot.chain.iter().enumerate() {
    entry.store(kept.get(i).copied().unwrap_or(ptr::null_mut()), Ordering::Release);
  }
}

/// A handler the guard found in one of our slots.
#[derive(Clone, Debug)]
pub struct Displacement {
  pub signo: c_int,
  /// Address of the displacing handler (0 for SIG_DFL, 1 for SIG_IGN).
  pub handler: usize,
  /// Whether we now chain to it.
  pub chained: bool,
}

/// Takes back every owned slot that other native code displaced, chaining to the displacer when that is
/// safe. Returns what it found. Runs on the watchdog thread (about 0.2 µs per signal when nothing changed).
///
/// It holds the ownership lock throughout: without it, a `release` on the main thread could restore
/// libuv's handler between our check and our re-install, and we would take back a slot we no longer own.
pub fn reassert() -> Vec<Displacement> {
  let _serialized = owned_list();
  let mut found = Vec::new();
  for (&(signo, _), slot) in OWNABLE.iter().zip(SLOTS.iter()) {
    if !slot.owned.load(Ordering::Acquire) {
      continue;
    }
    let current = query(signo);
    if is_ours(&current) {
      continue;
    }
    let chained = is_chainable(&current);
    if chained {
      push_chain(slot, current);
    }
    let ours = our_action();
    // SAFETY: as in `install`.
    unsafe { libc::sigaction(signo, &ours, ptr::null_mut()) };
    found.push(Displacement {
      signo,
      handler: current.sa_sigaction,
      chained,
    });
  }
  found
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

// SAFETY: the pin's handle pointer is only dereferenced by libuv on the main thread (own/release/teardown
// all run there); the struct merely travels inside the mutex below.
unsafe impl Send for Owned {}

static OWNED: std::sync::Mutex<Vec<Owned>> = std::sync::Mutex::new(Vec::new());

fn owned_list() -> std::sync::MutexGuard<'static, Vec<Owned>> {
  OWNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes ownership of `signals` on the main loop `main_loop`: pins libuv, installs our handler, and resets
/// the first-signal state. libuv calls `on_loop` on the main thread for each signal that reaches the loop.
///
/// # Safety
/// Must run on the main thread, and `main_loop` must be its live libuv loop.
pub unsafe fn own(
  uv: &uv::Uv,
  main_loop: *mut libc::c_void,
  signals: &[c_int],
  on_loop: uv::SignalCallback,
) -> Result<(), LifecycleError> {
  let mut owned = owned_list();
  SIGNALLED.store(false, Ordering::Release);
  FIRST_SIGNAL_NS.store(0, Ordering::Release);
  for &signo in signals {
    let slot = slot_of(signo).ok_or(LifecycleError::UnsupportedSignal { signal: signo })?;
    slot.pending.store(0, Ordering::Release);
    if owned.iter().any(|o| o.signo == signo) {
      continue;
    }
    let before_pin = query(signo);
    // SAFETY: this function's contract: main thread, live main loop.
    let pin = unsafe { uv.pin(main_loop, signo, on_loop)? };
    // The pin made libuv install its handler (or it was there already): remember which one it is.
    slot
      .libuv_handler
      .store(query(signo).sa_sigaction, Ordering::Release);
    owned.push(Owned {
      signo,
      pin,
      before_pin,
    });
    install(signo)?;
  }
  Ok(())
}

/// Releases every owned signal: restores libuv's handler, closes the pins, and if that left a signal at
/// SIG_DFL, restores what Node had installed before us. Must run on the main thread.
pub fn release(uv: &uv::Uv) {
  let mut owned = owned_list();
  for o in owned.drain(..) {
    let libuv_handler = slot_of(o.signo)
      .and_then(|s| {
        s.chain
          .iter()
          .rev()
          .map(|e| e.load(Ordering::Acquire))
          .find(|p| !p.is_null())
      })
      // SAFETY: chain entries are valid leaked sigactions.
      .map(|p| unsafe { (*p).sa_sigaction });
    uninstall(o.signo);
    // SAFETY: main thread; the pin was created by `own` on this loop and is closed exactly once.
    unsafe { uv.unpin(o.pin) };
    let now_default = query(o.signo).sa_sigaction == libc::SIG_DFL;
    if now_default
      && Some(o.before_pin.sa_sigaction) != libuv_handler
      && o.before_pin.sa_sigaction != libc::SIG_DFL
    {
      // SAFETY: `before_pin` was read from this slot by `sigaction` itself.
      unsafe { libc::sigaction(o.signo, &o.before_pin, ptr::null_mut()) };
    }
  }
}

/// At the main environment's teardown (natural process exit): closes the pins, as libuv requires of open
/// handles, then puts our handler straight back. Closing the last pin resets the slot to SIG_DFL, and a
/// SIGTERM arriving in that window would otherwise kill the exiting process by signal.
pub fn on_env_teardown(uv: &uv::Uv) {
  let mut owned = owned_list();
  for o in owned.drain(..) {
    // SAFETY: runs on the main thread inside its env cleanup hook; each pin is closed once.
    unsafe { uv.unpin(o.pin) };
    let _ = install(o.signo);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn decimal_formatting_needs_no_allocation() {
    let mut buf = [0u8; 12];
    let n = write_decimal(&mut buf, 130);
    assert_eq!(&buf[..n], b"130");
    let n = write_decimal(&mut buf, 0);
    assert_eq!(&buf[..n], b"0");
    let n = write_decimal(&mut buf, u32::MAX);
    assert_eq!(&buf[..n], b"4294967295");
    assert_eq!(copy_into(&mut buf[..2], b"abc"), 2);
  }

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
    a.sa_flags = libc::SA_RESETHAND;
    assert!(!is_chainable(&a), "a one-shot handler re-raises forever");
  }

  #[test]
  fn the_chain_keeps_the_oldest_handler_when_full() {
    let slot = Slot::new();
    let mut actions = Vec::new();
    for i in 0..6 {
      // SAFETY: zeroed sigaction; we only compare the handler field.
      let mut a: libc::sigaction = unsafe { std::mem::zeroed() };
      a.sa_sigaction = 0x1000 + i;
      actions.push(a);
      push_chain(&slot, a);
    }
    // SAFETY: entries are leaked sigactions written above.
    let handlers: Vec<usize> = slot
      .chain
      .iter()
      .map(|e| e.load(Ordering::Acquire))
      .filter(|p| !p.is_null())
      .map(|p| unsafe { (*p).sa_sigaction })
      .collect();
    assert_eq!(
      handlers,
      vec![0x1005, 0x1004, 0x1003, 0x1000],
      "newest first, libuv's (the first) kept"
    );
  }
}
