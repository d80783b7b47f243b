//! What one manager shares with the watchdog thread: its record, its deadline alarm, and the way back to
//! JavaScript.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{Deadline, MonoTime};
use crate::coordinator::Coordinator;
use crate::error::LifecycleError;
use crate::watchdog;

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
  /// Native code displaced our handler for `signo` and the guard took the slot back.
  Displaced { signo: i32, detail: String },
}

/// The way to JavaScript. The binding implements it with a weak threadsafe function, which never keeps the
/// process alive and never blocks the caller.
pub trait Notifier: Send + Sync {
  fn notify(&self, event: NativeEvent);
}

/// One manager's native state.
pub struct Session {
  record: Mutex<Coordinator>,
  /// The armed deadline in nanoseconds (0 = not armed), mirrored out of the record so the watchdog can read
  /// it without a lock.
  deadline_ns: AtomicU64,
  /// The code the watchdog exits with at the deadline; `None`: it only notifies (`hardExit: false`, or a
  /// worker thread). Fixed for the session's life.
  hard_exit_code: Option<i32>,
  /// The probe sent shortly before the deadline, and its answer.
  pub probe: Exchange,
  /// The deadline event, and JavaScript's answer once it has emitted its hard-exit events.
  pub deadline_event: Exchange,
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

  /// Notes that JavaScript is alive and calling in.
  pub fn touch(&self) {
    self
      .last_js_activity_ns
      .store(MonoTime::now().as_nanos(), Ordering::Relaxed);
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

  /// Arms the watchdog with `deadline` unless a deadline is already armed (a joined shutdown keeps its
  /// first deadline).
  pub fn arm(self: &Arc<Self>, deadline: Deadline) -> Result<(), LifecycleError> {
    let at = deadline.at().as_nanos().max(1);
    if self
      .deadline_ns
      .compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire)
      .is_ok()
    {
      self.probe.reset();
      self.deadline_event.reset();
      if let Err(err) = watchdog::watch(self.clone()) {
        self.deadline_ns.store(0, Ordering::Release);
        return Err(err);
      }
    }
    Ok(())
  }

  /// Stands the watchdog down for this session (a `stop()` that finished without exiting).
  pub fn disarm(&self) {
    self.deadline_ns.store(0, Ordering::Release);
  }

  pub fn armed_deadline(&self) -> Option<MonoTime> {
    nonzero_time(self.deadline_ns.load(Ordering::Acquire))
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

  fn reset(&self) {
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
    watchdog::wake();
  }

  pub fn answered(&self) -> Option<MonoTime> {
    nonzero_time(self.answered_ns.load(Ordering::Acquire))
  }
}

fn nonzero_time(ns: u64) -> Option<MonoTime> {
  (ns != 0).then(|| MonoTime::from_nanos(ns))
}
