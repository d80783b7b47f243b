//! One manager's native half: what the binding's `NativeShutdown` does beyond converting values, here so
//! that `cargo test` covers it. Beginning a shutdown that a signal may have begun on another thread,
//! settling tasks, finishing (and which stall ends with it), taking the signals (and undoing every step if
//! one fails), giving them back, and how long the way to JavaScript (the notifier) is kept.
//!
//! Not signal context: main thread (napi calls) only.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Deadline, MonoTime};
use crate::coordinator::{Begun, Trigger};
use crate::error::LifecycleError;
use crate::handler;
use crate::js_stack;
use crate::main_loop;
use crate::plan::{MissingDependency, Outcome};
use crate::session::Session;
use crate::signals::{self, Policy};
use crate::systemd;
use crate::uv::Uv;
use crate::watchdog::{self, SignalOwner};

/// How soon after the request a stall's stack must have been captured to be the stall's own: V8 runs the
/// interrupt within a fraction of a millisecond while the loop runs JavaScript.
const STALL_CAPTURE_PROMPTNESS: Duration = Duration::from_millis(50);

/// A shutdown JavaScript has taken over: what it needs to run it.
#[derive(Debug)]
pub struct Attached {
  pub reason: String,
  /// The owned signal that began it, if one did.
  pub signal: Option<c_int>,
  pub deadline: Deadline,
  /// For each task in plan order (indexes into the plan name tasks in `settle`), its position in the
  /// order of registration ([`crate::plan::Plan::registration_positions`]).
  pub registration_positions: Vec<u32>,
  /// Tasks to start now (none when the first tasks wait for a shutdown delay).
  pub ready: Vec<u32>,
  pub missing: Vec<MissingDependency>,
}

/// What settling a task led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Settlement {
  /// The task was not running (a late settle after a timeout, or after the shutdown finished).
  NotRunning,
  /// These tasks start now (already recorded as running).
  Start(Vec<u32>),
  /// Nothing starts: other tasks of its level still run.
  Nothing,
  /// It was the last: every task has settled.
  Finished,
}

/// A stall of the event loop that ended, as the loop's answer found it.
#[derive(Debug, PartialEq, Eq)]
pub struct StallEnded {
  pub blocked: Duration,
  /// Where the loop was, one `    at ...` line per frame; none outside JavaScript or without a prompt capture.
  pub stack: Option<String>,
  /// The ids of the tasks that ran through it.
  pub running: Vec<String>,
}

/// How a manager takes the signals.
pub struct SignalRequest<'a> {
  pub signals: &'a [c_int],
  /// `gracefulShutdownTimeout`: the budget of a shutdown a signal begins.
  pub budget: Duration,
  pub policy: Policy,
}

#[derive(Clone)]
pub struct Manager {
  session: Arc<Session>,
}

impl Manager {
  pub fn new(session: Arc<Session>) -> Self {
    Self { session }
  }

  pub fn session(&self) -> &Arc<Session> {
    &self.session
  }

  /// The signal owner, if it is this manager.
  pub fn signal_owner(&self) -> Option<SignalOwner> {
    watchdog::owner().filter(|owner| Arc::ptr_eq(&owner.session, &self.session))
  }

  /// Begins the shutdown, or takes over the one a signal began natively, and starts its first tasks unless
  /// `start_tasks` is false (a shutdown delay comes first).
  ///
  /// `signal`: the owned signal JavaScript was told of, if that is what started it. JavaScript and the
  /// watchdog race to begin such a shutdown; whichever gets here first, it counts from the instant the
  /// handler ran, and its deadline is armed once. A shutdown JavaScript already runs (or ran) is refused
  /// with `ShutdownRunning`.
  ///
  /// `facade_tasks`: how many tasks JavaScript holds. The plan names tasks by their position in the order
  /// of registration, which JavaScript's map of tasks keeps too; if the two ever disagreed on the count,
  /// positions would name the wrong handlers, so nothing begins (`TaskCountMismatch`).
  pub fn begin(
    &self,
    reason: String,
    budget: Duration,
    signal: Option<c_int>,
    start_tasks: bool,
    facade_tasks: usize,
    now: MonoTime,
  ) -> Result<Attached, LifecycleError> {
    self.session.touch();
    let native = self.session.record().task_count();
    if native != facade_tasks {
      return Err(LifecycleError::TaskCountMismatch {
        facade: facade_tasks,
        native,
      });
    }
    if let (Some(signo), Some(owner)) = (signal, self.signal_owner()) {
      watchdog::begin_for_signal(&owner, signo, now);
    }
    let mut record = self.session.record();
    let begun = record.begin(Trigger { reason, signal: None }, now, budget);
    let ready = if start_tasks {
      record.attach(now)
    } else {
      record.attach_without_starting().then(Vec::new)
    };
    let (Some(ready), Some(run)) = (ready, record.run()) else {
      return Err(LifecycleError::ShutdownRunning);
    };
    let attached = Attached {
      reason: run.trigger.reason.clone(),
      signal: run.trigger.signal,
      deadline: run.deadline,
      registration_positions: run.plan.registration_positions().to_vec(),
      ready,
      missing: run.plan.missing_dependencies().to_vec(),
    };
    drop(record);
    // The service is stopping when the manager that owns its signals shuts down, not when any other does
    // (a component's own manager, the warm-up's throwaway one).
    if begun == Begun::Started && self.signal_owner().is_some() {
      systemd::stopping(&attached.reason, attached.deadline.at().saturating_since(now));
    }
    // The shutdown is JavaScript's from here, whatever follows: a watchdog that cannot start (no thread, no
    // pipe) leaves the deadline to JavaScript's fallback timer, rather than refusing a shutdown that is
    // already attached (JavaScript would take it for one that never began).
    //
    // Stalls are watched from before the first task runs, so a task that blocks at once is watched too.
    // Registered before the deadline is armed, which wakes the watchdog once for both: a second wake, or
    // taking the watchdog's lock while that wake runs, costs the signal-to-first-task path 40 to 60 µs.
    let watches_stalls = self.session.stalls.configured().is_some();
    if watches_stalls {
      let _ = watchdog::watch_stalls(&self.session, self.session.stalls.configured(), false);
    }
    // A deadline already armed for a signal wakes nobody. The watchdog looks at its lists again 5 ms after
    // taking the signal, which sees this stall watch; JavaScript that comes later (its loop was busy) wakes
    // it, or it would not look until the guard's next check or the deadline's probe.
    let woken =
      self.session.hard_exit_code().is_some() && watchdog::arm(&self.session, attached.deadline) == Ok(true);
    if watches_stalls && !woken {
      watchdog::wake_unless_due_soon();
    }
    Ok(attached)
  }

  /// Tells systemd what the shutdown is doing (`STATUS=`), if this manager owns the signals and systemd
  /// listens.
  pub fn notify_status(&self, text: &str) {
    if self.signal_owner().is_some() {
      systemd::status(text);
    }
  }

  /// Starts the first tasks of a shutdown begun with `start_tasks: false`.
  pub fn start_tasks(&self, now: MonoTime) -> Vec<u32> {
    self.session.touch();
    self.session.record().start_tasks(now)
  }

  /// Records how a task ended. `calling_at_once`: JavaScript calls the handlers of the tasks this hands out
  /// right away, with nothing run in between (no event, no log line), so they are being called from now
  /// (see [`crate::plan::Plan::handlers_calling`]) without another call to say so.
  pub fn settle(&self, index: u32, outcome: Outcome, now: MonoTime, calling_at_once: bool) -> Settlement {
    self.session.touch_at(now);
    let mut record = self.session.record();
    let Some(settled) = record.settle(index, outcome, now) else {
      return Settlement::NotRunning;
    };
    if !settled.ready.is_empty() {
      if calling_at_once {
        record.handlers_calling(now);
      }
      Settlement::Start(settled.ready)
    } else if record.run().is_some_and(|r| r.plan.is_finished()) {
      Settlement::Finished
    } else {
      Settlement::Nothing
    }
  }

  /// The handler of a task that timed out has ended (see [`crate::plan::Plan::handler_ended_late`]).
  pub fn handler_ended_late(&self, index: u32, now: MonoTime) {
    self.session.record().handler_ended_late(index, now);
  }

  /// JavaScript begins calling the handlers of the tasks it was last handed (see
  /// [`crate::plan::Plan::handlers_calling`]).
  pub fn handlers_calling(&self, now: MonoTime) {
    self.session.record().handlers_calling(now);
  }

  /// JavaScript has called the handlers of the tasks it was last handed (see [`crate::plan::Plan::starting`]).
  pub fn handlers_called(&self) {
    self.session.record().handlers_called();
  }

  /// Ends the shutdown with `exit_code`. Unless the process is `exiting`, the deadline is disarmed and, for
  /// a manager that does not own the signals (nothing more can come from the watchdog), the way to
  /// JavaScript is let go. Returns a stall that ended with the shutdown (the last task blocked, then settled).
  pub fn finish(&self, exit_code: i32, exiting: bool) -> Option<StallEnded> {
    self.session.touch();
    let stall = self
      .session
      .stalls
      .threshold()
      .and_then(|_| self.stall_ended_now(MonoTime::now()));
    self.session.record().finish(exit_code);
    if exiting && self.signal_owner().is_some() {
      handler::shutdown_finished(exit_code);
    }
    if self.session.stalls.threshold().is_some() {
      let _ = watchdog::watch_stalls(&self.session, None, true);
    }
    if !exiting {
      self.session.disarm();
      if self.signal_owner().is_none() {
        self.session.clear_notifier();
      }
    }
    stall
  }

  /// A finished shutdown that did not exit is asked to exit after all (by one of its 'shutdown:complete'
  /// listeners, or a signal or `stop({ exit: true })` later): a signal from now on exits with `exit_code`,
  /// and the deadline it had is armed again, so that exit (which first lets a stop() caller's continuations
  /// run, and runs the 'exit' listeners) has the watchdog behind it. Returns false when that deadline has
  /// passed or the shutdown has none: JavaScript exits at once then.
  pub fn exit_after_finish(&self, exit_code: i32) -> bool {
    let Some(deadline) = self.session.record().run().map(|run| run.deadline) else {
      return false;
    };
    // Before the deadline's check: an exit after the deadline runs 'exit' listeners too, and a signal
    // during them is not a request to shut down (there is nothing left to shut down).
    if self.signal_owner().is_some() {
      handler::shutdown_finished(exit_code);
    }
    if deadline.at() <= MonoTime::now() {
      return false;
    }
    if self.session.hard_exit_code().is_some() {
      let _ = watchdog::arm(&self.session, deadline);
    }
    true
  }

  /// JavaScript is exiting on its own while the watchdog ends the process with its hard-exit report (user
  /// code at the deadline, or a 'shutdown:complete' listener, called `process.exit()`): the deadline is
  /// answered, so the watchdog writes the report now rather than at the end of its grace, and this (main)
  /// thread waits for it to end the process, for at most [`watchdog::HARD_EXIT_WAIT`]. Without the wait,
  /// the process would end with the report half written or not at all. It returns only if the watchdog
  /// has failed to exit, and JavaScript's exit goes on, with the code JavaScript set to the same one.
  pub fn wait_for_hard_exit(&self) {
    self.session.deadline_event.answer();
    std::thread::sleep(watchdog::HARD_EXIT_WAIT);
  }

  /// JavaScript answered the stall probe: the stall that ended, if the probe went unanswered for the
  /// threshold; the next probe is scheduled.
  pub fn answer_stall_probe(&self, now: MonoTime) -> Option<StallEnded> {
    self.session.touch_at(now);
    let stall = self.stall_ended_now(now);
    self.session.stalls.next_cycle(now);
    stall
  }

  /// The stall that the loop's answer ends at `now`, if the probe in flight went unanswered for the threshold.
  fn stall_ended_now(&self, now: MonoTime) -> Option<StallEnded> {
    let stalls = &self.session.stalls;
    let (Some(threshold), Some(sent)) = (stalls.threshold(), stalls.probe.sent()) else {
      return None;
    };
    let blocked = now.saturating_since(sent);
    if blocked < threshold {
      return None;
    }
    let stack = stalls.stack_generation_for(sent).and_then(|generation| {
      js_stack::abandon(js_stack::Purpose::Stall, generation);
      js_stack::read(js_stack::Purpose::Stall, generation, |capture| {
        // Captured promptly, it shows the stall; a late capture (V8 ran the interrupt only once the loop
        // was back in JavaScript after native code) shows what ran afterwards, and is dropped.
        let prompt = capture.requested() >= sent && capture.delay() <= STALL_CAPTURE_PROMPTNESS;
        (prompt && !capture.frames().is_empty()).then(|| {
          let mut stack = String::new();
          let _ = js_stack::write_frames(&mut stack, capture.frames(), capture.deeper(), "    ");
          stack.truncate(stack.trim_end().len());
          stack
        })
      })
      .flatten()
    });
    let running = self.session.record().run().map_or_else(Vec::new, |run| {
      run
        .plan
        .tasks()
        .iter()
        // Started before the probe went out (one started later did so once the loop was back), and its
        // handler not ended before it: a task that timed out counts while its handler goes on.
        .filter(|t| t.handler_running_at(sent))
        .map(|t| t.id.to_string())
        .collect()
    });
    Some(StallEnded {
      blocked,
      stack,
      running,
    })
  }

  /// Takes the signals for this manager: the watchdog's owner, the handler's policy, then the slots. If a
  /// step fails, the steps before it are undone, so a refused manager leaves the process as it found it.
  /// Taking them again as the owner changes nothing.
  ///
  /// # Safety
  /// Main thread only, with `event_loop` its live main loop (checked by the caller with
  /// [`Uv::is_main_loop`]): libuv's handles are started on it.
  pub unsafe fn own_signals(
    &self,
    uv: &'static Uv,
    event_loop: *mut c_void,
    request: SignalRequest<'_>,
  ) -> Result<(), LifecycleError> {
    if let Some(owner) = watchdog::owner() {
      return if Arc::ptr_eq(&owner.session, &self.session) {
        Ok(())
      } else {
        Err(LifecycleError::SignalsOwned)
      };
    }
    // What earlier owners received is forgotten before the watchdog, woken by the new owner, can take it
    // for this one's (a signal recorded as the last owner let go, already handed to it by its dispose()).
    // Nothing records meanwhile: no manager owns the slots.
    handler::reset_received();
    watchdog::set_signal_owner(Some(SignalOwner {
      session: self.session.clone(),
      budget: request.budget,
    }))?;
    signals::configure(request.policy);
    // SAFETY: the caller's contract: this is the main thread and `event_loop` its live loop.
    let owned = unsafe {
      signals::own(
        uv,
        event_loop,
        request.signals,
        main_loop::signal_reached_loop,
        main_loop::on_loop_turn,
      )
    };
    if let Err(err) = owned {
      signals::release(uv);
      let _ = watchdog::set_signal_owner(None);
      return Err(err);
    }
    Ok(())
  }

  /// Gives the signals back (to libuv, or Node's defaults); nothing if this manager does not own them.
  /// Returns a signal that arrived before and that JavaScript has not heard of: it has begun (or joined)
  /// this manager's shutdown natively, and JavaScript must run it. Without an armed deadline nothing more
  /// can come from the watchdog, and the way to JavaScript is let go.
  pub fn release_signals(&self, uv: Option<&'static Uv>) -> Option<c_int> {
    let undelivered = uv.and_then(|uv| watchdog::release_signal_owner(uv, &self.session));
    if self.session.armed_deadline().is_none() {
      self.session.clear_notifier();
    }
    undelivered
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::plan::{Phase, TaskSpec};
  use crate::session::{NativeEvent, Notifier};

  fn manager_with(ids: &[&str]) -> Manager {
    let manager = Manager::new(Session::new(None));
    for id in ids {
      manager
        .session()
        .record()
        .register(TaskSpec::new(id, id, 50.0, Phase::Stop, Vec::new()))
        .unwrap();
    }
    manager
  }

  const BUDGET: Duration = Duration::from_secs(5);

  #[test]
  fn a_shutdown_is_taken_over_once_and_a_second_begin_is_refused_not_answered_with_a_placeholder() {
    let manager = manager_with(&["a", "b"]);
    let now = MonoTime::now();
    let attached = manager
      .begin("manual".into(), BUDGET, None, true, 2, now)
      .unwrap();
    assert_eq!(attached.reason, "manual");
    assert_eq!(attached.registration_positions, [0, 1]);
    assert_eq!(attached.ready, [0, 1]);
    assert_eq!(attached.deadline.budget(), BUDGET);
    let again = manager.begin("manual".into(), BUDGET, None, true, 2, now);
    assert_eq!(again.unwrap_err(), LifecycleError::ShutdownRunning);
  }

  #[test]
  fn a_facade_that_counts_other_tasks_begins_nothing() {
    // The plan names tasks by position in the order of registration: with a different count, positions
    // could name the wrong handlers, so the shutdown is refused before anything begins.
    let manager = manager_with(&["a", "b"]);
    let refused = manager.begin("manual".into(), BUDGET, None, true, 3, MonoTime::now());
    assert_eq!(
      refused.unwrap_err(),
      LifecycleError::TaskCountMismatch { facade: 3, native: 2 }
    );
    assert_eq!(
      manager.session().record().state(),
      crate::coordinator::State::Running
    );
    assert!(
      manager
        .begin("manual".into(), BUDGET, None, true, 2, MonoTime::now())
        .is_ok()
    );
  }

  #[test]
  fn a_delayed_start_starts_nothing_until_asked() {
    let manager = manager_with(&["a"]);
    let attached = manager
      .begin("manual".into(), BUDGET, None, false, 1, MonoTime::now())
      .unwrap();
    assert!(attached.ready.is_empty());
    assert_eq!(manager.start_tasks(MonoTime::now()), [0]);
  }

  #[test]
  fn settling_says_what_starts_and_when_the_shutdown_is_done() {
    let manager = manager_with(&["a", "b"]);
    manager
      .session()
      .record()
      .register(TaskSpec::new("later", "later", 90.0, Phase::Stop, Vec::new()))
      .unwrap();
    let now = MonoTime::now();
    manager
      .begin("manual".into(), BUDGET, None, true, 3, now)
      .unwrap();
    assert_eq!(
      manager.settle(0, Outcome::Succeeded, now, true),
      Settlement::Nothing
    );
    assert_eq!(
      manager.settle(0, Outcome::Succeeded, now, true),
      Settlement::NotRunning
    );
    assert_eq!(
      manager.settle(1, Outcome::Failed, now, true),
      Settlement::Start(vec![2])
    );
    assert_eq!(
      manager.settle(2, Outcome::TimedOut, now, true),
      Settlement::Finished
    );
  }

  struct Counting(std::sync::atomic::AtomicUsize);
  impl Notifier for Counting {
    fn notify(&self, _event: NativeEvent) {
      self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
  }

  #[test]
  fn finishing_lets_go_of_the_way_to_javascript_unless_the_process_is_exiting() {
    let manager = manager_with(&["a"]);
    manager.session().set_notifier(Arc::new(Counting(0.into())));
    let now = MonoTime::now();
    manager
      .begin("manual".into(), BUDGET, None, true, 1, now)
      .unwrap();
    manager.settle(0, Outcome::Succeeded, now, true);
    assert_eq!(manager.finish(0, true), None);
    assert!(
      manager.session().has_notifier(),
      "an exiting process may still hear from the watchdog"
    );
    assert_eq!(manager.finish(0, false), None);
    assert!(
      !manager.session().has_notifier(),
      "nothing more can come: the notifier is let go"
    );
  }

  #[test]
  fn giving_back_signals_it_does_not_own_changes_nothing_but_lets_go_of_an_idle_notifier() {
    let manager = manager_with(&[]);
    manager.session().set_notifier(Arc::new(Counting(0.into())));
    assert_eq!(manager.release_signals(None), None);
    assert!(!manager.session().has_notifier());
  }
}
