//! One manager's shutdown record: its registered tasks, and the shutdown in progress or finished.
//!
//! The record is authoritative: the task graph refuses cycles, the plan decides which task may start, and it
//! remembers which task is running since when. JavaScript only calls handlers and reports how they ended. The
//! watchdog reads this record for the report it prints at a hard exit, and writes it in two places only: it
//! begins a shutdown for a signal JavaScript has not heard of, and brings the plan up to date before it
//! reports.

use std::time::Duration;

use crate::clock::{Deadline, MonoTime};
use crate::error::LifecycleError;
use crate::plan::{Cut, Outcome, Plan, Settled, TaskGraph, TaskSpec};

/// The manager's lifecycle, as `manager.state` reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
  Running,
  Stopping,
  Stopped,
}

impl State {
  /// The name JavaScript sees.
  pub fn as_str(self) -> &'static str {
    match self {
      State::Running => "running",
      State::Stopping => "stopping",
      State::Stopped => "stopped",
    }
  }
}

/// What set a shutdown off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
  /// One of the facade's `ShutdownReason` values.
  pub reason: String,
  /// The signal number, for signal-triggered shutdowns.
  pub signal: Option<i32>,
}

/// A shutdown in progress or finished.
#[derive(Debug)]
pub struct Run {
  pub trigger: Trigger,
  pub deadline: Deadline,
  pub plan: Plan,
  /// Whether JavaScript has picked the shutdown up and is running its tasks. A shutdown begun by a signal
  /// while the event loop is blocked stays unattached, and the hard-exit report says so. Until it attaches,
  /// tasks may still be registered: JavaScript could not have known of the signal.
  pub attached: bool,
  /// Tasks were registered or unregistered after the plan was frozen (before JavaScript attached).
  plan_stale: bool,
  /// The exit code the finished shutdown chose.
  pub exit_code: Option<i32>,
  /// JavaScript holds registrations it has not sent yet (see [`Coordinator::note_unsent_tasks`]): a
  /// shutdown that never reached JavaScript does not know them.
  pub unsent_tasks: bool,
}

/// How a call to [`Coordinator::begin`] went.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Begun {
  /// A new shutdown started.
  Started,
  /// A shutdown was already in progress; the caller joins it.
  Joined,
  /// The shutdown already finished.
  Finished,
}

/// The per-manager record.
#[derive(Default)]
pub struct Coordinator {
  graph: TaskGraph,
  run: Option<Run>,
  /// JavaScript holds registrations it sends at the end of its turn of the event loop (a burst crosses
  /// at once); a turn that never ends never sends them.
  unsent_tasks: bool,
}

impl Coordinator {
  /// A record with no task and no shutdown.
  pub fn new() -> Self {
    Self::default()
  }

  /// The lifecycle state.
  pub fn state(&self) -> State {
    match &self.run {
      None => State::Running,
      Some(run) if run.exit_code.is_none() => State::Stopping,
      Some(_) => State::Stopped,
    }
  }

  /// Tasks can change while no shutdown runs, and while one that a signal began natively has not reached
  /// JavaScript yet: a bootstrap still running synchronously when the signal came registers its tasks
  /// before it could have heard of the signal, and they belong to that shutdown.
  fn check_can_change_tasks(&self) -> Result<(), LifecycleError> {
    match &self.run {
      None => Ok(()),
      Some(run) if run.exit_code.is_some() => Err(LifecycleError::ShutdownCompleted),
      Some(run) if !run.attached => Ok(()),
      Some(_) => Err(LifecycleError::ShutdownInProgress),
    }
  }

  fn tasks_changed(&mut self) {
    if let Some(run) = self.run.as_mut() {
      run.plan_stale = true;
    }
  }

  /// JavaScript holds registrations it has not sent yet; the next [`Coordinator::register`] or
  /// [`Coordinator::register_many`] brings them.
  pub fn note_unsent_tasks(&mut self) {
    self.set_unsent_tasks(true);
  }

  /// The flag, and the shutdown's copy of it: tasks may still come between a signal's shutdown and
  /// JavaScript picking it up, and the report reads the copy.
  fn set_unsent_tasks(&mut self, unsent: bool) {
    self.unsent_tasks = unsent;
    if let Some(run) = self.run.as_mut() {
      run.unsent_tasks = unsent;
    }
  }

  /// Registers a task; see [`TaskGraph::register`]. Refused once JavaScript runs a shutdown.
  pub fn register(&mut self, spec: TaskSpec) -> Result<(), LifecycleError> {
    self.set_unsent_tasks(false);
    self.check_can_change_tasks()?;
    self.graph.register(spec)?;
    self.tasks_changed();
    Ok(())
  }

  /// Registers tasks in order, as [`Coordinator::register`] would one by one, and stops at the first error (the
  /// tasks before it stay registered). One lock and one plan invalidation for a burst of registrations.
  pub fn register_many(&mut self, specs: impl IntoIterator<Item = TaskSpec>) -> Result<(), LifecycleError> {
    self.set_unsent_tasks(false);
    self.check_can_change_tasks()?;
    let mut outcome = Ok(());
    for spec in specs {
      outcome = self.graph.register(spec);
      if outcome.is_err() {
        break;
      }
    }
    self.tasks_changed();
    outcome
  }

  /// How many tasks are registered.
  pub fn task_count(&self) -> usize {
    self.graph.len()
  }

  /// Makes room for `additional` more tasks (a burst `register_many` is about to bring).
  pub fn reserve_tasks(&mut self, additional: usize) {
    self.graph.reserve(additional);
  }

  /// Unregisters a task; returns whether it existed. Refused once JavaScript runs a shutdown.
  pub fn unregister(&mut self, id: &str) -> Result<bool, LifecycleError> {
    self.check_can_change_tasks()?;
    let removed = self.graph.unregister(id);
    self.tasks_changed();
    Ok(removed)
  }

  /// Freezes the plan again if tasks changed since the shutdown began (only possible before JavaScript
  /// attached). The watchdog calls it before its report, so the report lists every task.
  pub fn refresh_plan(&mut self) {
    if let Some(run) = self.run.as_mut()
      && run.plan_stale
    {
      run.plan = self.graph.plan();
      run.plan_stale = false;
    }
  }

  /// Begins the shutdown if none has begun: freezes the plan and fixes the deadline at `start + budget`.
  /// A later call joins the existing shutdown and leaves its trigger and deadline unchanged.
  pub fn begin(&mut self, trigger: Trigger, start: MonoTime, budget: Duration) -> Begun {
    match &self.run {
      Some(run) if run.exit_code.is_some() => Begun::Finished,
      Some(_) => Begun::Joined,
      None => {
        self.run = Some(Run {
          trigger,
          deadline: Deadline::new(start, budget),
          plan: self.graph.plan(),
          attached: false,
          plan_stale: false,
          exit_code: None,
          unsent_tasks: self.unsent_tasks,
        });
        Begun::Started
      }
    }
  }

  /// Hands the shutdown to JavaScript and starts it: returns the first tasks to run (recorded as running
  /// since `now`), or `None` if there is no shutdown or it is already attached.
  pub fn attach(&mut self, now: MonoTime) -> Option<Vec<u32>> {
    self.attach_without_starting().then(|| self.start_tasks(now))
  }

  /// Hands the shutdown to JavaScript without starting its tasks yet (a shutdown delay comes first): from
  /// now on tasks cannot change. Returns false if there is no shutdown or it is already attached.
  pub fn attach_without_starting(&mut self) -> bool {
    self.refresh_plan();
    match self.run.as_mut() {
      Some(run) if !run.attached && run.exit_code.is_none() => {
        run.attached = true;
        true
      }
      _ => false,
    }
  }

  /// Starts the attached shutdown's first tasks; returns them (recorded as running since `now`). Empty if
  /// they were started already.
  pub fn start_tasks(&mut self, now: MonoTime) -> Vec<u32> {
    match self.run.as_mut() {
      Some(run) if run.attached && run.exit_code.is_none() => run.plan.start(now),
      _ => Vec::new(),
    }
  }

  /// Cuts the stop phase short; see [`Plan::cut_stop_phase`].
  pub fn cut_stop_phase(&mut self, now: MonoTime) -> Option<Cut> {
    match self.run.as_mut() {
      Some(run) if run.attached && run.exit_code.is_none() => run.plan.cut_stop_phase(now),
      _ => None,
    }
  }

  /// Records how a task ended; see [`Plan::settle`].
  pub fn settle(&mut self, index: u32, outcome: Outcome, now: MonoTime) -> Option<Settled> {
    let run = self.run.as_mut()?;
    if run.exit_code.is_some() {
      return None;
    }
    run.plan.settle(index, outcome, now)
  }

  /// The handler of a task that timed out has ended; see [`Plan::handler_ended_late`].
  pub fn handler_ended_late(&mut self, index: u32, now: MonoTime) {
    if let Some(run) = self.run.as_mut() {
      run.plan.handler_ended_late(index, now);
    }
  }

  /// JavaScript begins calling the handlers of the tasks last handed out; see [`Plan::handlers_calling`].
  pub fn handlers_calling(&mut self, now: MonoTime) {
    if let Some(run) = self.run.as_mut() {
      run.plan.handlers_calling(now);
    }
  }

  /// JavaScript has called the handlers of the tasks last handed out; see [`Plan::handlers_called`].
  pub fn handlers_called(&mut self) {
    if let Some(run) = self.run.as_mut() {
      run.plan.handlers_called();
    }
  }

  /// Marks the shutdown finished with the exit code it chose. Returns false if there was none to finish.
  pub fn finish(&mut self, exit_code: i32) -> bool {
    match self.run.as_mut() {
      Some(run) if run.exit_code.is_none() => {
        run.exit_code = Some(exit_code);
        true
      }
      _ => false,
    }
  }

  /// The shutdown in progress or finished.
  pub fn run(&self) -> Option<&Run> {
    self.run.as_ref()
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::plan::{Phase, TaskStatus};

  fn spec(id: &str, priority: f64) -> TaskSpec {
    TaskSpec {
      id: id.into(),
      name: id.into(),
      priority,
      phase: Phase::Stop,
      depends_on: vec![],
    }
  }

  fn manual() -> Trigger {
    Trigger {
      reason: "manual".into(),
      signal: None,
    }
  }

  const BUDGET: Duration = Duration::from_millis(500);

  #[test]
  fn a_shutdown_moves_running_to_stopping_to_stopped() {
    let mut c = Coordinator::new();
    c.register(spec("a", 1.0)).unwrap();
    assert_eq!(c.state(), State::Running);
    assert_eq!(c.begin(manual(), MonoTime::now(), BUDGET), Begun::Started);
    assert_eq!(c.state(), State::Stopping);
    let ready = c.attach(MonoTime::now()).unwrap();
    assert_eq!(ready, vec![0]);
    assert!(c.settle(0, Outcome::Succeeded, MonoTime::now()).is_some());
    assert!(c.run().unwrap().plan.is_finished());
    assert!(c.finish(0));
    assert_eq!(c.state(), State::Stopped);
    assert!(!c.finish(1), "a shutdown finishes once");
    assert_eq!(c.run().unwrap().exit_code, Some(0));
  }

  #[test]
  fn a_burst_registers_in_order_and_stops_at_the_first_error() {
    let mut c = Coordinator::new();
    c.register_many([spec("a", 1.0), spec("b", 1.0)]).unwrap();
    let error = c
      .register_many([spec("c", 1.0), spec("a", 1.0), spec("d", 1.0)])
      .unwrap_err();
    assert_eq!(error.code(), "ERR_TASK_EXISTS");
    assert!(
      c.register(spec("c", 1.0)).is_err(),
      "the task before the error stays registered"
    );
    assert!(
      c.register(spec("d", 1.0)).is_ok(),
      "the tasks after it were not registered"
    );
    c.begin(manual(), MonoTime::now(), BUDGET);
    c.attach(MonoTime::now()).unwrap();
    assert_eq!(
      c.register_many([spec("e", 1.0)]).unwrap_err().code(),
      "ERR_SHUTDOWN_IN_PROGRESS"
    );
  }

  #[test]
  fn tasks_cannot_change_once_javascript_runs_the_shutdown() {
    let mut c = Coordinator::new();
    c.begin(manual(), MonoTime::now(), BUDGET);
    c.attach(MonoTime::now());
    assert_eq!(
      c.register(spec("a", 1.0)).unwrap_err().code(),
      "ERR_SHUTDOWN_IN_PROGRESS"
    );
    assert_eq!(c.unregister("a").unwrap_err().code(), "ERR_SHUTDOWN_IN_PROGRESS");
    c.finish(0);
    assert_eq!(
      c.register(spec("a", 1.0)).unwrap_err().code(),
      "ERR_SHUTDOWN_COMPLETED"
    );
  }

  #[test]
  fn a_second_begin_joins_and_keeps_the_first_trigger_and_deadline() {
    let mut c = Coordinator::new();
    let t0 = MonoTime::from_nanos(1_000_000);
    assert_eq!(
      c.begin(
        Trigger {
          reason: "SIGTERM".into(),
          signal: Some(15)
        },
        t0,
        BUDGET
      ),
      Begun::Started
    );
    let later = t0.saturating_add(Duration::from_millis(100));
    assert_eq!(c.begin(manual(), later, Duration::from_secs(60)), Begun::Joined);
    let run = c.run().unwrap();
    assert_eq!(run.trigger.reason, "SIGTERM");
    assert_eq!(run.deadline.at(), t0.saturating_add(BUDGET));
    c.finish(0);
    assert_eq!(c.begin(manual(), later, BUDGET), Begun::Finished);
  }

  #[test]
  fn attach_hands_the_first_tasks_over_once() {
    let mut c = Coordinator::new();
    assert_eq!(
      c.attach(MonoTime::now()),
      None,
      "nothing to attach before a shutdown"
    );
    c.register(spec("a", 1.0)).unwrap();
    c.register(spec("b", 2.0)).unwrap();
    c.begin(manual(), MonoTime::now(), BUDGET);
    assert!(!c.run().unwrap().attached);
    assert_eq!(c.run().unwrap().plan.tasks()[0].status, TaskStatus::Pending);
    assert_eq!(c.attach(MonoTime::now()), Some(vec![0]));
    assert_eq!(c.attach(MonoTime::now()), None);
  }

  #[test]
  fn tasks_registered_before_javascript_attached_belong_to_the_shutdown() {
    let mut c = Coordinator::new();
    c.register(spec("early", 1.0)).unwrap();
    let signal = Trigger {
      reason: "SIGTERM".into(),
      signal: Some(15),
    };
    assert_eq!(c.begin(signal, MonoTime::now(), BUDGET), Begun::Started);
    assert_eq!(c.state(), State::Stopping);
    // The bootstrap goes on synchronously: it could not have heard of the signal.
    c.register(spec("late", 0.5)).unwrap();
    c.register(spec("gone", 2.0)).unwrap();
    assert!(c.unregister("gone").unwrap());
    c.refresh_plan();
    let ids: Vec<&str> = c.run().unwrap().plan.tasks().iter().map(|t| &*t.id).collect();
    assert_eq!(
      ids,
      ["late", "early"],
      "the report sees the tasks as they are now"
    );
    assert_eq!(c.attach(MonoTime::now()), Some(vec![0]));
    assert_eq!(
      c.register(spec("too-late", 1.0)).unwrap_err().code(),
      "ERR_SHUTDOWN_IN_PROGRESS"
    );
  }

  #[test]
  fn a_shutdown_can_be_attached_before_its_tasks_start() {
    let mut c = Coordinator::new();
    c.register(spec("a", 1.0)).unwrap();
    c.begin(manual(), MonoTime::now(), BUDGET);
    assert!(c.attach_without_starting());
    assert!(!c.attach_without_starting(), "once");
    assert_eq!(
      c.register(spec("b", 1.0)).unwrap_err().code(),
      "ERR_SHUTDOWN_IN_PROGRESS",
      "JavaScript runs it: tasks are fixed"
    );
    assert!(!c.run().unwrap().plan.has_started());
    assert_eq!(c.start_tasks(MonoTime::now()), vec![0]);
    assert!(c.start_tasks(MonoTime::now()).is_empty());
  }

  #[test]
  fn settling_after_finish_is_ignored() {
    let mut c = Coordinator::new();
    c.register(spec("a", 1.0)).unwrap();
    c.begin(manual(), MonoTime::now(), BUDGET);
    c.attach(MonoTime::now());
    c.finish(124);
    assert!(c.settle(0, Outcome::Succeeded, MonoTime::now()).is_none());
    assert_eq!(c.run().unwrap().plan.tasks()[0].status, TaskStatus::Running);
  }
}
