//! The watchdog thread: the part of the library that still acts while JavaScript is stuck.
//!
//! One std thread, started the first time a manager owns signals or arms a deadline (never at `require`).
//! It sleeps in `poll` on a non-blocking self-pipe that the signal handler and JavaScript write to, with a
//! timeout set by the nearest deadline and the guard period. Each time it wakes it:
//! 1. takes the signals the handler recorded. The first one begins the owner's shutdown right here, with the
//!    deadline counted from the instant the handler ran, arms that deadline, then tells JavaScript;
//! 2. every [`GUARD_PERIOD`], takes back any signal slot that other native code displaced;
//! 3. for each armed session: [`PROBE_LEAD`] before its deadline, probes JavaScript (a no-op round trip);
//!    at the deadline, tells JavaScript, and if the probe was answered (the event loop is free) waits at most
//!    [`HARD_EXIT_GRACE`] for JavaScript to emit its hard-exit events; then writes the report to stderr and
//!    `_exit`s. A blocked loop never answers the probe, so the exit is not delayed waiting for it.
//!
//! It never calls into V8 and never waits on JavaScript beyond that bounded grace: notifications go through
//! a weak, non-blocking threadsafe function.
//!
//! Thread-safety: this is an ordinary thread, not a signal handler, so it may allocate and lock. It holds
//! its own state lock only to copy out of it, never while taking a session's record lock, and at exit it
//! only *tries* the record lock for a few milliseconds, so nothing JavaScript does can delay an exit.

use std::ffi::c_int;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::clock::{Deadline, MonoTime};
use crate::coordinator::{Begun, Trigger};
use crate::error::LifecycleError;
use crate::report::{FixedBuf, HardExitFacts, RecordView, write_report};
use crate::session::{NativeEvent, Session};
use crate::{signals, uv};

/// How often the guard checks that our handlers are still in their slots. About 0.05% of a core.
pub const GUARD_PERIOD: Duration = Duration::from_millis(200);
/// How long after the deadline the watchdog waits for a responsive JavaScript to emit its hard-exit events.
pub const HARD_EXIT_GRACE: Duration = Duration::from_millis(20);
/// How long before the deadline the watchdog probes whether the event loop is free.
pub const PROBE_LEAD: Duration = Duration::from_millis(20);
/// How long the exit path tries to read the record before reporting without it.
const RECORD_PATIENCE: Duration = Duration::from_millis(5);

/// The manager that owns the process signals.
#[derive(Clone)]
pub struct SignalOwner {
  pub session: Arc<Session>,
  /// Its `gracefulShutdownTimeout`: the budget of a signal-triggered shutdown.
  pub budget: Duration,
}

#[derive(Default)]
struct State {
  armed: Vec<Arc<Session>>,
  owner: Option<SignalOwner>,
  next_guard: Option<MonoTime>,
}

struct Watchdog {
  wake_read: c_int,
  state: Mutex<State>,
}

static WATCHDOG: OnceLock<Result<Watchdog, String>> = OnceLock::new();
static THREAD: OnceLock<Result<(), String>> = OnceLock::new();

fn started() -> Result<&'static Watchdog, LifecycleError> {
  let unavailable = |what: &String| LifecycleError::NativeUnavailable { what: what.clone() };
  let watchdog = WATCHDOG.get_or_init(create).as_ref().map_err(unavailable)?;
  THREAD
    .get_or_init(|| {
      std::thread::Builder::new()
        .name("titan-watchdog".into())
        .stack_size(256 * 1024)
        .spawn(move || run(watchdog))
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog thread: {e}"))
    })
    .as_ref()
    .map_err(unavailable)?;
  Ok(watchdog)
}

fn create() -> Result<Watchdog, String> {
  let mut fds = [0 as c_int; 2];
  // SAFETY: `fds` has room for the two descriptors pipe writes.
  if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
    return Err("cannot create the watchdog's wake pipe".into());
  }
  for fd in fds {
    // SAFETY: fcntl on descriptors we just created. Non-blocking: the handler must never block on a full
    // pipe. Close-on-exec: child processes must not inherit them.
    unsafe {
      libc::fcntl(
        fd,
        libc::F_SETFL,
        libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
      );
      libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
  }
  signals::set_wake_fd(fds[1]);
  Ok(Watchdog {
    wake_read: fds[0],
    state: Mutex::new(State::default()),
  })
}

impl Watchdog {
  fn state(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }
}

/// Wakes the watchdog to re-read its state. Async-signal-safe (one `write(2)`).
pub fn wake() {
  signals::wake_watchdog();
}

/// Adds a session whose deadline is armed to the watch list.
pub fn watch(session: Arc<Session>) -> Result<(), LifecycleError> {
  let watchdog = started()?;
  let mut state = watchdog.state();
  if !state.armed.iter().any(|s| Arc::ptr_eq(s, &session)) {
    state.armed.push(session);
  }
  drop(state);
  wake();
  Ok(())
}

/// Makes `owner` the manager that receives signal-triggered shutdowns, or clears it.
pub fn set_signal_owner(owner: Option<SignalOwner>) -> Result<(), LifecycleError> {
  let watchdog = started()?;
  let mut state = watchdog.state();
  state.next_guard = owner
    .as_ref()
    .map(|_| MonoTime::now().saturating_add(GUARD_PERIOD));
  state.owner = owner;
  drop(state);
  wake();
  Ok(())
}

/// The manager that owns the signals, if any.
pub fn owner() -> Option<SignalOwner> {
  let watchdog = WATCHDOG.get()?.as_ref().ok()?;
  watchdog.state().owner.clone()
}

fn run(watchdog: &'static Watchdog) {
  block_all_signals();
  loop {
    let timeout = next_wake(watchdog, MonoTime::now());
    wait_readable(watchdog.wake_read, timeout);
    drain(watchdog.wake_read);
    let tick = std::panic::catch_unwind(|| {
      take_signals(watchdog);
      guard(watchdog, MonoTime::now());
      check_deadlines(watchdog, MonoTime::now());
    });
    if tick.is_err() {
      signals::write_stderr(b"titan-lifecycle: internal error on the watchdog thread; it keeps running\n");
    }
  }
}

/// Signals go to the other threads: this one only sleeps, and an interrupted `poll` would only cost a turn.
fn block_all_signals() {
  // SAFETY: a zeroed sigset filled by sigfillset is valid; pthread_sigmask only changes this thread's mask.
  unsafe {
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
  }
}

fn next_wake(watchdog: &Watchdog, now: MonoTime) -> Option<Duration> {
  let state = watchdog.state();
  let guard = state.next_guard.filter(|_| state.owner.is_some());
  let deadlines = state
    .armed
    .iter()
    .filter_map(|s| next_step(s, s.armed_deadline()?));
  guard
    .into_iter()
    .chain(deadlines)
    .min()
    .map(|at| at.saturating_since(now))
}

/// When the watchdog next has something to do for a session whose deadline is `at`.
fn next_step(session: &Session, at: MonoTime) -> Option<MonoTime> {
  match (session.probe.sent(), session.deadline_event.sent()) {
    (None, _) => Some(probe_time(at)),
    (Some(_), None) => Some(at),
    (Some(_), Some(sent)) if session.hard_exit_code().is_some() => Some(sent.saturating_add(HARD_EXIT_GRACE)),
    _ => None,
  }
}

fn probe_time(deadline: MonoTime) -> MonoTime {
  MonoTime::from_nanos(deadline.as_nanos().saturating_sub(PROBE_LEAD.as_nanos() as u64))
}

fn wait_readable(fd: c_int, timeout: Option<Duration>) {
  let mut poll_fd = libc::pollfd {
    fd,
    events: libc::POLLIN,
    revents: 0,
  };
  #[cfg(target_os = "linux")]
  {
    // ppoll takes nanoseconds, so a deadline is not rounded up to the next millisecond.
    let ts = timeout.map(|d| libc::timespec {
      tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
      tv_nsec: d.subsec_nanos() as _,
    });
    let ts_ptr = ts
      .as_ref()
      .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one valid pollfd, an optional valid timespec, and no signal mask change.
    unsafe { libc::ppoll(&mut poll_fd, 1, ts_ptr, std::ptr::null()) };
  }
  #[cfg(not(target_os = "linux"))]
  {
    let ms = timeout.map_or(-1, |d| {
      d.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int
    });
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll_fd, 1, ms) };
  }
}

fn drain(fd: c_int) {
  let mut buf = [0u8; 64];
  // SAFETY: reading into a live stack buffer from our own non-blocking pipe; stops at EAGAIN.
  while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// The reason a signal-triggered shutdown reports, in the facade's `ShutdownReason` vocabulary.
fn reason_for(signo: c_int) -> &'static str {
  match signo {
    libc::SIGTERM => "SIGTERM",
    libc::SIGINT => "SIGINT",
    libc::SIGHUP => "SIGHUP",
    _ => "signal",
  }
}

fn take_signals(watchdog: &Watchdog) {
  let pending: Vec<(c_int, u32)> = signals::take_pending().collect();
  if pending.is_empty() {
    return;
  }
  let Some(owner) = watchdog.state().owner.clone() else {
    return;
  };
  for (signo, _count) in pending {
    let at = begin_for_signal(&owner, signo, MonoTime::now());
    // Normally JavaScript hears of the signal sooner through the pin (see `signal_reached_loop`); with
    // exclusive signals libuv's handler is skipped and the pin never fires, so tell it from here.
    if signals::is_exclusive() {
      owner.session.notify(NativeEvent::Signal { signo, at });
    }
  }
}

/// Begins the owner's shutdown for a signal that arrived, with its deadline counted from the instant the
/// handler ran, and arms the watchdog; or joins the shutdown already running. The watchdog thread calls it
/// for every signal the handler recorded, and the binding calls it when JavaScript hears of the signal
/// first: whichever comes first begins, the other joins. Returns the time the signal counts from.
pub fn begin_for_signal(owner: &SignalOwner, signo: c_int, now: MonoTime) -> MonoTime {
  let signalled_at = signals::first_signal_time().unwrap_or(now);
  let trigger = Trigger {
    reason: reason_for(signo).into(),
    signal: Some(signo),
  };
  let (begun, deadline) = {
    let mut record = owner.session.record();
    let begun = record.begin(trigger, signalled_at, owner.budget);
    (begun, record.run().map(|r| r.deadline))
  };
  let enforced = owner.session.hard_exit_code().is_some();
  // Arming cannot fail here: the watchdog runs (the owner was set through it).
  match begun {
    Begun::Started => {
      if let (true, Some(deadline)) = (enforced, deadline) {
        let _ = owner.session.arm(deadline);
      }
      signalled_at
    }
    Begun::Joined => now,
    // The shutdown finished without exiting (a `stop()`); JavaScript now exits, and the deadline still
    // covers a loop too blocked to do so.
    Begun::Finished => {
      if enforced {
        let _ = owner.session.arm(Deadline::new(now, owner.budget));
      }
      now
    }
  }
}

/// A direct way to JavaScript for signals that reach the main loop, set by the binding: it calls the
/// owner's JavaScript at once and returns true, or returns false to fall back to the owner's notifier.
pub type LoopSignalHook = fn(signo: c_int, at: MonoTime) -> bool;

/// The [`LoopSignalHook`] as a function address (0 = none).
static LOOP_SIGNAL_HOOK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets or clears the [`LoopSignalHook`]. Main thread only, like the pins whose callback uses it.
pub fn set_loop_signal_hook(hook: Option<LoopSignalHook>) {
  LOOP_SIGNAL_HOOK.store(
    hook.map_or(0, |h| h as usize),
    std::sync::atomic::Ordering::Release,
  );
}

/// libuv calls this on the main loop for each owned signal, through the pin, at the moment Node's own
/// signal listeners would run: the shortest way to JavaScript (it skips the hop through this thread).
///
/// # Safety
/// Only libuv calls it, on the main thread, with the pin's handle, which it does not touch.
pub unsafe extern "C" fn signal_reached_loop(_handle: *mut libc::c_void, signo: c_int) {
  let Some(owner) = owner() else { return };
  let at = signals::first_signal_time().unwrap_or_else(MonoTime::now);
  let hook = LOOP_SIGNAL_HOOK.load(std::sync::atomic::Ordering::Acquire);
  if hook != 0 {
    // SAFETY: the only values stored are `LoopSignalHook` function pointers (see `set_loop_signal_hook`).
    let hook: LoopSignalHook = unsafe { std::mem::transmute::<usize, LoopSignalHook>(hook) };
    if hook(signo, at) {
      return;
    }
  }
  owner.session.notify(NativeEvent::Signal { signo, at });
}

fn guard(watchdog: &Watchdog, now: MonoTime) {
  let owner = {
    let mut state = watchdog.state();
    match (&state.owner, state.next_guard) {
      (Some(owner), Some(next)) if now >= next => {
        let owner = owner.clone();
        state.next_guard = Some(now.saturating_add(GUARD_PERIOD));
        owner
      }
      _ => return,
    }
  };
  for displaced in signals::reassert() {
    let detail = format!(
      "native code replaced the {} handler with {}; ownership was restored{}",
      signals::name_of(displaced.signo).unwrap_or("signal"),
      describe_handler(displaced.handler),
      if displaced.chained {
        " and the new handler is chained after ours"
      } else {
        ""
      },
    );
    owner.session.notify(NativeEvent::Displaced {
      signo: displaced.signo,
      detail,
    });
  }
}

fn describe_handler(address: usize) -> String {
  if address == libc::SIG_DFL {
    return "SIG_DFL".into();
  }
  if address == libc::SIG_IGN {
    return "SIG_IGN".into();
  }
  // SAFETY: dladdr only reads loader tables; `info` is a valid out-parameter.
  let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
  let found = unsafe { libc::dladdr(address as *const libc::c_void, &mut info) } != 0;
  let text = |p: *const libc::c_char| {
    // SAFETY: dladdr fills these with null or NUL-terminated strings owned by the loader.
    (!p.is_null()).then(|| {
      unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
    })
  };
  match (found, text(info.dli_sname), text(info.dli_fname)) {
    (true, Some(symbol), Some(file)) => format!("{symbol} in {file}"),
    (true, None, Some(file)) => format!("{address:#x} in {file}"),
    _ => format!("{address:#x}"),
  }
}

fn check_deadlines(watchdog: &Watchdog, now: MonoTime) {
  let armed = watchdog.state().armed.clone();
  for session in armed {
    let Some(at) = session.armed_deadline() else {
      forget(watchdog, &session);
      continue;
    };
    if now >= probe_time(at) && session.probe.sent().is_none() {
      session.probe.mark_sent(now);
      session.notify(NativeEvent::Probe);
    }
    if now < at {
      continue;
    }
    let sent = match session.deadline_event.sent() {
      Some(sent) => sent,
      None => {
        let sent = session.deadline_event.mark_sent(now);
        session.notify(NativeEvent::Deadline);
        sent
      }
    };
    let Some(code) = session.hard_exit_code() else {
      forget(watchdog, &session);
      continue;
    };
    // A loop that did not even answer the probe will not emit the hard-exit events either: do not wait.
    let loop_was_free = session.probe.answered().is_some();
    if !loop_was_free
      || session.deadline_event.answered().is_some()
      || now >= sent.saturating_add(HARD_EXIT_GRACE)
    {
      hard_exit(&session, code);
    }
  }
}

fn forget(watchdog: &Watchdog, session: &Arc<Session>) {
  watchdog.state().armed.retain(|s| !Arc::ptr_eq(s, session));
}

/// Writes the report and ends the process. Never returns.
fn hard_exit(session: &Session, code: i32) -> ! {
  let facts = HardExitFacts {
    now: MonoTime::now(),
    exit_code: code,
    probe_sent: session.probe.sent(),
    probe_answered: session.probe.answered(),
    deadline_sent: session.deadline_event.sent(),
    deadline_answered: session.deadline_event.answered(),
    grace: HARD_EXIT_GRACE,
    last_js_activity: session.last_js_activity(),
  };
  let mut report = FixedBuf::<8192>::new();
  let record = try_record_for(session, RECORD_PATIENCE);
  let view = match &record {
    Some(guard) => RecordView::Read(guard.run()),
    None => RecordView::Busy,
  };
  let _ = write_report(&mut report, view, &facts);
  signals::write_stderr(report.as_bytes());
  uv::reset_tty();
  // SAFETY: `_exit` ends the process at once. `exit` would run C++ static destructors under a live V8 from
  // this side thread, which is a known crash.
  unsafe { libc::_exit(code) }
}

fn try_record_for(
  session: &Session,
  patience: Duration,
) -> Option<MutexGuard<'_, crate::coordinator::Coordinator>> {
  let give_up = MonoTime::now().saturating_add(patience);
  loop {
    if let Some(guard) = session.try_record() {
      return Some(guard);
    }
    if MonoTime::now() >= give_up {
      return None;
    }
    std::thread::sleep(Duration::from_micros(200));
  }
}
