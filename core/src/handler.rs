//! The signal handler, and the state it shares with the rest of the library.
//!
//! [`on_signal`] sits in the `sigaction` slot of every owned signal (`signals.rs` puts it there and keeps it
//! there). For each signal it records the arrival, decides whether this is a second signal that ends the
//! process at once, wakes the watchdog, and calls the handlers it chains to: libuv's (so JavaScript
//! listeners still hear the signal) and any other native code's it adopted.
//!
//! # Async-signal-safety
//!
//! Everything marked "signal context" below runs inside the handler, on whichever thread the kernel picked,
//! possibly interrupting any code of that thread. It may only read and write atomics, call `clock_gettime`,
//! `getppid`, `gettid` (a raw syscall), `waitid(2)` and `kill(2)` (the tracked children,
//! `children::kill_all`), the bounded writes of `exit_write`, `uv_tty_reset_mode` (documented by libuv as
//! async-signal-safe) and `_exit(2)`, and call the chained handlers. No allocation, no lock, no
//! thread-local storage (TLS in a dlopen'ed library can allocate on first use), no panic. The other
//! functions here run on the main or the watchdog thread and say so.
//!
//! # Which signal is a second signal
//!
//! The first owned signal begins the shutdown. A later one exits at once (when `forceExitOnSecondSignal`),
//! unless it is the same request reaching us again, told apart by who sent it (`si_pid`, `si_code`):
//! - one signal from the other side of our parent within [`FORWARD_WINDOW`]: a copy of the first signal
//!   forwarded by our parent shortly after the same signal reached us from elsewhere (`npm start` forwards
//!   what a process-group signal, systemd's `KillMode=control-group`, a `killpg` or Ctrl-C at a terminal,
//!   already delivered to us); or, after the parent's signal, any one signal from elsewhere (the group's
//!   own, when the parent answered the same Ctrl-C before this process got to it);
//! - any signal from our parent after one from elsewhere began the shutdown, however much later: a parent
//!   that stops its children in its own shutdown (this package's `trackChild`, SIGTERM when the child's
//!   task comes) after a group signal already reached them; once;
//! - a copy of the first signal that this process sent itself within [`FORWARD_WINDOW`] after the first came
//!   from elsewhere: a library relaying it (signal-exit raises the signal again once its cleanup ran, when
//!   it sees no other JavaScript listener, and the manager adds none); once. After a first signal the
//!   process sent itself, a copy it sends again is a second request;
//! - a SIGHUP sent by the kernel: the terminal hung up (its controlling process exited, as npm does after
//!   its shell died of the same Ctrl-C), which is the terminal going away, not a second request.
//!
//! A second Ctrl-C comes from the same sender as the first (the terminal), so it still exits at once. Once
//! the owner's shutdown has finished and the process is exiting, any owned signal exits at once with the
//! shutdown's code (see [`shutdown_finished`]).

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::MonoTime;
use crate::{children, errno, exit_write, uv};

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
pub const MAX_CHAIN: usize = 4;

/// How long after the first signal a copy of it from another sender (one of them our parent) is taken as
/// the same signal forwarded. npm forwards within milliseconds; a person pressing Ctrl-C again is the same
/// sender and is never taken for a copy, whatever the interval.
pub const FORWARD_WINDOW: Duration = Duration::from_secs(1);

/// The handlers one signal chains to, newest first, published whole: a handler running on another thread
/// reads one snapshot for the whole signal, so it can neither call a handler twice nor skip one while the
/// chain changes. Snapshots are never freed (a handler may still be reading an old one); a new one is made
/// only when a handler not already in the chain is adopted, which bounds the leak.
#[derive(Copy, Clone)]
pub struct Chain {
  len: usize,
  actions: [libc::sigaction; MAX_CHAIN],
}

static EMPTY_CHAIN: Chain = Chain::empty();

impl Chain {
  pub const fn empty() -> Chain {
    Chain {
      len: 0,
      // SAFETY: an all-zero sigaction is valid plain data (SIG_DFL, empty mask); unused entries are never read.
      actions: unsafe { std::mem::zeroed() },
    }
  }

  /// The handlers, newest first. Async-signal-safe.
  pub fn actions(&self) -> &[libc::sigaction] {
    &self.actions[..self.len]
  }

  pub fn contains(&self, handler: usize) -> bool {
    self.actions().iter().any(|a| a.sa_sigaction == handler)
  }

  /// The first handler chained, normally libuv's.
  pub fn oldest(&self) -> Option<&libc::sigaction> {
    self.actions().last()
  }

  /// Whether `other` calls the same handlers, with the same flags and masks, in the same order.
  fn same_as(&self, other: &Chain) -> bool {
    // Compared signal by signal, not byte by byte: the C library's sigset_t is larger than the kernel's,
    // and `sigaction` leaves the rest of it as it found it (stack garbage, seen).
    fn same_mask(a: &libc::sigaction, b: &libc::sigaction) -> bool {
      (1..=64).all(|signo| {
        // SAFETY: sigismember only reads the two sets, which live as long as `a` and `b`.
        unsafe { libc::sigismember(&a.sa_mask, signo) == libc::sigismember(&b.sa_mask, signo) }
      })
    }
    self.len == other.len
      && self
        .actions()
        .iter()
        .zip(other.actions())
        .all(|(a, b)| a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags && same_mask(a, b))
  }

  /// This chain with `action` in front. When full, the entry before the oldest makes room: the oldest is
  /// normally libuv's, which JavaScript listeners need.
  pub fn with_newest(&self, action: libc::sigaction) -> Chain {
    let mut next = Chain::empty();
    next.actions[0] = action;
    next.len = 1;
    let keep = if self.len == MAX_CHAIN {
      MAX_CHAIN - 2
    } else {
      self.len
    };
    for a in &self.actions[..keep] {
      next.actions[next.len] = *a;
      next.len += 1;
    }
    if self.len == MAX_CHAIN {
      next.actions[next.len] = self.actions[MAX_CHAIN - 1];
      next.len += 1;
    }
    next
  }
}

/// How many different chains one signal may publish. Each is leaked (a handler may still read it); a set of
/// native libraries re-installing themselves in turn cannot grow that without bound: past this, displacers
/// are taken back from but no longer adopted. A chain equal to one published before is that one again, so
/// owning and giving back the signals any number of times (a manager per test) publishes no new chain.
pub const MAX_PUBLISHED_CHAINS: usize = 256;

/// The per-signal state the handler reads.
pub struct Slot {
  owned: AtomicBool,
  /// The current [`Chain`] (null = empty).
  chain: AtomicPtr<Chain>,
  /// The different chains published so far (see [`MAX_PUBLISHED_CHAINS`]). Main and watchdog threads only:
  /// the handler reads `chain`, never this.
  published: Mutex<Vec<&'static Chain>>,
  /// Signals received and not yet taken by the watchdog.
  pending: AtomicU32,
}

impl Slot {
  const fn new() -> Self {
    Self {
      owned: AtomicBool::new(false),
      chain: AtomicPtr::new(ptr::null_mut()),
      published: Mutex::new(Vec::new()),
      pending: AtomicU32::new(0),
    }
  }

  pub fn is_owned(&self) -> bool {
    self.owned.load(Ordering::Acquire)
  }

  pub fn set_owned(&self, owned: bool) {
    self.owned.store(owned, Ordering::Release);
  }

  /// The chain as published. Signal context: one atomic load.
  pub fn chain(&self) -> &'static Chain {
    let current = self.chain.load(Ordering::Acquire);
    if current.is_null() {
      &EMPTY_CHAIN
    } else {
      // SAFETY: non-null values are leaked `Box<Chain>`s from `publish`, never freed nor written to.
      unsafe { &*current }
    }
  }

  /// Publishes a chain in one store: the one published before that is equal to it, or a new one. Main or
  /// watchdog thread (it may allocate and locks).
  pub fn publish(&self, chain: Chain) {
    let next: *const Chain = if chain.len == 0 {
      ptr::null()
    } else {
      let mut published = self.published();
      match published.iter().find(|earlier| earlier.same_as(&chain)) {
        Some(earlier) => *earlier,
        None => {
          let leaked: &'static Chain = Box::leak(Box::new(chain));
          published.push(leaked);
          leaked
        }
      }
    };
    // Never written through: a published chain is read-only for ever.
    self.chain.store(next.cast_mut(), Ordering::Release);
  }

  /// Whether a chain not published before may still be (see [`MAX_PUBLISHED_CHAINS`]).
  pub fn may_publish(&self) -> bool {
    self.published().len() < MAX_PUBLISHED_CHAINS
  }

  fn published(&self) -> MutexGuard<'_, Vec<&'static Chain>> {
    self
      .published
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  pub fn reset_pending(&self) {
    self.pending.store(0, Ordering::Release);
  }
}

static SLOTS: [Slot; OWNABLE.len()] = [const { Slot::new() }; OWNABLE.len()];

/// The name of an ownable signal.
pub fn name_of(signo: c_int) -> Option<&'static str> {
  OWNABLE.iter().find(|(n, _)| *n == signo).map(|(_, name)| *name)
}

/// The state of an ownable signal. Async-signal-safe.
pub fn slot_of(signo: c_int) -> Option<&'static Slot> {
  OWNABLE.iter().position(|(n, _)| *n == signo).map(|i| &SLOTS[i])
}

/// Every ownable signal with its state.
pub fn slots() -> impl Iterator<Item = (c_int, &'static Slot)> {
  OWNABLE.iter().map(|(signo, _)| *signo).zip(SLOTS.iter())
}

/// The address of libuv's signal handler (the same function for every signal), once seen; 0 until then.
/// With [`EXCLUSIVE`] set the handler skips it, so JavaScript `process.on(signal)` listeners never hear.
static LIBUV_HANDLER: AtomicUsize = AtomicUsize::new(0);

pub fn libuv_handler() -> Option<usize> {
  match LIBUV_HANDLER.load(Ordering::Acquire) {
    0 => None,
    address => Some(address),
  }
}

pub fn set_libuv_handler(address: usize) {
  LIBUV_HANDLER.store(address, Ordering::Release);
}

/// The write end of the watchdog's wake pipe (non-blocking), or -1.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Tells the handler where to write its wake-up byte. Called once by the watchdog when it starts.
pub fn set_wake_fd(fd: c_int) {
  WAKE_FD.store(fd, Ordering::Release);
}

/// Writes one byte to the watchdog's wake pipe. A full pipe means a wake-up is already pending, so the
/// error is ignored; the state itself lives in atomics.
///
/// Signal context: one `write(2)` on a non-blocking pipe.
pub fn wake_watchdog() {
  let fd = WAKE_FD.load(Ordering::Acquire);
  if fd >= 0 {
    // SAFETY: writing one byte from a valid stack buffer; a stale or closed fd only yields an error.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
  }
}

// ---- policy (set from the main thread when a manager takes ownership) -------------------------------------

/// Whether a second owned signal exits at once.
static ESCALATE: AtomicBool = AtomicBool::new(false);
/// Whether owned signals are kept from JavaScript listeners (`exclusiveSignals`).
static EXCLUSIVE: AtomicBool = AtomicBool::new(false);
/// The exit code of that exit; negative means 128 + the signal number.
static SECOND_SIGNAL_EXIT: AtomicI32 = AtomicI32::new(-1);

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

/// Sets the policy for owned signals.
pub fn configure(policy: Policy) {
  SECOND_SIGNAL_EXIT.store(policy.second_signal_exit.unwrap_or(-1), Ordering::Relaxed);
  EXCLUSIVE.store(policy.exclusive, Ordering::Release);
  ESCALATE.store(policy.escalate, Ordering::Release);
}

/// Whether owned signals are kept from JavaScript listeners (and so never reach the pin's callback).
pub fn is_exclusive() -> bool {
  EXCLUSIVE.load(Ordering::Acquire)
}

// ---- what the handler records -------------------------------------------------------------------------

/// Set by the first owned signal since ownership began; a signal that finds it set may be a second signal.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// When the first owned signal arrived (nanoseconds on CLOCK_MONOTONIC); stored last, so a non-zero value
/// means the first signal's number and sender below are in place.
static FIRST_SIGNAL_NS: AtomicU64 = AtomicU64::new(0);
static FIRST_SIGNO: AtomicI32 = AtomicI32::new(0);
static FIRST_SENDER: AtomicU64 = AtomicU64::new(0);
/// Whether a forwarded copy of the first signal was already taken as the same signal (once only).
static FORWARDED_COPY_SEEN: AtomicBool = AtomicBool::new(false);
/// Whether a signal from the parent was already taken as the parent stopping us (once only, and apart from
/// the forwarded copy: npm between a tracking parent and us forwards both the group's signal and, later,
/// the parent's own).
static PARENT_STOP_SEEN: AtomicBool = AtomicBool::new(false);
/// Whether a copy of the first signal that this process sent itself was already taken as the same signal
/// relayed (once only).
static SELF_RELAY_SEEN: AtomicBool = AtomicBool::new(false);
/// The exit code of the owner's shutdown once it has finished and the process is exiting (negative: not
/// finished). A signal then exits with it rather than as a second request: the shutdown did not fail.
static FINISHED_EXIT: AtomicI32 = AtomicI32::new(-1);
/// Owned signals recorded since ownership began, and the last one's number.
static RECORDED: AtomicU64 = AtomicU64::new(0);
static LAST_SIGNO: AtomicI32 = AtomicI32::new(0);
/// The sequence number of the latest signal whose chain reached libuv's handler: libuv then tells
/// JavaScript through the pin, and the watchdog need not.
static LIBUV_REACHED: AtomicU64 = AtomicU64::new(0);
/// Of the recorded signals, how many JavaScript has been told of (main thread; an atomic only so it can
/// live in a static).
static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Forgets what earlier owners received. Main thread, when a manager takes ownership.
pub fn reset_received() {
  SIGNALLED.store(false, Ordering::Release);
  FIRST_SIGNAL_NS.store(0, Ordering::Release);
  FORWARDED_COPY_SEEN.store(false, Ordering::Release);
  PARENT_STOP_SEEN.store(false, Ordering::Release);
  SELF_RELAY_SEEN.store(false, Ordering::Release);
  FINISHED_EXIT.store(-1, Ordering::Release);
  RECORDED.store(0, Ordering::Release);
  LIBUV_REACHED.store(0, Ordering::Release);
  DELIVERED.store(0, Ordering::Release);
  for (_, slot) in slots() {
    slot.reset_pending();
  }
}

/// The owner's shutdown finished with `exit_code` and the process is exiting (after a stop() caller's
/// continuations, or 'exit' listeners): a signal from now on exits at once with that code. Main thread.
pub fn shutdown_finished(exit_code: i32) {
  FINISHED_EXIT.store(exit_code, Ordering::Release);
}

/// Takes the signals received since the last call, as (signal number, count). Watchdog thread.
pub fn take_pending() -> impl Iterator<Item = (c_int, u32)> {
  slots().filter_map(|(signo, slot)| {
    let n = slot.pending.swap(0, Ordering::AcqRel);
    (n > 0).then_some((signo, n))
  })
}

/// When the first owned signal since ownership began arrived, if one did.
pub fn first_signal_time() -> Option<MonoTime> {
  match FIRST_SIGNAL_NS.load(Ordering::Acquire) {
    0 => None,
    ns => Some(MonoTime::from_nanos(ns)),
  }
}

/// How many owned signals were recorded since ownership began: the sequence number of the latest.
pub fn recorded() -> u64 {
  RECORDED.load(Ordering::Acquire)
}

/// The first owned signal since ownership began, if one arrived.
pub fn first_signal() -> Option<c_int> {
  first_signal_time().map(|_| FIRST_SIGNO.load(Ordering::Acquire))
}

/// Whether libuv's handler ran for signal `seq` (so libuv tells JavaScript of it through the pin).
pub fn libuv_reached(seq: u64) -> bool {
  LIBUV_REACHED.load(Ordering::Acquire) >= seq
}

/// The pin's libuv callback is telling JavaScript of a signal (main thread): every signal recorded so far
/// is now known there.
pub fn delivered_by_loop() {
  DELIVERED.fetch_max(RECORDED.load(Ordering::Acquire), Ordering::AcqRel);
}

/// Whether the watchdog's news of signal `seq` still tells JavaScript something (main thread, as the news
/// arrives): false if the pin's callback, or earlier news, already covered it.
pub fn claim_delivery(seq: u64) -> bool {
  DELIVERED.fetch_max(seq, Ordering::AcqRel) < seq
}

/// Whether JavaScript has been told of signal `seq` (any thread).
pub fn is_delivered(seq: u64) -> bool {
  DELIVERED.load(Ordering::Acquire) >= seq
}

/// The latest recorded signal, if JavaScript has not been told of it; marks it told. Main thread: when the
/// owner gives the signals back (a signal received before that belongs to its shutdown), and when the
/// event loop is about to end with one the pin's callback was never polled for.
pub fn take_undelivered() -> Option<c_int> {
  let recorded = RECORDED.load(Ordering::Acquire);
  claim_delivery(recorded).then(|| LAST_SIGNO.load(Ordering::Acquire))
}

/// Who sent a signal, packed in a `u64` so it fits an atomic: a process by its pid, or the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Sender {
  Process(u32),
  /// The kernel on its own account: a terminal's Ctrl-C or hangup (`si_pid` is 0).
  Kernel,
  Unknown,
}

impl Sender {
  /// Signal context: reads the siginfo the kernel passed.
  #[cfg(target_os = "linux")]
  fn of(info: *const libc::siginfo_t) -> Sender {
    if info.is_null() {
      return Sender::Unknown;
    }
    // SAFETY: a non-null siginfo from the kernel. `si_pid` is read only for the codes that carry a sender
    // (kill, tgkill, sigqueue); a kill from outside our PID namespace carries 0, a sender of its own.
    unsafe {
      match (*info).si_code {
        libc::SI_KERNEL => Sender::Kernel,
        libc::SI_USER | libc::SI_TKILL | libc::SI_QUEUE => Sender::Process((*info).si_pid() as u32),
        _ => Sender::Unknown,
      }
    }
  }

  /// Signal context: reads the siginfo the kernel passed. Elsewhere a signal the kernel sent on its own
  /// account (a terminal's) has no sending process.
  #[cfg(not(target_os = "linux"))]
  fn of(info: *const libc::siginfo_t) -> Sender {
    if info.is_null() {
      return Sender::Unknown;
    }
    // SAFETY: a non-null siginfo from the kernel.
    match unsafe { (*info).si_pid() } {
      pid if pid > 0 => Sender::Process(pid as u32),
      _ => Sender::Kernel,
    }
  }

  fn pack(self) -> u64 {
    match self {
      Sender::Process(pid) => (1 << 32) | pid as u64,
      Sender::Kernel => 2 << 32,
      Sender::Unknown => 3 << 32,
    }
  }

  fn unpack(packed: u64) -> Sender {
    match packed >> 32 {
      1 => Sender::Process(packed as u32),
      2 => Sender::Kernel,
      _ => Sender::Unknown,
    }
  }

  /// Signal context: `getpid` is async-signal-safe.
  fn is_self(self) -> bool {
    // SAFETY: getpid has no preconditions.
    self.is_process(unsafe { libc::getpid() })
  }

  /// Signal context: `getppid` is async-signal-safe.
  fn is_parent(self) -> bool {
    // SAFETY: getppid has no preconditions.
    self.is_process(unsafe { libc::getppid() })
  }

  /// Whether the sender is the process `pid`. A kill from outside our PID namespace carries pid 0, which
  /// names no process here (and `getppid` gives 0 to a process whose parent is outside it).
  fn is_process(self, pid: libc::pid_t) -> bool {
    matches!(self, Sender::Process(sender) if sender != 0 && sender as libc::pid_t == pid)
  }
}

/// The handler in every owned slot.
///
/// Signal context: it saves and restores `errno`, returns at once if this thread is already inside it (a
/// chain cycle), records the signal, exits on a second signal if asked to, wakes the watchdog, then calls
/// the handlers it chains to, from one snapshot of the chain.
pub extern "C" fn on_signal(signo: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  let saved_errno = errno::get();
  if let Some(_inside) = Reentry::enter()
    && let Some(slot) = slot_of(signo)
  {
    let owned = slot.is_owned();
    let seq = if owned {
      record(signo, slot, Sender::of(info))
    } else {
      0
    };
    if call_chain(slot.chain(), owned, signo, info, context) && seq > 0 {
      LIBUV_REACHED.fetch_max(seq, Ordering::AcqRel);
    }
  }
  errno::set(saved_errno);
}

/// Records an owned signal; returns its sequence number.
///
/// Signal context: atomics, `clock_gettime`, `getppid`, and on a second signal the exit.
fn record(signo: c_int, slot: &Slot, sender: Sender) -> u64 {
  let now = MonoTime::now();
  LAST_SIGNO.store(signo, Ordering::Release);
  let seq = RECORDED.fetch_add(1, Ordering::AcqRel) + 1;
  let escalate = ESCALATE.load(Ordering::Acquire);
  // The first signal too, for a shutdown that finished and exits (begun by stop({ exit: true })): JavaScript
  // may be busy in 'exit' listeners and never hear it.
  let finished = FINISHED_EXIT.load(Ordering::Acquire);
  if escalate && finished >= 0 {
    exit_after_finish(signo, finished);
  }
  if SIGNALLED.swap(true, Ordering::AcqRel) {
    if escalate && is_second_request(signo, sender, now) {
      exit_on_second_signal(signo);
    }
  } else {
    FIRST_SIGNO.store(signo, Ordering::Release);
    FIRST_SENDER.store(sender.pack(), Ordering::Release);
    FIRST_SIGNAL_NS.store(now.as_nanos().max(1), Ordering::Release);
  }
  slot.pending.fetch_add(1, Ordering::AcqRel);
  wake_watchdog();
  seq
}

/// Whether a signal that came after the first is a second request to stop (see the module docs).
///
/// Signal context: atomics, `getpid` and `getppid`.
fn is_second_request(signo: c_int, sender: Sender, now: MonoTime) -> bool {
  let first_ns = FIRST_SIGNAL_NS.load(Ordering::Acquire);
  if first_ns == 0 {
    // The first signal is still being recorded on another thread: the two arrived together.
    return false;
  }
  if signo == libc::SIGHUP && sender == Sender::Kernel {
    return false;
  }
  let first_sender = Sender::unpack(FIRST_SENDER.load(Ordering::Acquire));
  let first_signo = FIRST_SIGNO.load(Ordering::Acquire);
  let in_window = now.saturating_since(MonoTime::from_nanos(first_ns)) <= FORWARD_WINDOW;
  // A library relaying the first signal to this very process, shortly after it came from elsewhere:
  // signal-exit (under execa, write-file-atomic and others) sees no JavaScript listener but its own (the
  // manager adds none), runs its cleanup and raises the signal again to die by it. The same request, once;
  // any other signal this process sends itself after one from elsewhere is a second request.
  if sender.is_self() && !first_sender.is_self() {
    let relayed = signo == first_signo && in_window;
    return !relayed || SELF_RELAY_SEEN.swap(true, Ordering::AcqRel);
  }
  // The same signal from the other side of our parent, once: the parent's forwarded copy of what reached us
  // from elsewhere (the same signal, within the window); or, with the parent's first, the group's own signal
  // recorded after it (any signal, within the window), when the parent answered the same Ctrl-C before
  // this process got to it (two handler threads, or this process not scheduled).
  let other_side = sender != first_sender
    && in_window
    && (first_sender.is_parent() || (sender.is_parent() && signo == first_signo));
  if other_side && !FORWARDED_COPY_SEEN.swap(true, Ordering::AcqRel) {
    return false;
  }
  // The parent stopping us in its own shutdown, with whatever signal and whenever its turn for us comes,
  // after the group's signal began ours. Once too.
  let parent_stops_us = sender.is_parent() && sender != first_sender;
  if parent_stops_us && !PARENT_STOP_SEEN.swap(true, Ordering::AcqRel) {
    return false;
  }
  true
}

/// Calls each chained handler the way it asked to be called; returns whether libuv's handler was one.
///
/// Signal context.
fn call_chain(
  chain: &Chain,
  owned: bool,
  signo: c_int,
  info: *mut libc::siginfo_t,
  context: *mut libc::c_void,
) -> bool {
  let libuv = LIBUV_HANDLER.load(Ordering::Acquire);
  let skip_libuv = owned && libuv != 0 && EXCLUSIVE.load(Ordering::Acquire);
  let mut libuv_called = false;
  for action in chain.actions() {
    if action.sa_sigaction == libuv && libuv != 0 {
      if skip_libuv {
        continue;
      }
      libuv_called = true;
    }
    if action.sa_flags & libc::SA_SIGINFO != 0 {
      // SAFETY: chained handlers were accepted by `signals::is_chainable` (a real function, not SIG_DFL,
      // SIG_IGN or ours); with SA_SIGINFO the kernel ABI of `sa_sigaction` is the three-argument form.
      let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        unsafe { std::mem::transmute(action.sa_sigaction) };
      handler(signo, info, context);
    } else {
      // SAFETY: as above; without SA_SIGINFO the slot holds a one-argument `sa_handler`.
      let handler: extern "C" fn(c_int) = unsafe { std::mem::transmute(action.sa_sigaction) };
      handler(signo);
    }
  }
  libuv_called
}

/// A second request to stop: exits at once with the second-signal code. Never returns.
///
/// Signal context: see [`exit_with_line`].
fn exit_on_second_signal(signo: c_int) -> ! {
  let code = match SECOND_SIGNAL_EXIT.load(Ordering::Acquire) {
    c if c >= 0 => c,
    _ => 128 + signo,
  };
  exit_with_line(
    code,
    [
      b"titan-lifecycle: second ".as_slice(),
      name_of(signo).unwrap_or("signal").as_bytes(),
      b" during shutdown, exiting now with code ",
    ],
  )
}

/// A signal after the owner's shutdown finished, while the process exits: at once, with the shutdown's code
/// (its tasks are done; the signal only hurries what remains, a stop() caller's continuations or 'exit'
/// listeners). Never returns.
///
/// Signal context: see [`exit_with_line`].
fn exit_after_finish(signo: c_int, code: i32) -> ! {
  exit_with_line(
    code,
    [
      b"titan-lifecycle: ".as_slice(),
      name_of(signo).unwrap_or("signal").as_bytes(),
      b" after the shutdown finished, exiting now with its code ",
    ],
  )
}

/// Kills the tracked children, writes `parts` and `code` as one line, and `_exit`s with `code`.
///
/// Signal context: `children::kill_all` (atomics, `waitid(2)` and `kill(2)`); the line is assembled in a stack buffer
/// and written within a bounded budget (a stalled stderr cannot hold the exit), then `uv_tty_reset_mode`
/// and `_exit(2)`.
fn exit_with_line(code: i32, parts: [&[u8]; 3]) -> ! {
  children::kill_all(libc::SIGKILL);
  let mut line = [0u8; 128];
  let mut len = 0;
  for part in parts {
    len += copy_into(&mut line[len..], part);
  }
  len += write_decimal(&mut line[len..], code as u32);
  len += copy_into(&mut line[len..], b"\n");
  exit_write::write_stderr_bounded(&line[..len], exit_write::EXIT_WRITE_BUDGET);
  uv::reset_tty();
  // SAFETY: `_exit` is async-signal-safe and ends the process without running any user-space cleanup.
  unsafe { libc::_exit(code) }
}

/// Signal context: plain copying.
fn copy_into(dst: &mut [u8], src: &[u8]) -> usize {
  let n = src.len().min(dst.len());
  dst[..n].copy_from_slice(&src[..n]);
  n
}

/// Formats `value` in decimal without allocating. Signal context.
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

/// Threads currently inside [`on_signal`], by thread id (0 = free). It cuts chain cycles (a displacer that
/// chains back to us) without thread-local storage.
static ACTIVE_THREADS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// Waits (at most `patience`) until no thread is inside the handler: after a slot is given back, a signal
/// already being recorded on another thread has then been counted. Main thread.
pub fn wait_for_running_handlers(patience: Duration) {
  let give_up = MonoTime::now().saturating_add(patience);
  while ACTIVE_THREADS.iter().any(|t| t.load(Ordering::Acquire) != 0) && MonoTime::now() < give_up {
    std::thread::yield_now();
  }
}

/// Marks this thread as inside the handler for as long as it lives.
struct Reentry(Option<&'static AtomicUsize>);

impl Reentry {
  /// Returns `None` if this thread is already inside the handler (a chain cycle).
  ///
  /// Signal context: a syscall and atomics.
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

/// A number unique to the calling thread. Signal context: `gettid` is a raw syscall on Linux; elsewhere
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

  fn action(handler: usize) -> libc::sigaction {
    // SAFETY: zeroed sigaction; we only compare the handler field.
    let mut a: libc::sigaction = unsafe { std::mem::zeroed() };
    a.sa_sigaction = handler;
    a
  }

  fn handlers(chain: &Chain) -> Vec<usize> {
    chain.actions().iter().map(|a| a.sa_sigaction).collect()
  }

  #[test]
  fn the_chain_keeps_the_oldest_handler_when_full() {
    let mut chain = Chain::empty().with_newest(action(0x1000));
    for i in 1..6 {
      chain = chain.with_newest(action(0x1000 + i));
    }
    assert_eq!(
      handlers(&chain),
      vec![0x1005, 0x1004, 0x1003, 0x1000],
      "newest first, libuv's (the first) kept"
    );
    assert!(chain.contains(0x1003) && !chain.contains(0x1002));
    assert_eq!(chain.oldest().map(|a| a.sa_sigaction), Some(0x1000));
  }

  #[test]
  fn a_published_chain_is_read_whole() {
    let slot = Slot::new();
    assert_eq!(slot.chain().actions().len(), 0);
    slot.publish(Chain::empty().with_newest(action(0x10)).with_newest(action(0x20)));
    assert_eq!(handlers(slot.chain()), vec![0x20, 0x10]);
    slot.publish(Chain::empty());
    assert_eq!(slot.chain().actions().len(), 0);
  }

  #[test]
  fn an_equal_chain_is_published_once_however_often_the_signals_are_owned_again() {
    let slot = Slot::new();
    // What each ownership and each release publish: libuv's handler alone, with the C library's sigset_t
    // beyond the kernel's part left as garbage, differently each time (as `sigaction` leaves it).
    let libuv = |garbage: u8| {
      let mut a = action(0x10);
      a.sa_flags = libc::SA_RESTART;
      // SAFETY: sigfillset only writes the set.
      unsafe { libc::sigfillset(&mut a.sa_mask) };
      let bytes = std::mem::size_of::<libc::sigset_t>();
      if bytes > 8 {
        // SAFETY: within the set; the kernel reads only its first 8 bytes.
        unsafe { (&raw mut a.sa_mask).cast::<u8>().add(bytes - 1).write(garbage) };
      }
      a
    };
    for round in 0..=MAX_PUBLISHED_CHAINS {
      slot.publish(Chain::empty().with_newest(libuv(round as u8)));
      slot.publish(Chain::empty());
    }
    assert_eq!(slot.published().len(), 1);
    assert!(slot.may_publish(), "owning again uses up nothing");
    // A different chain (a displacer adopted in front) is a new one.
    slot.publish(Chain::empty().with_newest(libuv(0)).with_newest(action(0x20)));
    assert_eq!(slot.published().len(), 2);
    assert_eq!(handlers(slot.chain()), vec![0x20, 0x10]);
  }

  #[test]
  fn senders_round_trip_through_their_packed_form() {
    for sender in [
      Sender::Process(1),
      Sender::Process(u32::MAX >> 1),
      Sender::Kernel,
      Sender::Unknown,
    ] {
      assert_eq!(Sender::unpack(sender.pack()), sender);
    }
    assert_ne!(Sender::Process(5).pack(), Sender::Kernel.pack());
  }
}
