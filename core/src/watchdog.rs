//! The watchdog thread: the part of the library that still acts while JavaScript is stuck.
//!
//! One std thread, started the first time a manager owns signals or arms a deadline (never at `require`).
//! It sleeps in `poll` on a non-blocking self-pipe that the signal handler and JavaScript write to, with a
//! timeout set by the nearest deadline and the guard period; only the guard's slow check may come late, so
//! the kernel can fold that wake-up into another (`guard::next_wake`, `set_timer_slack`). Each time it
//! wakes it:
//! 1. takes the signals the handler recorded. The first one begins the owner's shutdown right here, with the
//!    deadline counted from the instant the handler ran, and arms that deadline. JavaScript normally hears of
//!    the signal from libuv (see `main_loop`); if it has not within [`SIGNAL_FALLBACK_DELAY`] (libuv's handler
//!    was not reached, or `exclusiveSignals` skips it), the watchdog tells it;
//! 2. when the guard is due (see `guard`: every few seconds, often for a while after a displacement), takes
//!    back any signal slot that other native code displaced;
//! 3. for each armed session: [`PROBE_LEAD`] before its deadline, probes JavaScript (a no-op round trip);
//!    half way to the deadline, if the probe is still unanswered (the loop is busy), asks V8 for the
//!    JavaScript stack (`js_stack`), so it is in hand at the deadline; at the deadline, tells JavaScript, and
//!    if the probe was answered (the event loop is free) waits at most [`HARD_EXIT_GRACE`] for JavaScript
//!    to emit its hard-exit events (half way through, a loop that has not answered has blocked since the
//!    probe: its stack is asked for then); then writes the report to stderr within a bounded budget (`exit_write`)
//!    and `_exit`s. A blocked loop never answers the probe, so the exit is not delayed waiting for it;
//! 4. for each session whose shutdown is running with a stall threshold: probes the loop every
//!    `StallWatch::PROBE_INTERVAL`, and asks V8 for the stack of a loop that has not answered for the
//!    threshold; JavaScript reports the stall when it answers.
//!
//! Its only calls into V8 are `Isolate::RequestInterrupt`, which V8 documents as callable from any thread;
//! the stack is read on the main thread, inside the interrupt. It never waits on JavaScript beyond bounded
//! patience: notifications go through a weak, non-blocking threadsafe function.
//!
//! Thread-safety: this is an ordinary thread, not a signal handler, so it may allocate and lock. It holds
//! its own state lock to copy out of it and to work out its next wake-up (which reads `js_stack`'s
//! availability and systemd's next extension, each under a lock of its own that no holder of them keeps
//! while taking this one), never while taking a session's record lock, and at exit it
//! only *tries* the record lock for a few milliseconds, so nothing JavaScript does can delay an exit. The
//! other locks the hard exit takes are held by their other users only for a copy or one non-blocking call,
//! never across anything that can wait: `Session::report_target` (set or cloned), `v8`'s `MAIN_ISOLATE`
//! (an assignment, or one `RequestInterrupt`), and `js_stack`'s report target (the interrupt only tries it).
//! It does allocate at exit (`refresh_plan` under the record lock, `main_thread_state`'s `/proc` reads):
//! ordinary allocations on this thread, which could wait only on an allocator lock held by a thread stuck
//! inside malloc itself. The rendering and the writing of the report do not allocate (see `report`).

use std::ffi::c_int;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::clock::{Deadline, MonoTime};
use crate::coordinator::{Begun, Trigger};
use crate::error::LifecycleError;
use crate::guard::{self, GuardSchedule};
use crate::js_stack::{self, Progress, Purpose, ReportOutcome, ReportTarget};
use crate::main_thread::{self, MainThreadState};
use crate::report::{DiagnosticReport, FixedBuf, HardExitFacts, RecordView, Whereabouts, render_report};
use crate::session::{Exchange, NativeEvent, Session};
use crate::{children, exit_write, handler, signals, systemd, uv};

/// How long after the deadline the watchdog waits for a responsive JavaScript to emit its hard-exit events.
pub const HARD_EXIT_GRACE: Duration = Duration::from_millis(20);
/// How long before the deadline the watchdog probes whether the event loop is free. The stack of a loop
/// that has not answered is asked for half way to the deadline: V8 services the interrupt within a fraction
/// of a millisecond when the loop runs JavaScript.
pub const PROBE_LEAD: Duration = Duration::from_millis(20);
/// How long past the deadline the exit waits for Node's diagnostic report (`diagnosticReport`), which is
/// asked for at the deadline, once the exit is certain, and takes 5 to 10 ms to write.
pub const REPORT_PATIENCE: Duration = Duration::from_millis(250);
/// How long the main thread waits for the watchdog's exit once JavaScript began exiting on its own during a
/// hard exit (see `Manager::wait_for_hard_exit`): the diagnostic report's patience, the report's write
/// budget, and room for the watchdog to be scheduled on a busy machine.
pub const HARD_EXIT_WAIT: Duration = REPORT_PATIENCE
  .saturating_add(crate::exit_write::EXIT_WRITE_BUDGET)
  .saturating_add(Duration::from_millis(100));
/// How long the exit waits for stack frames the interrupt is reading at that moment (a few microseconds).
const FRAMES_PATIENCE: Duration = Duration::from_millis(5);
/// How long the exit path tries to read the record before reporting without it.
const RECORD_PATIENCE: Duration = Duration::from_millis(5);
/// How long after a signal whose chain did not reach libuv's handler the watchdog waits before telling
/// JavaScript itself: a handler further down the chain may still call libuv's (news that arrives twice is
/// dropped as stale). With `exclusiveSignals` it tells JavaScript at once.
pub const SIGNAL_FALLBACK_DELAY: Duration = Duration::from_millis(5);
/// How long `dispose()` waits for a signal being recorded on another thread as it gives the slots back.
const HANDLER_PATIENCE: Duration = Duration::from_millis(10);

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
  guard: GuardSchedule,
  /// A signal JavaScript is told of by the watchdog unless libuv told it first.
  fallback: Option<SignalFallback>,
  /// Sessions whose running shutdown is watched for stalls.
  stall_watched: Vec<Arc<Session>>,
  /// When the watchdog looks at these lists again after taking a signal: JavaScript that takes the shutdown
  /// up meanwhile registers its stall watch without waking it (see `wake_unless_due_soon`). It is the
  /// fallback's time, except with exclusive signals (no delay) or no owner (no fallback at all).
  look_again_at: Option<MonoTime>,
}

#[derive(Copy, Clone)]
struct SignalFallback {
  due: MonoTime,
  signo: c_int,
  at: MonoTime,
  /// The signal's sequence number (`handler::recorded` after it).
  seq: u64,
}

struct Watchdog {
  wake_read: c_int,
  state: Mutex<State>,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
static THREAD: OnceLock<()> = OnceLock::new();
/// Held while the watchdog is started. A failure is not kept: a manager made (or register's claimed) after
/// a passing shortage of descriptors or threads starts it then, rather than fail for the rest of the
/// process, which would leave it without a hard exit.
static STARTING: Mutex<()> = Mutex::new(());

fn started() -> Result<&'static Watchdog, LifecycleError> {
  if let (Some(watchdog), Some(())) = (WATCHDOG.get(), THREAD.get()) {
    return Ok(watchdog);
  }
  let unavailable = |what: String| LifecycleError::NativeUnavailable { what };
  let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
  let watchdog = match WATCHDOG.get() {
    Some(watchdog) => watchdog,
    None => {
      let created = create().map_err(unavailable)?;
      WATCHDOG.get_or_init(|| created)
    }
  };
  if THREAD.get().is_none() {
    std::thread::Builder::new()
      .name("titan-watchdog".into())
      .stack_size(256 * 1024)
      .spawn(move || run(watchdog))
      .map_err(|e| unavailable(format!("cannot start the watchdog thread: {e}")))?;
    let _ = THREAD.set(());
  }
  Ok(watchdog)
}

fn create() -> Result<Watchdog, String> {
  let fds = wake_pipe().map_err(|e| format!("cannot create the watchdog's wake pipe: {e}"))?;
  signals::set_wake_fd(fds[1]);
  Ok(Watchdog {
    wake_read: fds[0],
    state: Mutex::new(State::default()),
  })
}

/// The wake pipe: non-blocking (the signal handler must never block on a full pipe) and close-on-exec
/// (child processes must not inherit it), both set atomically where `pipe2` exists, so a child spawned on
/// another thread at the same moment cannot inherit it either.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn wake_pipe() -> std::io::Result<[c_int; 2]> {
  let mut fds = [0 as c_int; 2];
  // SAFETY: `fds` has room for the two descriptors pipe2 writes.
  if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
    return Err(std::io::Error::last_os_error());
  }
  Ok(fds)
}

/// Without `pipe2` (macOS), the flags are set one by one, each checked.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn wake_pipe() -> std::io::Result<[c_int; 2]> {
  let mut fds = [0 as c_int; 2];
  // SAFETY: `fds` has room for the two descriptors pipe writes.
  if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
    return Err(std::io::Error::last_os_error());
  }
  for fd in fds {
    // SAFETY: fcntl on descriptors we just created.
    let ok = unsafe {
      let flags = libc::fcntl(fd, libc::F_GETFL);
      flags >= 0
        && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        && libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
    };
    if !ok {
      let error = std::io::Error::last_os_error();
      // SAFETY: closing the descriptors we just created, once.
      unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
      }
      return Err(error);
    }
  }
  Ok(fds)
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

/// Arms `session` with `deadline` unless a deadline is already armed (a joined shutdown keeps its first):
/// sets it and puts the session on the watch list, which wakes the watchdog. Returns whether it armed it
/// now (false: the watchdog was not woken).
pub fn arm(session: &Arc<Session>, deadline: Deadline) -> Result<bool, LifecycleError> {
  if !session.set_deadline(deadline) {
    return Ok(false);
  }
  if let Err(err) = watch(session.clone()) {
    session.disarm();
    return Err(err);
  }
  Ok(true)
}

/// Wakes the watchdog to look at its lists, unless it wakes within milliseconds anyway: within
/// [`SIGNAL_FALLBACK_DELAY`] of a signal, the handler has woken it for the signal, and it looks again that
/// delay after taking it (`look_again_at`). On the way from a signal to the first task, a second
/// wake-up costs 40 to 60 µs. Reads no lock (the watchdog may be holding its own for that signal).
pub fn wake_unless_due_soon() {
  let signal_just_came = handler::first_signal_time()
    .is_some_and(|at| MonoTime::now().saturating_since(at) < SIGNAL_FALLBACK_DELAY);
  if !signal_just_came {
    wake();
  }
}

/// Adds a session whose deadline is armed to the watch list.
fn watch(session: Arc<Session>) -> Result<(), LifecycleError> {
  let watchdog = started()?;
  let mut state = watchdog.state();
  if !state.armed.iter().any(|s| Arc::ptr_eq(s, &session)) {
    state.armed.push(session);
  }
  drop(state);
  wake();
  Ok(())
}

/// Watches `session`'s event loop for stalls of `threshold` or more while its shutdown runs, or stops with
/// `None`. Without `wake`, the watchdog takes notice at its next wake-up, which the caller is about to cause.
pub fn watch_stalls(
  session: &Arc<Session>,
  threshold: Option<Duration>,
  wake_now: bool,
) -> Result<(), LifecycleError> {
  session.stalls.watch(threshold);
  let watchdog = started()?;
  let mut state = watchdog.state();
  state.stall_watched.retain(|s| !Arc::ptr_eq(s, session));
  if threshold.is_some() {
    state.stall_watched.push(session.clone());
  }
  drop(state);
  if wake_now {
    wake();
  }
  Ok(())
}

/// Makes `owner` the manager that receives signal-triggered shutdowns, or clears it.
pub fn set_signal_owner(owner: Option<SignalOwner>) -> Result<(), LifecycleError> {
  let watchdog = started()?;
  let mut state = watchdog.state();
  state.guard = match owner {
    Some(_) => GuardSchedule::starting(MonoTime::now()),
    None => GuardSchedule::default(),
  };
  state.owner = owner;
  // A fallback still pending was for the signal the previous owner heard (or will hear from `dispose()`):
  // a new owner whose handler counts start again must not be told of it as its own.
  state.fallback = None;
  drop(state);
  wake();
  Ok(())
}

/// The manager that owns the signals, if any.
pub fn owner() -> Option<SignalOwner> {
  let watchdog = WATCHDOG.get()?;
  watchdog.state().owner.clone()
}

fn run(watchdog: &'static Watchdog) {
  block_all_signals();
  report_panics_bounded();
  // Resolves the V8 functions the stack capture needs now, at load, off the main thread, so that a Node
  // without them is known (and reported) before any deadline.
  let _ = js_stack::availability();
  // The thread starts with the default slack; it changes only when the leeway does (a system call).
  let mut slack = Duration::ZERO;
  loop {
    let (timeout, leeway) = next_wake(watchdog, MonoTime::now());
    let (timeout, leeway) = timed_wait(timeout, leeway);
    if leeway != slack {
      set_timer_slack(leeway);
      slack = leeway;
    }
    // A timeout has nothing to drain: an idle wake-up makes no read that can only say EAGAIN.
    if wait_readable(watchdog.wake_read, timeout) {
      drain(watchdog.wake_read);
    }
    let tick = std::panic::catch_unwind(|| {
      take_signals(watchdog, MonoTime::now());
      tell_javascript_of_signals(watchdog, MonoTime::now());
      check_stalls(watchdog, MonoTime::now());
      check_deadlines(watchdog, MonoTime::now());
      // Last: its walk of the loader's list of objects (`uv::is_in_node`) takes the loader's lock for a
      // moment, and nothing of a deadline may wait behind it.
      guard(watchdog, MonoTime::now());
    });
    if tick.is_err() {
      exit_write::write_stderr_bounded(
        b"titan-lifecycle: internal error on the watchdog thread; it keeps running\n",
        exit_write::EXIT_WRITE_BUDGET,
      );
    }
  }
}

/// Reports a panic of this package's Rust code (any thread) in one bounded write to stderr. The default
/// hook writes with a blocking `write(2)`, which a stderr nobody reads would hold for ever: on the watchdog
/// thread, that would hold the hard exit that follows a panic in its report (see `hard_exit`). Set once,
/// when the watchdog starts; it is this package's own: every Rust addon has a standard library of its own.
fn report_panics_bounded() {
  std::panic::set_hook(Box::new(|info| {
    let mut text = FixedBuf::<1024>::new();
    let _ = writeln!(text, "titan-lifecycle: internal error: {info}");
    exit_write::write_stderr_bounded(text.as_bytes(), exit_write::EXIT_WRITE_BUDGET);
  }));
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

/// How long to sleep (`None`: until written to), and how much later the kernel may wake it.
fn next_wake(watchdog: &Watchdog, now: MonoTime) -> (Option<Duration>, Duration) {
  let state = watchdog.state();
  let guard = state.owner.is_some().then_some(&state.guard);
  let fallback = state.fallback.map(|f| f.due);
  // Past: served by the turn that just ran.
  let look_again = state.look_again_at.filter(|at| *at > now);
  let deadlines = state
    .armed
    .iter()
    .filter_map(|s| next_step(s, s.armed_deadline()?));
  // systemd's stop timeout, re-extended while the signal owner's shutdown runs (see `systemd`).
  let extensions = state
    .owner
    .as_ref()
    .and_then(|owner| systemd::next_extend(owner.session.armed_deadline()?));
  let stalls = state.stall_watched.iter().filter_map(|s| next_stall_step(s));
  let others = fallback
    .into_iter()
    .chain(look_again)
    .chain(deadlines)
    .chain(extensions)
    .chain(stalls)
    .min();
  let wake = guard::next_wake(guard, others);
  (wake.at.map(|at| at.saturating_since(now)), wake.leeway)
}

/// The most a timed `poll` may run late by the kernel's own reckoning (see [`ahead_of_kernel_slack`]).
const MAX_KERNEL_SLACK: Duration = Duration::from_millis(100);

/// How long to ask `poll` for, to wake by `timeout` although Linux lets it run late by its own estimate
/// of the precision wanted: 0.1% of the timeout, 0.5% in a niced process, up to 100 ms, whatever the timer
/// slack (`select_estimate_accuracy`). Asked for a whole 30 s, the wait that ends at a deadline's probe
/// would end 30 ms late, after the deadline itself; the wait of a niced process ended 5 ms past a 5 s one.
/// So a long wait is cut short by that much, and the rest is a second, short wait. Waits under 200 ms
/// (at most 1 ms late) are left as they are, so the stall probes' 50 ms do not wake the thread twice.
fn ahead_of_kernel_slack(timeout: Duration) -> Duration {
  let kernel_slack = kernel_slack(timeout);
  if kernel_slack < Duration::from_millis(1) {
    timeout
  } else {
    timeout - kernel_slack
  }
}

/// How late Linux may end a `poll` of `timeout` by its own estimate, in a niced process (the larger case).
fn kernel_slack(timeout: Duration) -> Duration {
  (timeout / 200).min(MAX_KERNEL_SLACK)
}

/// What `poll` is asked for, and the timer slack to set, to wake `timeout` from now and no later than
/// `leeway` after it (`next_wake`: the guard's check may come late, never past what is due after it). The
/// kernel adds its own estimate whatever the slack, so a leeway smaller than that estimate bounds nothing:
/// such a wait ends where the leeway would, with no leeway and ahead of the kernel's slack (the check
/// then comes at most `leeway` late; a wait that ends early is followed by a short one). Without a
/// leeway, a long wait ends ahead of the kernel's slack as well.
fn timed_wait(timeout: Option<Duration>, leeway: Duration) -> (Option<Duration>, Duration) {
  match timeout {
    Some(timeout) if leeway < kernel_slack(timeout) || leeway.is_zero() => (
      Some(ahead_of_kernel_slack(timeout.saturating_add(leeway))),
      Duration::ZERO,
    ),
    _ => (timeout, leeway),
  }
}

/// Lets the kernel wake this thread up to `leeway` after a timeout, together with a timer that fires
/// anyway (Linux's timer slack, per thread); zero restores the thread's default (50 µs unless the service
/// manager set another). Elsewhere timeouts are kept as they are.
fn set_timer_slack(leeway: Duration) {
  #[cfg(target_os = "linux")]
  {
    let nanos = leeway.as_nanos().min(libc::c_ulong::MAX as u128) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes a value and changes only this thread's timer slack; it cannot block.
    unsafe {
      libc::prctl(
        libc::PR_SET_TIMERSLACK,
        nanos,
        0 as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong,
      )
    };
  }
  #[cfg(not(target_os = "linux"))]
  let _ = leeway;
}

/// When the watchdog next has something to do for a session whose deadline is `at`.
fn next_step(session: &Session, at: MonoTime) -> Option<MonoTime> {
  match (session.probe.sent(), session.deadline_event.sent()) {
    (None, _) => Some(probe_time(at)),
    (Some(_), None) if wants_stack(session) => Some(capture_time(at)),
    (Some(_), None) => Some(at),
    (Some(_), Some(sent)) if wants_late_stack(session) => Some(late_capture_time(sent)),
    (Some(_), Some(sent)) if session.hard_exit_code().is_some() => Some(sent.saturating_add(HARD_EXIT_GRACE)),
    _ => None,
  }
}

/// Half way through the deadline's grace: a loop that answered the probe but has not answered the deadline
/// by then has blocked since (in a listener, an abort handler, a task's next step).
fn late_capture_time(deadline_sent: MonoTime) -> MonoTime {
  deadline_sent.saturating_add(HARD_EXIT_GRACE / 2)
}

/// Whether the stack of a loop that stopped answering after the probe is still to be asked for. Asked
/// then rather than with the deadline event: the interrupt would be serviced as JavaScript begins to handle
/// that event, before whatever blocks it. It replaces a capture from before the probe's answer.
fn wants_late_stack(session: &Session) -> bool {
  session.hard_exit_code().is_some()
    && session.probe.answered().is_some()
    && session.deadline_event.answered().is_none()
    && session.late_stack_capture.sent().is_none()
    && js_stack::availability().is_ok()
}

fn probe_time(deadline: MonoTime) -> MonoTime {
  MonoTime::from_nanos(deadline.as_nanos().saturating_sub(PROBE_LEAD.as_nanos() as u64))
}

/// Half way from the probe to the deadline: a loop that has not answered by then is busy.
fn capture_time(deadline: MonoTime) -> MonoTime {
  MonoTime::from_nanos(
    deadline
      .as_nanos()
      .saturating_sub(PROBE_LEAD.as_nanos() as u64 / 2),
  )
}

/// Whether the stack of a busy loop is still to be asked for: the probe is out and unanswered.
fn wants_stack(session: &Session) -> bool {
  session.hard_exit_code().is_some()
    && session.stack_capture.sent().is_none()
    && session.probe.answered().is_none()
    && js_stack::availability().is_ok()
}

/// When the watchdog next has something to do for a session watched for stalls.
fn next_stall_step(session: &Session) -> Option<MonoTime> {
  let threshold = session.stalls.threshold()?;
  match (session.stalls.probe.sent(), session.stalls.probe.answered()) {
    (None, _) => Some(session.stalls.next_probe()),
    (Some(sent), None) if !session.stalls.stack_requested_for(sent) => Some(sent.saturating_add(threshold)),
    _ => None,
  }
}

/// Sleeps until `fd` is readable or `timeout` passes; returns whether it may be readable (an interrupted
/// or failed wait says yes, so the caller drains rather than misses a wake-up).
fn wait_readable(fd: c_int, timeout: Option<Duration>) -> bool {
  let mut poll_fd = libc::pollfd {
    fd,
    events: libc::POLLIN,
    revents: 0,
  };
  #[cfg(target_os = "linux")]
  {
    // ppoll takes nanoseconds, so a deadline is not rounded up to the next millisecond.
    let ts = timeout.map(|d| libc::timespec {
      tv_sec: d.as_secs().min(i32::MAX as u64) as _,
      tv_nsec: d.subsec_nanos() as _,
    });
    let ts_ptr = ts
      .as_ref()
      .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one valid pollfd, an optional valid timespec, and no signal mask change.
    let ready = unsafe { libc::ppoll(&mut poll_fd, 1, ts_ptr, std::ptr::null()) };
    ready != 0
  }
  #[cfg(not(target_os = "linux"))]
  {
    let ms = timeout.map_or(-1, |d| {
      d.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int
    });
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, ms) };
    ready != 0
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

fn take_signals(watchdog: &Watchdog, now: MonoTime) {
  let mut pending: Vec<(c_int, u32)> = signals::take_pending().collect();
  if pending.is_empty() {
    return;
  }
  watchdog.state().look_again_at = Some(now.saturating_add(SIGNAL_FALLBACK_DELAY));
  // The signal that came first begins the shutdown (its reason), whatever the order of the slots.
  let first = handler::first_signal();
  pending.sort_by_key(|&(signo, _)| Some(signo) != first);
  let Some(owner) = watchdog.state().owner.clone() else {
    return;
  };
  for (signo, _count) in pending {
    let at = begin_for_signal(&owner, signo, now);
    // Normally JavaScript hears of the signal sooner through the pin (see `main_loop`). With exclusive
    // signals libuv's handler is skipped and the pin never fires, so tell it at once; otherwise give the pin
    // a few milliseconds, in case libuv's handler was not reached.
    let delay = if signals::is_exclusive() {
      Duration::ZERO
    } else {
      SIGNAL_FALLBACK_DELAY
    };
    watchdog.state().fallback = Some(SignalFallback {
      due: now.saturating_add(delay),
      signo,
      at,
      seq: handler::recorded(),
    });
  }
}

/// Tells JavaScript of a signal libuv did not tell it of in time. The news carries the signal's sequence
/// number, so JavaScript drops it if libuv's arrives first after all (see `handler::claim_delivery`).
fn tell_javascript_of_signals(watchdog: &Watchdog, now: MonoTime) {
  let due = {
    let mut state = watchdog.state();
    match state.fallback {
      Some(fallback) if now >= fallback.due => {
        state.fallback = None;
        state.owner.clone().map(|owner| (fallback, owner))
      }
      _ => None,
    }
  };
  if let Some((fallback, owner)) = due
    && !handler::libuv_reached(fallback.seq)
    && !handler::is_delivered(fallback.seq)
  {
    owner.session.notify(NativeEvent::Signal {
      signo: fallback.signo,
      at: fallback.at,
      seq: Some(fallback.seq),
    });
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
      if let Some(deadline) = deadline {
        systemd::stopping(reason_for(signo), deadline.at().saturating_since(now));
        if enforced {
          let _ = arm(&owner.session, deadline);
        }
      }
      signalled_at
    }
    Begun::Joined => now,
    // The shutdown finished without exiting (a `stop()`); JavaScript now exits, and the deadline still
    // covers a loop too blocked to do so.
    Begun::Finished => {
      if enforced {
        let _ = arm(&owner.session, Deadline::new(now, owner.budget));
      }
      now
    }
  }
}

fn guard(watchdog: &Watchdog, now: MonoTime) {
  let owner = {
    let state = watchdog.state();
    match &state.owner {
      Some(owner) if state.guard.is_due(now) => owner.clone(),
      _ => return,
    }
  };
  let displaced = signals::reassert(true);
  watchdog.state().guard.checked(now, !displaced.is_empty());
  // Described by JavaScript's thread (see `NativeEvent::Displaced`), not here.
  for displaced in displaced.into_iter().filter(|d| !d.node_internal) {
    owner.session.notify(NativeEvent::Displaced(displaced));
  }
}

/// The main loop's per-turn check found a displacement: the guard watches closely for a while, since the
/// code that made it may be a thread that does it again while the loop is idle. Main thread; not in a
/// signal handler.
pub fn displacement_seen() {
  let Some(watchdog) = WATCHDOG.get() else {
    return;
  };
  let mut state = watchdog.state();
  if state.owner.is_none() {
    return;
  }
  // The watchdog is woken if the next check comes sooner, or no longer late: a slow check already due
  // within the watchful period would otherwise be slept past by up to its leeway.
  let before = guard::next_wake(Some(&state.guard), None);
  state.guard.displacement_seen(MonoTime::now());
  let changed = guard::next_wake(Some(&state.guard), None) != before;
  drop(state);
  if changed {
    wake();
  }
}

fn check_stalls(watchdog: &Watchdog, now: MonoTime) {
  let watched = watchdog.state().stall_watched.clone();
  for session in watched {
    let Some(threshold) = session.stalls.threshold() else {
      watchdog
        .state()
        .stall_watched
        .retain(|s| !Arc::ptr_eq(s, &session));
      continue;
    };
    match session.stalls.probe.sent() {
      None if now >= session.stalls.next_probe() => {
        session.stalls.probe.mark_sent(now);
        session.notify(NativeEvent::StallProbe);
      }
      Some(sent)
        if session.stalls.probe.answered().is_none()
          && now >= sent.saturating_add(threshold)
          && session.stalls.claim_stack_request(sent)
          && session.stalls.captures_stack() =>
      {
        // The loop has not answered for the threshold: where is it? (JavaScript reads the answer.) Claimed
        // first, whether or not a stack can be had, so the watchdog does not wake for it again.
        if let Some(generation) = js_stack::request(Purpose::Stall, None) {
          session.stalls.set_stack_generation(generation);
        }
      }
      _ => {}
    }
  }
}

fn check_deadlines(watchdog: &Watchdog, now: MonoTime) {
  let (armed, owner) = {
    let state = watchdog.state();
    (
      state.armed.clone(),
      state.owner.as_ref().map(|o| o.session.clone()),
    )
  };
  for session in armed {
    let is_owner = owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, &session));
    let Some(at) = session.armed_deadline() else {
      forget(watchdog, &session, None);
      continue;
    };
    if is_owner {
      systemd::extend_if_due(at, now);
    }
    if now >= probe_time(at) && session.probe.sent().is_none() {
      session.probe.mark_sent(now);
      session.notify(NativeEvent::Probe);
    }
    if now >= capture_time(at) && wants_stack(&session) {
      ask_for_stack(&session, &session.stack_capture, now);
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
      forget(watchdog, &session, Some(at));
      continue;
    };
    // A loop that did not even answer the probe will not emit the hard-exit events either: do not wait.
    let loop_was_free = session.probe.answered().is_some();
    if now >= late_capture_time(sent) && wants_late_stack(&session) {
      ask_for_stack(&session, &session.late_stack_capture, now);
    }
    if !loop_was_free
      || session.deadline_event.answered().is_some()
      || now >= sent.saturating_add(HARD_EXIT_GRACE)
    {
      hard_exit(&session, code);
    }
  }
}

/// Asks V8 for the hard exit's stack, recorded in `asked` (the early or the late request). Marked as asked
/// whether or not the request can be made, so the watchdog does not wake for it again; without a
/// generation the report has no stack to print. A later request's generation replaces an earlier one's.
fn ask_for_stack(session: &Session, asked: &Exchange, now: MonoTime) {
  asked.mark_sent(now);
  if let Some(generation) = js_stack::request(Purpose::HardExit, None) {
    session.set_stack_generation(generation);
  }
}

/// Takes `session` off the watch list, unless its deadline has changed since it was read as `seen`: read
/// again under the state lock, which `watch` takes after arming. A session disarmed and armed again
/// meanwhile (a finished stop(), then a signal) found itself still listed in `watch` and was not added;
/// removed here after that, its new deadline was never enforced.
fn forget(watchdog: &Watchdog, session: &Arc<Session>, seen: Option<MonoTime>) {
  let mut state = watchdog.state();
  if session.armed_deadline() == seen {
    state.armed.retain(|s| !Arc::ptr_eq(s, session));
  }
}

/// Writes the report and ends the process. Never returns: a panic while reporting still ends in `_exit`
/// (unwinding into the watchdog's turn, it would try again every turn, a busy loop that never exits).
fn hard_exit(session: &Session, code: i32) -> ! {
  // The bounded waits below are kept to the default slack, whatever the guard's leeway was this turn.
  set_timer_slack(Duration::ZERO);
  let reported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| report_hard_exit(session, code)));
  if reported.is_err() {
    exit_write::write_stderr_bounded(
      b"titan-lifecycle: internal error writing the hard-exit report; exiting anyway\n",
      exit_write::EXIT_WRITE_BUDGET,
    );
  }
  uv::reset_tty();
  // SAFETY: `_exit` ends the process at once. `exit` would run C++ static destructors under a live V8 from
  // this side thread, which is a known crash.
  unsafe { libc::_exit(code) }
}

/// The hard exit's work before `_exit`: the tracked children killed, where the loop is stuck, the report.
fn report_hard_exit(session: &Session, code: i32) {
  // The tracked children first: whatever else this exit runs into, none of them outlives it.
  let children_killed = children::kill_all(libc::SIGKILL);
  // Where a blocked loop is stuck: the stack V8 captured, or what the main thread waits in; and, now that
  // the exit is certain, Node's diagnostic report if asked for. Bounded: 5 ms for frames being copied,
  // REPORT_PATIENCE for the report.
  // Blocked: it answered neither the probe nor the deadline, or it answered the probe and then stopped
  // answering (the deadline's grace ran out).
  let loop_blocked = session.deadline_event.answered().is_none();
  let stuck = if loop_blocked {
    settle_stack_capture(session)
  } else {
    Stuck::NotLooked
  };
  let report = match (&stuck, session.report_target()) {
    (Stuck::InJavaScript(_), Some(target)) => write_diagnostic_report(target),
    (_, Some(_)) if loop_blocked => DiagnosticReport::NeedsJavaScript,
    _ => DiagnosticReport::NotAsked,
  };
  // The plan first (a shutdown whose tasks were registered after it began, by a loop that then blocked,
  // plans them again here, in time that grows with their number), then the time the report gives: it says
  // how late the exit is, this work included.
  let mut record = try_record_for(session, RECORD_PATIENCE);
  if let Some(guard) = record.as_mut() {
    guard.refresh_plan();
  }
  let facts = HardExitFacts {
    now: MonoTime::now(),
    exit_code: code,
    probe_sent: session.probe.sent(),
    probe_answered: session.probe.answered(),
    deadline_sent: session.deadline_event.sent(),
    deadline_answered: session.deadline_event.answered(),
    grace: HARD_EXIT_GRACE,
    last_js_activity: session.last_js_activity(),
    children_killed,
    deadline: session.armed_deadline(),
  };
  let view = match &record {
    Some(guard) => RecordView::Read(guard.run()),
    None => RecordView::Busy,
  };
  let mut text = FixedBuf::<16384>::new();
  let rendered = match &stuck {
    Stuck::InJavaScript(generation) => js_stack::read(Purpose::HardExit, *generation, |capture| {
      let whereabouts = if capture.walked() {
        Whereabouts::JavaScript {
          frames: capture.frames(),
          deeper: capture.deeper(),
        }
      } else {
        Whereabouts::Unavailable(
          "no handle scope could be opened for V8's stack (the main environment is going away)",
        )
      };
      render_report(&mut text, view, &facts, &whereabouts, &report)
    })
    .is_some(),
    _ => false,
  };
  if !rendered {
    let whereabouts = match &stuck {
      Stuck::Outside(state) => Whereabouts::OutsideJavaScript(state),
      Stuck::Unavailable(why) => Whereabouts::Unavailable(why),
      Stuck::NotLooked | Stuck::InJavaScript(_) => Whereabouts::NotLooked,
    };
    render_report(&mut text, view, &facts, &whereabouts, &report);
  }
  // Bounded: a stderr nobody reads must not hold the exit.
  exit_write::write_stderr_bounded(text.as_bytes(), exit_write::EXIT_WRITE_BUDGET);
}

/// Where a blocked loop was found.
enum Stuck {
  NotLooked,
  /// In JavaScript: the frames are in the hard-exit slot under this generation.
  InJavaScript(u64),
  /// Outside JavaScript: what the kernel says the main thread does.
  Outside(MainThreadState),
  /// No stack can be had here; why.
  Unavailable(&'static str),
}

/// Brings the stack capture asked for before the deadline to an end: frames being copied are waited for
/// briefly; a request V8 never serviced is withdrawn, and the main thread's state read instead.
fn settle_stack_capture(session: &Session) -> Stuck {
  let Some(generation) = session.stack_generation() else {
    return match js_stack::availability() {
      Err(why) => Stuck::Unavailable(why),
      // Not asked for: the deadline came before the probe's lead (a very short one), or no request could
      // be made.
      Ok(()) => Stuck::NotLooked,
    };
  };
  let now = MonoTime::now();
  // V8 runs the interrupt within a fraction of a millisecond of a request while the loop runs JavaScript:
  // one still pending FRAMES_PATIENCE after it was made (the early one is 10 ms old at the deadline) finds
  // the loop outside JavaScript, and waiting longer only makes the exit late. Frames being copied get
  // FRAMES_PATIENCE from now.
  let asked_at = [session.stack_capture.sent(), session.late_stack_capture.sent()]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now);
  let pending_until = asked_at.saturating_add(FRAMES_PATIENCE);
  let until = now.saturating_add(FRAMES_PATIENCE);
  match js_stack::wait(Purpose::HardExit, generation, pending_until, until, true) {
    Progress::FramesIn | Progress::Done => Stuck::InJavaScript(generation),
    // Pending: V8 never ran the interrupt. Running after the patience: claimed but not finished in time;
    // say what the thread does rather than wait longer.
    Progress::Pending | Progress::Running | Progress::Gone => {
      js_stack::abandon(Purpose::HardExit, generation);
      Stuck::Outside(main_thread::main_thread_state())
    }
  }
}

/// Asks V8, at the deadline, for Node's diagnostic report, and waits for it at most [`REPORT_PATIENCE`].
/// Only for a loop found in JavaScript a moment ago, where the interrupt runs at once.
fn write_diagnostic_report(target: ReportTarget) -> DiagnosticReport<'static> {
  let Some(generation) = js_stack::request(Purpose::Report, Some(target)) else {
    return DiagnosticReport::Failed;
  };
  let until = MonoTime::now().saturating_add(REPORT_PATIENCE);
  js_stack::wait(Purpose::Report, generation, until, until, false);
  match js_stack::report_outcome(Purpose::Report, generation) {
    ReportOutcome::Written(path) => DiagnosticReport::Written(path.into()),
    ReportOutcome::Failed => DiagnosticReport::Failed,
    ReportOutcome::Unfinished => DiagnosticReport::Unfinished,
    ReportOutcome::NotWritten => {
      js_stack::abandon(Purpose::Report, generation);
      DiagnosticReport::NeedsJavaScript
    }
  }
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

/// Gives the signals back for `session`, which owns them: the handler leaves the slots, then a signal it
/// recorded that JavaScript has not heard of yet still begins (or joins) this session's shutdown, with its
/// deadline counted from the handler's timestamp. Returns that signal, which JavaScript must now run the
/// shutdown for: a signal received before `dispose()` is never lost. Main thread.
pub fn release_signal_owner(uv: &uv::Uv, session: &Arc<Session>) -> Option<c_int> {
  let owner = owner().filter(|owner| Arc::ptr_eq(&owner.session, session))?;
  // In this order: from here the watchdog begins nothing more for this owner; the handler leaves the slots;
  // a signal another thread was recording as that happened is counted; then whatever JavaScript has not
  // heard of is handed to it, with the shutdown begun as the watchdog would have.
  let _ = set_signal_owner(None);
  signals::release(uv);
  handler::wait_for_running_handlers(HANDLER_PATIENCE);
  let undelivered = handler::take_undelivered();
  if let Some(signo) = undelivered {
    begin_for_signal(&owner, signo, MonoTime::now());
  }
  undelivered
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_long_wait_that_must_be_on_time_ends_ahead_of_the_kernels_slack() {
    let ms = Duration::from_millis;
    // Short waits (the stall probes, the last steps to a deadline) are left alone.
    assert_eq!(ahead_of_kernel_slack(ms(50)), ms(50));
    assert_eq!(ahead_of_kernel_slack(ms(199)), ms(199));
    // 0.5% early: ahead of the 0.1% an ordinary process and the 0.5% a niced one may run late.
    assert_eq!(ahead_of_kernel_slack(ms(200)), ms(199));
    assert_eq!(ahead_of_kernel_slack(ms(5_000)), ms(4_975));
    assert_eq!(ahead_of_kernel_slack(ms(10_000)), ms(9_950));
    // The kernel never adds more than 100 ms (a 30 s wait, niced, would be 150).
    assert_eq!(ahead_of_kernel_slack(ms(30_000)), ms(29_900));
    assert_eq!(
      ahead_of_kernel_slack(Duration::from_secs(3_600)),
      Duration::from_secs(3_600) - ms(100)
    );
  }

  #[test]
  fn a_session_armed_again_after_it_was_read_disarmed_stays_watched() {
    let watchdog = Watchdog {
      wake_read: -1,
      state: Mutex::new(State::default()),
    };
    let session = Session::new(Some(124));
    watchdog.state().armed.push(session.clone());
    // The watchdog read the session disarmed; meanwhile it was armed again, and `watch` found it listed.
    assert!(session.set_deadline(Deadline::new(MonoTime::now(), Duration::from_secs(5))));
    forget(&watchdog, &session, None);
    assert_eq!(
      watchdog.state().armed.len(),
      1,
      "armed again, it is still watched"
    );
    // Read disarmed and still disarmed: taken off.
    session.disarm();
    forget(&watchdog, &session, None);
    assert!(watchdog.state().armed.is_empty());
  }

  #[test]
  fn a_wait_with_a_leeway_ends_within_it_whatever_the_kernel_adds() {
    let ms = Duration::from_millis;
    // The latest the kernel may end a wait of `wait` with timer slack `slack`: its own estimate or the slack.
    let latest = |wait: Duration, slack: Duration| wait + slack.max(kernel_slack(wait));
    for timeout in [
      ms(200),
      ms(1_000),
      ms(4_500),
      ms(30_000),
      Duration::from_secs(3_600),
    ] {
      for leeway in [ms(1), ms(10), ms(22), ms(23), ms(100), ms(500)] {
        let (wait, slack) = timed_wait(Some(timeout), leeway);
        let wait = wait.expect("a timeout stays a timeout");
        assert!(
          latest(wait, slack) <= timeout + leeway,
          "{timeout:?} with {leeway:?} of leeway may end {:?} late",
          latest(wait, slack) - timeout
        );
      }
    }
    // The guard's slow check (500 ms of leeway on a wait of seconds): the slack alone, one wake-up.
    assert_eq!(timed_wait(Some(ms(4_500)), ms(500)), (Some(ms(4_500)), ms(500)));
    // No leeway: ahead of the kernel's slack, as before.
    assert_eq!(
      timed_wait(Some(ms(5_000)), Duration::ZERO),
      (Some(ms(4_975)), Duration::ZERO)
    );
    assert_eq!(
      timed_wait(Some(ms(50)), Duration::ZERO),
      (Some(ms(50)), Duration::ZERO)
    );
    assert_eq!(timed_wait(None, Duration::ZERO), (None, Duration::ZERO));
  }
}
