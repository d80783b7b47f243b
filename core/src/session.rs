//! What one manager shares with the watchdog thread: its record, its deadline alarm, and the way back to
//! JavaScript.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Deadline, MonoTime, duration_as_nanos};
use crate::coordinator::Coordinator;
use crate::handler;
use crate::js_stack::{self, Purpose, ReportTarget};
use crate::signals;

/// Something the watchdog tells JavaScript. It never waits for an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum NativeEvent {
  /// An owned signal arrived; `at` is when the handler ran. `seq` is its sequence number when the watchdog
  /// tells of it (JavaScript drops the news if libuv told it already), `None` when libuv's callback does.
  Signal {
    signo: i32,
    at: MonoTime,
    seq: Option<u64>,
  },
  /// The deadline is near: JavaScript answers at once if its event loop is free. An unanswered probe
  /// tells the watchdog not to wait for JavaScript at the deadline.
  Probe,
  /// The shutdown's deadline passed.
  Deadline,
  /// While a shutdown runs: JavaScript answers (`answerStallProbe`) and reports a stall if the answer came
  /// later than the threshold.
  StallProbe,
  /// Native code displaced one of our handlers and the slot was taken back. Described (which asks the
  /// loader, under its lock) only on the main thread, where JavaScript hears of it: never on the watchdog,
  /// which a `dlopen` running a slow constructor on another thread would hold past a deadline.
  Displaced(signals::Displacement),
}

/// The way to JavaScript. The binding implements it with a weak threadsafe function, which never keeps the
/// process alive and never blocks the caller.
pub trait Notifier: Send + Sync {
  fn notify(&self, event: NativeEvent);
}

/// `Session::deadline_ns` while `set_deadline` resets what an earlier arming left: read as not armed yet.
const SETTING_DEADLINE: u64 = u64::MAX;

/// One manager's native state.
pub struct Session {
  record: Mutex<Coordinator>,
  /// The armed deadline in nanoseconds (0 = not armed, [`SETTING_DEADLINE`] = being armed), mirrored out of
  /// the record so the watchdog can read it without a lock.
  deadline_ns: AtomicU64,
  /// The code the watchdog exits with at the deadline; `None`: it only notifies (`hardExit: false`, or a
  /// worker thread). Fixed for the session's life.
  hard_exit_code: Option<i32>,
  /// The probe sent shortly before the deadline, and its answer.
  pub probe: Exchange,
  /// The deadline event, and JavaScript's answer once it has emitted its hard-exit events.
  pub deadline_event: Exchange,
  /// When the watchdog asked V8 for the stack of a loop that did not answer the probe (see `js_stack`).
  pub stack_capture: Exchange,
  /// When it asked again, for a loop that answered the probe but not, within half its grace, the deadline.
  pub late_stack_capture: Exchange,
  /// That request's generation in `js_stack`'s hard-exit slot (0: none).
  stack_generation: AtomicU64,
  /// Where the diagnostic report goes (`diagnosticReport`), if anywhere.
  report_target: Mutex<Option<ReportTarget>>,
  /// Stalls of the event loop while a shutdown runs (`stallThreshold`).
  pub stalls: StallWatch,
  /// The last time JavaScript called in, for the report's "last activity" figure.
  last_js_activity_ns: AtomicU64,
  /// The way to JavaScript, held only while something may need it. A threadsafe function keeps its
  /// JavaScript callback alive, and that callback keeps the manager (and so this session) alive: a cycle
  /// through a napi reference that the garbage collector cannot see. Dropping the notifier breaks it.
  notifier: Mutex<Option<Arc<dyn Notifier>>>,
}

impl Session {
  /// A session whose deadline ends the process with `hard_exit_code`, or only notifies if `None`.
  pub fn new(hard_exit_code: Option<i32>) -> Arc<Self> {
    Arc::new(Self {
      record: Mutex::new(Coordinator::new()),
      deadline_ns: AtomicU64::new(0),
      hard_exit_code,
      probe: Exchange::new(),
      deadline_event: Exchange::new(),
      stack_capture: Exchange::new(),
      late_stack_capture: Exchange::new(),
      stack_generation: AtomicU64::new(0),
      report_target: Mutex::new(None),
      stalls: StallWatch::new(),
      last_js_activity_ns: AtomicU64::new(0),
      notifier: Mutex::new(None),
    })
  }

  /// The record. A poisoned lock is taken anyway: the record stays consistent between calls, and refusing
  /// it would turn one bug into a shutdown that cannot finish.
  pub fn record(&self) -> MutexGuard<'_, Coordinator> {
    self
      .record
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// The record if it can be had without waiting.
  pub fn try_record(&self) -> Option<MutexGuard<'_, Coordinator>> {
    match self.record.try_lock() {
      Ok(guard) => Some(guard),
      Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
      Err(std::sync::TryLockError::WouldBlock) => None,
    }
  }

  /// Notes that JavaScript is alive and calling in: a call to the manager, or an answer to a probe (with a
  /// stall threshold, every [`StallWatch::PROBE_INTERVAL`] during a shutdown). The hard-exit report of a
  /// blocked loop says how long ago it last heard from JavaScript.
  pub fn touch(&self) {
    self.touch_at(MonoTime::now());
  }

  /// [`Session::touch`] with a time the caller has read already.
  pub fn touch_at(&self, now: MonoTime) {
    self.last_js_activity_ns.store(now.as_nanos(), Ordering::Relaxed);
  }

  pub fn last_js_activity(&self) -> Option<MonoTime> {
    nonzero_time(self.last_js_activity_ns.load(Ordering::Relaxed))
  }

  fn notifier_slot(&self) -> MutexGuard<'_, Option<Arc<dyn Notifier>>> {
    self
      .notifier
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// Whether a way to JavaScript is set.
  pub fn has_notifier(&self) -> bool {
    self.notifier_slot().is_some()
  }

  /// Sets the way to JavaScript, replacing any earlier one.
  pub fn set_notifier(&self, notifier: Arc<dyn Notifier>) {
    *self.notifier_slot() = Some(notifier);
  }

  /// Drops the way to JavaScript (see the field's docs for why it matters).
  pub fn clear_notifier(&self) {
    let dropped = self.notifier_slot().take();
    drop(dropped);
  }

  pub fn notify(&self, event: NativeEvent) {
    // Clone out of the lock: the call must not hold it (the notifier may be cleared meanwhile).
    let notifier = self.notifier_slot().clone();
    if let Some(notifier) = notifier {
      notifier.notify(event);
    }
  }

  pub fn hard_exit_code(&self) -> Option<i32> {
    self.hard_exit_code
  }

  /// Sets the deadline the watchdog enforces for this session, unless one is set already (a joined shutdown
  /// keeps its first deadline); returns whether it was set now. `watchdog::arm` sets it and puts the session
  /// on the watchdog's list, so this module does not know the watchdog.
  ///
  /// The deadline is claimed first with a value no clock reaches, and published only once the exchanges of
  /// an earlier arming are reset: a watchdog round reading the new deadline meanwhile would otherwise pair it
  /// with the old probe and deadline answers (and skip the probe, or the grace, of a short `stop()`).
  pub fn set_deadline(&self, deadline: Deadline) -> bool {
    let at = deadline.at().as_nanos().clamp(1, SETTING_DEADLINE - 1);
    let set = self
      .deadline_ns
      .compare_exchange(0, SETTING_DEADLINE, Ordering::AcqRel, Ordering::Acquire)
      .is_ok();
    if set {
      self.probe.reset();
      self.deadline_event.reset();
      self.stack_capture.reset();
      self.late_stack_capture.reset();
      self.stack_generation.store(0, Ordering::Release);
      self.deadline_ns.store(at, Ordering::Release);
    }
    set
  }

  /// Stands the watchdog down for this session (a `stop()` that finished without exiting). A stack request
  /// still pending is withdrawn: the interrupt must not run later in a process that carried on.
  pub fn disarm(&self) {
    self.deadline_ns.store(0, Ordering::Release);
    if let Some(generation) = self.stack_generation() {
      js_stack::abandon(Purpose::HardExit, generation);
    }
  }

  pub fn armed_deadline(&self) -> Option<MonoTime> {
    match self.deadline_ns.load(Ordering::Acquire) {
      SETTING_DEADLINE => None,
      ns => nonzero_time(ns),
    }
  }

  /// Records the generation of the hard exit's stack request.
  pub fn set_stack_generation(&self, generation: u64) {
    self.stack_generation.store(generation, Ordering::Release);
  }

  /// The hard exit's stack request, if one was made for the armed deadline.
  pub fn stack_generation(&self) -> Option<u64> {
    match self.stack_generation.load(Ordering::Acquire) {
      0 => None,
      generation => Some(generation),
    }
  }

  /// Where the hard exit writes Node's diagnostic report, if it does.
  pub fn report_target(&self) -> Option<ReportTarget> {
    self
      .report_target
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
      .clone()
  }

  pub fn set_report_target(&self, target: Option<ReportTarget>) {
    *self
      .report_target
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner()) = target;
  }
}

/// Watching the event loop for stalls while a shutdown runs: the watchdog sends a probe every
/// [`StallWatch::PROBE_INTERVAL`]; one unanswered for the threshold is a stall, whose stack the watchdog
/// asks V8 for; JavaScript reports it when the loop is back and answers.
pub struct StallWatch {
  /// The threshold a shutdown of this session watches with (`stallThreshold`), in nanoseconds; 0: none.
  configured_ns: AtomicU64,
  /// Whether a stall's stack may be asked for: only the main thread's isolate is known (see `v8`).
  capture_stack: AtomicBool,
  /// The threshold in nanoseconds; 0 while not watching.
  threshold_ns: AtomicU64,
  /// The probe in flight and its answer.
  pub probe: Exchange,
  /// The send time (ns) of the probe whose stall's stack was asked for, 0 if none: ties the request to
  /// one probe, so a request racing with the answer cannot pass for the next stall's.
  stack_for_probe_ns: AtomicU64,
  /// The generation of that request in `js_stack`'s stall slot (0: none made).
  stack_generation: AtomicU64,
  /// When the next probe goes out.
  next_probe_ns: AtomicU64,
}

impl StallWatch {
  /// How often the loop is probed while a shutdown runs: a stall's measured length falls short of the real
  /// one by at most this (it may have begun just after the previous answer).
  pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);

  const fn new() -> Self {
    Self {
      configured_ns: AtomicU64::new(0),
      capture_stack: AtomicBool::new(false),
      threshold_ns: AtomicU64::new(0),
      probe: Exchange::new(),
      stack_for_probe_ns: AtomicU64::new(0),
      stack_generation: AtomicU64::new(0),
      next_probe_ns: AtomicU64::new(0),
    }
  }

  /// Sets the threshold a shutdown watches with (`None`: it does not), and whether stall stacks are
  /// captured (main thread only).
  pub fn configure(&self, threshold: Option<Duration>, capture_stack: bool) {
    let ns = threshold.map_or(0, |t| duration_as_nanos(t).max(1));
    self.configured_ns.store(ns, Ordering::Release);
    self.capture_stack.store(capture_stack, Ordering::Release);
  }

  /// The configured threshold.
  pub fn configured(&self) -> Option<Duration> {
    match self.configured_ns.load(Ordering::Acquire) {
      0 => None,
      ns => Some(Duration::from_nanos(ns)),
    }
  }

  pub fn captures_stack(&self) -> bool {
    self.capture_stack.load(Ordering::Acquire)
  }

  /// Starts watching with `threshold`, or stops with `None`. The first probe goes out one interval from
  /// now: at the start of a shutdown the loop is busy starting the first tasks, and a probe sent into that
  /// would only cost them time.
  pub fn watch(&self, threshold: Option<Duration>) {
    self.probe.reset();
    self.forget_stack();
    self.next_probe_ns.store(
      MonoTime::now().saturating_add(Self::PROBE_INTERVAL).as_nanos(),
      Ordering::Release,
    );
    let ns = threshold.map_or(0, |t| duration_as_nanos(t).max(1));
    self.threshold_ns.store(ns, Ordering::Release);
  }

  /// The threshold while watching.
  pub fn threshold(&self) -> Option<Duration> {
    match self.threshold_ns.load(Ordering::Acquire) {
      0 => None,
      ns => Some(Duration::from_nanos(ns)),
    }
  }

  /// When the next probe is due.
  pub fn next_probe(&self) -> MonoTime {
    MonoTime::from_nanos(self.next_probe_ns.load(Ordering::Acquire))
  }

  /// Claims the asking for the stack of the stall of the probe sent at `sent`: true once per probe, and
  /// only while that probe is still the one in flight (watchdog only).
  pub fn claim_stack_request(&self, sent: MonoTime) -> bool {
    let claimed = self
      .stack_for_probe_ns
      .compare_exchange(0, sent.as_nanos(), Ordering::AcqRel, Ordering::Acquire)
      .is_ok();
    if !claimed {
      return false;
    }
    if self.probe.sent() == Some(sent) {
      return true;
    }
    // The loop answered and the probe was reset between the watchdog's look and its claim: a claim left
    // behind would make every later probe's claim fail, and the watchdog, whose next step is then always
    // due, would spin until the loop answered. Undone unless the main thread already cleared it (only the
    // watchdog sets it, so nothing else can have replaced it).
    let _ = self
      .stack_for_probe_ns
      .compare_exchange(sent.as_nanos(), 0, Ordering::AcqRel, Ordering::Acquire);
    false
  }

  /// Whether the stack of the probe sent at `sent` was asked for (or the asking claimed).
  pub fn stack_requested_for(&self, sent: MonoTime) -> bool {
    self.stack_for_probe_ns.load(Ordering::Acquire) == sent.as_nanos()
  }

  /// Records the generation of the stack request made for the current probe.
  pub fn set_stack_generation(&self, generation: u64) {
    self.stack_generation.store(generation, Ordering::Release);
  }

  /// The generation of the stack request for the probe sent at `sent`, if one was made for it.
  pub fn stack_generation_for(&self, sent: MonoTime) -> Option<u64> {
    if !self.stack_requested_for(sent) {
      return None;
    }
    match self.stack_generation.load(Ordering::Acquire) {
      0 => None,
      generation => Some(generation),
    }
  }

  fn forget_stack(&self) {
    self.stack_for_probe_ns.store(0, Ordering::Release);
    self.stack_generation.store(0, Ordering::Release);
  }

  /// The probe was answered and its stall (if any) reported: the next one goes out after the interval.
  pub fn next_cycle(&self, now: MonoTime) {
    self.forget_stack();
    self.next_probe_ns.store(
      now.saturating_add(Self::PROBE_INTERVAL).as_nanos(),
      Ordering::Release,
    );
    self.probe.reset();
    handler::wake_watchdog();
  }
}

/// One message from the watchdog to JavaScript and its answer: when each happened (0 = not yet).
#[derive(Default)]
pub struct Exchange {
  sent_ns: AtomicU64,
  answered_ns: AtomicU64,
}

impl Exchange {
  pub const fn new() -> Self {
    Self {
      sent_ns: AtomicU64::new(0),
      answered_ns: AtomicU64::new(0),
    }
  }

  pub(crate) fn reset(&self) {
    self.sent_ns.store(0, Ordering::Release);
    self.answered_ns.store(0, Ordering::Release);
  }

  /// Records that the message went out (only the first time counts); returns when it did.
  pub fn mark_sent(&self, now: MonoTime) -> MonoTime {
    match self
      .sent_ns
      .compare_exchange(0, now.as_nanos(), Ordering::AcqRel, Ordering::Acquire)
    {
      Ok(_) => now,
      Err(earlier) => MonoTime::from_nanos(earlier),
    }
  }

  pub fn sent(&self) -> Option<MonoTime> {
    nonzero_time(self.sent_ns.load(Ordering::Acquire))
  }

  /// Records JavaScript's answer (only the first counts) and wakes the watchdog.
  pub fn answer(&self) {
    let now = MonoTime::now().as_nanos();
    let _ = self
      .answered_ns
      .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
    handler::wake_watchdog();
  }

  pub fn answered(&self) -> Option<MonoTime> {
    nonzero_time(self.answered_ns.load(Ordering::Acquire))
  }
}

fn nonzero_time(ns: u64) -> Option<MonoTime> {
  (ns != 0).then(|| MonoTime::from_nanos(ns))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_claim_that_lost_the_race_with_the_answer_leaves_the_next_probe_claimable() {
    let stalls = StallWatch::new();
    stalls.watch(Some(Duration::from_millis(100)));
    let first = MonoTime::from_nanos(1_000);
    stalls.probe.mark_sent(first);
    // The loop answers and the next cycle begins between the watchdog's look at the probe and its claim.
    stalls.probe.answer();
    stalls.next_cycle(MonoTime::from_nanos(2_000));
    assert!(
      !stalls.claim_stack_request(first),
      "that probe is no longer in flight"
    );
    assert!(!stalls.stack_requested_for(first));
    let second = MonoTime::from_nanos(3_000);
    stalls.probe.mark_sent(second);
    assert!(
      stalls.claim_stack_request(second),
      "the next stall's stack can be asked for"
    );
    assert!(stalls.stack_requested_for(second));
    assert!(!stalls.claim_stack_request(second), "once per probe");
  }

  #[test]
  fn a_threshold_too_long_for_nanoseconds_saturates_rather_than_wrapping() {
    let stalls = StallWatch::new();
    // 2^64 ns + 1 ms: `as u64` would wrap it to 1 ms, and every probe would be a stall.
    let huge = Duration::from_nanos(u64::MAX) + Duration::from_millis(2);
    stalls.configure(Some(huge), false);
    assert_eq!(stalls.configured(), Some(Duration::from_nanos(u64::MAX)));
    stalls.watch(Some(huge));
    assert_eq!(stalls.threshold(), Some(Duration::from_nanos(u64::MAX)));
    stalls.configure(Some(Duration::ZERO), false);
    assert_eq!(
      stalls.configured(),
      Some(Duration::from_nanos(1)),
      "zero still means watching"
    );
  }
}
