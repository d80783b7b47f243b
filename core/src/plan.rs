//! The task graph, and the order a shutdown runs it in.
//!
//! The ordering contract (the README states the same):
//! - every `stop`-phase task settles before any `destroy`-phase task starts;
//! - within a phase, a task starts once every task with a lower priority number has settled, and once every
//!   task that lists it in `dependsOn` has settled: a dependent stops before what it depends on;
//! - everything else runs concurrently.
//!
//! So the pairs (phase, priority) form *levels* that run one after another, and inside a level the
//! dependency edges form a graph that runs in reverse dependency order.
//!
//! Cycles: a dependency may only name a task of the same level or a later one. If `a` depends on `b` but
//! `b`'s level is earlier, `b` must settle before `a` starts (levels) and after `a` settles (dependency): a
//! cycle made by priorities or phases against dependencies. Once every dependency points at the same level
//! or a later one, levels never decrease along a dependency path, so any remaining cycle lies inside one
//! level and is made of dependencies alone. Both kinds are refused at registration, as soon as both ends of
//! an edge exist, so a frozen [`Plan`] can never stall.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::MonoTime;
use crate::error::LifecycleError;
use crate::text::Quoted;

/// The most tasks a dependency cycle's message names (the first and the last of the loop).
const CYCLE_NAMES_SHOWN: usize = 12;

/// The two phases of a shutdown: stop accepting and drain, then release resources.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
  /// Runs first: stop accepting work, drain in-flight work.
  Stop,
  /// Runs once every stop task has settled: close pools, flush logs.
  Destroy,
}

impl Phase {
  fn label(self) -> &'static str {
    match self {
      Phase::Stop => "stop",
      Phase::Destroy => "destroy",
    }
  }
}

/// What the caller registers. Validation of JavaScript input happens in the facade; the core only relies on
/// `priority` being comparable, which `f64::total_cmp` guarantees for every value.
///
/// Ids and names are shared strings: the graph's index, the spec and a shutdown's plan hold one copy of
/// each, and a name equal to its id is the same string (most tasks), about 90 bytes less per task than
/// three separate copies.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
  pub id: Arc<str>,
  pub name: Arc<str>,
  pub priority: f64,
  pub phase: Phase,
  pub depends_on: Vec<String>,
}

impl TaskSpec {
  /// A spec whose name, when it equals the id, shares the id's string.
  pub fn new(id: &str, name: &str, priority: f64, phase: Phase, depends_on: Vec<String>) -> Self {
    let id: Arc<str> = id.into();
    let name = if name == &*id { id.clone() } else { name.into() };
    Self {
      id,
      name,
      priority,
      phase,
      depends_on,
    }
  }

  fn level(&self) -> Level {
    level(self.phase, self.priority)
  }
}

#[derive(Copy, Clone, Debug)]
struct Level {
  phase: Phase,
  priority: f64,
}

impl Level {
  fn cmp(&self, other: &Level) -> Ordering {
    self
      .phase
      .cmp(&other.phase)
      .then(self.priority.total_cmp(&other.priority))
  }
}

impl std::fmt::Display for Level {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "{} phase, priority {}", self.phase.label(), self.priority)
  }
}

/// A registered task as the graph keeps it. There is one per task for the life of the service, in a vector
/// with room to grow, so it is kept small: 48 bytes rather than the 80 of a [`TaskSpec`] and its sequence
/// number. A name equal to the id and an empty `dependsOn` (most tasks) cost nothing beyond one pointer.
struct Entry {
  id: Arc<str>,
  /// The name when it differs from the id, and the dependencies, for the tasks that have either.
  extra: Option<Box<EntryExtra>>,
  priority: f64,
  /// Registration order, the tie-break that keeps plans stable.
  seq: u64,
  phase: Phase,
}

// The size the comment above promises, on the 64-bit targets the package ships for.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Option<Entry>>() == 48);

struct EntryExtra {
  name: Arc<str>,
  depends_on: Vec<String>,
}

impl Entry {
  fn new(spec: TaskSpec, seq: u64) -> Self {
    let TaskSpec {
      id,
      name,
      priority,
      phase,
      depends_on,
    } = spec;
    let extra = (name != id || !depends_on.is_empty()).then(|| Box::new(EntryExtra { name, depends_on }));
    Self {
      id,
      extra,
      priority,
      seq,
      phase,
    }
  }

  fn name(&self) -> &Arc<str> {
    self.extra.as_ref().map_or(&self.id, |extra| &extra.name)
  }

  fn depends_on(&self) -> &[String] {
    self.extra.as_ref().map_or(&[], |extra| &extra.depends_on)
  }

  fn level(&self) -> Level {
    level(self.phase, self.priority)
  }
}

/// The level of a task in `phase` with `priority`. `+ 0.0` turns -0.0 into +0.0, which `total_cmp` would
/// otherwise order as different levels.
fn level(phase: Phase, priority: f64) -> Level {
  Level {
    phase,
    priority: priority + 0.0,
  }
}

/// The registered tasks, kept free of cycles.
#[derive(Default)]
pub struct TaskGraph {
  /// Slots are reused after `unregister`, so heavy churn keeps the memory flat.
  slots: Vec<Option<Entry>>,
  free_slots: Vec<usize>,
  by_id: HashMap<Arc<str>, usize>,
  /// For each id (registered or not yet), the slots of the tasks that list it in `dependsOn`. It lets a
  /// registration see the dependents that were registered before it.
  dependents: HashMap<String, Vec<usize>>,
  /// The same-level edges between registered tasks, in a topological order kept up to date as tasks come
  /// and go: it refuses a dependency cycle in time proportional to what the new edges touch.
  order: order::Order,
  next_seq: u64,
}

impl TaskGraph {
  /// An empty graph.
  pub fn new() -> Self {
    Self::default()
  }

  /// The number of registered tasks.
  pub fn len(&self) -> usize {
    self.by_id.len()
  }

  /// Whether no task is registered.
  pub fn is_empty(&self) -> bool {
    self.by_id.is_empty()
  }

  /// Whether a task with this id is registered.
  pub fn contains(&self, id: &str) -> bool {
    self.by_id.contains_key(id)
  }

  /// Makes room for `additional` more tasks, so a burst of registrations grows the index once.
  pub fn reserve(&mut self, additional: usize) {
    let reusable = self.free_slots.len();
    self.slots.reserve(additional.saturating_sub(reusable));
    self.by_id.reserve(additional);
  }

  /// Adds a task, refusing a duplicate id or any cycle it would close. On error nothing changes.
  pub fn register(&mut self, mut spec: TaskSpec) -> Result<(), LifecycleError> {
    // Most tasks depend on nothing and nothing waits for them: they can close no loop and break no level
    // rule, so only the id needs checking, with one lookup.
    if spec.depends_on.is_empty() && !self.dependents.contains_key(&*spec.id) {
      let std::collections::hash_map::Entry::Vacant(vacant) = self.by_id.entry(spec.id.clone()) else {
        return Err(LifecycleError::TaskExists {
          id: spec.id.to_string(),
        });
      };
      let slot = Self::take_slot(&mut self.slots, &mut self.free_slots);
      vacant.insert(slot);
      self.store(slot, spec);
      return Ok(());
    }
    if self.by_id.contains_key(&spec.id) {
      return Err(LifecycleError::TaskExists {
        id: spec.id.to_string(),
      });
    }
    dedup_preserving_order(&mut spec.depends_on);
    if spec.depends_on.iter().any(|dep| **dep == *spec.id) {
      return Err(cycle(&spec.id, format!("{} depends on itself", Quoted(&spec.id))));
    }
    self.check_levels(&spec)?;

    // After `check_levels`, only edges inside the task's own level can close a loop.
    let level = spec.level();
    let same_level = |slot: &usize| {
      self
        .entry(*slot)
        .is_some_and(|e| e.level().cmp(&level) == Ordering::Equal)
    };
    let dependencies: Vec<usize> = spec
      .depends_on
      .iter()
      .filter_map(|dep| self.by_id.get(dep.as_str()).copied())
      .filter(same_level)
      .collect();
    let dependents: Vec<usize> = self
      .dependents
      .get(&*spec.id)
      .map(|slots| slots.iter().copied().filter(same_level).collect())
      .unwrap_or_default();

    let slot = Self::take_slot(&mut self.slots, &mut self.free_slots);
    if let Err(path) = self.order.insert(slot, &dependents, &dependencies) {
      self.free_slots.push(slot);
      return Err(cycle(&spec.id, self.describe_loop(&spec, &path)));
    }
    for dep in &spec.depends_on {
      self.dependents.entry(dep.clone()).or_default().push(slot);
    }
    self.by_id.insert(spec.id.clone(), slot);
    self.store(slot, spec);
    Ok(())
  }

  /// A slot for a new task: a freed one, or a new one at the end. (Fields rather than `self`, so it can be
  /// called while the index is borrowed for an insert.)
  fn take_slot(slots: &mut Vec<Option<Entry>>, free_slots: &mut Vec<usize>) -> usize {
    free_slots.pop().unwrap_or_else(|| {
      slots.push(None);
      slots.len() - 1
    })
  }

  /// Puts `spec` in `slot` as the latest registration.
  fn store(&mut self, slot: usize, spec: TaskSpec) {
    self.slots[slot] = Some(Entry::new(spec, self.next_seq));
    self.next_seq += 1;
  }

  /// Removes a task; returns whether it was registered.
  pub fn unregister(&mut self, id: &str) -> bool {
    let Some(slot) = self.by_id.remove(id) else {
      return false;
    };
    if let Some(entry) = self.slots[slot].take() {
      for dep in entry.depends_on() {
        if let Some(list) = self.dependents.get_mut(dep) {
          list.retain(|&s| s != slot);
          if list.is_empty() {
            self.dependents.remove(dep);
          }
        }
      }
    }
    self.order.remove(slot);
    self.free_slots.push(slot);
    true
  }

  /// The work the cycle checks have done so far (edges visited, labels moved): tests use it to check that
  /// registration stays near linear for every graph shape.
  pub fn cycle_check_steps(&self) -> u64 {
    self.order.steps()
  }

  fn entry(&self, slot: usize) -> Option<&Entry> {
    self.slots.get(slot).and_then(Option::as_ref)
  }

  fn entry_of(&self, id: &str) -> Option<&Entry> {
    self.by_id.get(id).and_then(|&slot| self.entry(slot))
  }

  /// Refuses a dependency that points at an earlier level, in either direction of the new task's edges.
  fn check_levels(&self, spec: &TaskSpec) -> Result<(), LifecycleError> {
    let level = spec.level();
    for dep in &spec.depends_on {
      if let Some(target) = self.entry_of(dep)
        && target.level().cmp(&level) == Ordering::Less
      {
        return Err(cycle(
          &spec.id,
          backwards((&spec.id, level), (&target.id, target.level())),
        ));
      }
    }
    for &slot in self
      .dependents
      .get(&*spec.id)
      .map(Vec::as_slice)
      .unwrap_or_default()
    {
      if let Some(dependent) = self.entry(slot)
        && level.cmp(&dependent.level()) == Ordering::Less
      {
        return Err(cycle(
          &spec.id,
          backwards((&dependent.id, dependent.level()), (&spec.id, level)),
        ));
      }
    }
    Ok(())
  }

  /// Names a loop the new task would close: it depends on the first slot of `path`, each depends on the
  /// next, and the last depends on the new task.
  fn describe_loop(&self, spec: &TaskSpec, path: &[usize]) -> String {
    let mut ids: Vec<&str> = vec![&spec.id];
    ids.extend(path.iter().filter_map(|&s| self.entry(s)).map(|e| &*e.id));
    ids.push(&spec.id);
    let quoted = |ids: &[&str]| ids.iter().map(|id| Quoted(id).to_string()).collect::<Vec<_>>();
    let mut names = quoted(&ids);
    // A loop through 100 000 tasks made a message of a megabyte: its first and last tasks are named, and
    // the ones between counted.
    if ids.len() > CYCLE_NAMES_SHOWN {
      let head = CYCLE_NAMES_SHOWN / 2;
      let tail = CYCLE_NAMES_SHOWN - head;
      names = quoted(&ids[..head]);
      names.push(format!("… {} more …", ids.len() - CYCLE_NAMES_SHOWN));
      names.extend(quoted(&ids[ids.len() - tail..]));
    }
    format!(
      "it would make a dependency cycle: {} (each depends on the next)",
      names.join(" -> ")
    )
  }

  /// Freezes the registered tasks into the plan a shutdown runs.
  pub fn plan(&self) -> Plan {
    let mut live: Vec<&Entry> = self.slots.iter().flatten().collect();
    live.sort_by(|a, b| a.level().cmp(&b.level()).then(a.seq.cmp(&b.seq)));
    // Only dependencies need the index by id; most shutdowns have none, and hashing every id of a large
    // one is time taken between the signal and its first task.
    let index: HashMap<&str, u32> = if live.iter().any(|e| !e.depends_on().is_empty()) {
      live.iter().enumerate().map(|(i, e)| (&*e.id, i as u32)).collect()
    } else {
      HashMap::new()
    };

    let mut levels: Vec<Range<usize>> = Vec::new();
    let mut tasks: Vec<PlannedTask> = Vec::with_capacity(live.len());
    let mut missing = Vec::new();
    for (i, entry) in live.iter().enumerate() {
      let starts_level = i == 0 || live[i - 1].level().cmp(&entry.level()) != Ordering::Equal;
      if starts_level {
        levels.push(i..i);
      }
      if let Some(current) = levels.last_mut() {
        current.end = i + 1;
      }
      tasks.push(PlannedTask {
        id: entry.id.clone(),
        name: entry.name().clone(),
        level: levels.len() - 1,
        blockers: 0,
        unblocks: Vec::new(),
        status: TaskStatus::Pending,
        started: None,
        settled: None,
        handler_ended: None,
        awaiting_call: false,
      });
    }
    for (i, entry) in live.iter().enumerate() {
      for dep in entry.depends_on() {
        match index.get(dep.as_str()) {
          // Same level: the dependency waits for this task. A later level waits anyway.
          Some(&j) if tasks[j as usize].level == tasks[i].level => {
            tasks[i].unblocks.push(j);
            tasks[j as usize].blockers += 1;
          }
          Some(_) => {}
          None => missing.push(MissingDependency {
            task: entry.id.to_string(),
            depends_on: dep.clone(),
          }),
        }
      }
    }
    // Levels are ordered by phase first: the stop phase's levels come before the destroy phase's.
    let first_destroy_level = levels
      .iter()
      .position(|range| live[range.start].phase == Phase::Destroy)
      .unwrap_or(levels.len());
    // Where each planned task stands in the order the tasks were registered. Most plans keep that order
    // (one level), and sorting an already sorted list is one pass.
    let mut by_registration: Vec<u32> = (0..live.len() as u32).collect();
    by_registration.sort_unstable_by_key(|&i| live[i as usize].seq);
    let mut registration_positions = vec![0; live.len()];
    for (position, &i) in by_registration.iter().enumerate() {
      registration_positions[i as usize] = position as u32;
    }
    Plan {
      tasks,
      registration_positions,
      levels,
      first_destroy_level,
      current: 0,
      started: false,
      unsettled: 0,
      running: 0,
      missing,
      uncalled: Vec::new(),
      calling: false,
    }
  }
}

fn dedup_preserving_order(ids: &mut Vec<String>) {
  let mut seen = std::collections::HashSet::with_capacity(ids.len());
  ids.retain(|id| seen.insert(id.clone()));
}

fn cycle(id: &str, detail: String) -> LifecycleError {
  LifecycleError::TaskCycle {
    id: id.to_owned(),
    detail,
  }
}

/// Why `dependent` (an id and its level) cannot depend on `dependency`, whose level comes earlier.
fn backwards(dependent: (&str, Level), dependency: (&str, Level)) -> String {
  let ((dependent, dependent_level), (dependency, dependency_level)) = (dependent, dependency);
  let (dependent, dependency) = (Quoted(dependent), Quoted(dependency));
  format!(
    "{dependent} depends on {dependency}, so it must stop first, but {dependency} ({dependency_level}) is \
     ordered before {dependent} ({dependent_level})",
  )
}

/// Where a task stands in a shutdown. The discriminants are the codes JavaScript receives (`taskStates`),
/// which lib/run.js maps back to the names of [`TaskStatus::as_str`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TaskStatus {
  /// Not started yet.
  Pending = 0,
  /// Its handler was called and has not settled.
  Running = 1,
  /// Its handler returned or resolved.
  Succeeded = 2,
  /// Its handler threw or rejected.
  Failed = 3,
  /// It passed its own timeout and was abandoned (its AbortSignal aborted); its handler may still be
  /// running (see [`PlannedTask::overrunning`]).
  TimedOut = 4,
  /// It never started: the stop phase was cut short to keep time for the destroy phase.
  Skipped = 5,
}

impl TaskStatus {
  /// The name JavaScript sees in a result.
  pub fn as_str(self) -> &'static str {
    match self {
      TaskStatus::Pending => "pending",
      TaskStatus::Running => "running",
      TaskStatus::Succeeded => "succeeded",
      TaskStatus::Failed => "failed",
      TaskStatus::TimedOut => "timedOut",
      TaskStatus::Skipped => "skipped",
    }
  }
}

/// How a running task ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
  Succeeded,
  Failed,
  /// Its timeout passed while its handler was still running: the shutdown goes on without it, and the
  /// handler's work may go on too, until [`Plan::handler_ended_late`].
  TimedOut,
  /// Its handler ended, but only after its timeout (it kept the loop busy past it, so the timer could not
  /// fire first): timed out, with nothing of it left running.
  EndedLate,
}

/// A dependency naming a task that was never registered; it is ignored, and the facade warns about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingDependency {
  pub task: String,
  pub depends_on: String,
}

/// One task in a frozen plan, with the record of when it ran.
#[derive(Clone, Debug)]
pub struct PlannedTask {
  pub id: Arc<str>,
  pub name: Arc<str>,
  level: usize,
  /// Same-level dependents that have not settled yet.
  blockers: u32,
  /// Same-level dependencies this task holds back until it settles.
  unblocks: Vec<u32>,
  pub status: TaskStatus,
  pub started: Option<MonoTime>,
  pub settled: Option<MonoTime>,
  /// When its handler's work ended (it returned, resolved, rejected or threw). The same as `settled` but
  /// for a task that timed out: the shutdown went on without it, and its handler may still be running.
  handler_ended: Option<MonoTime>,
  /// Among [`Plan::starting`]: a flag, so the report at a hard exit need not search that list per task.
  awaiting_call: bool,
}

impl PlannedTask {
  /// Whether it is among the tasks last handed out whose handlers JavaScript has not said it called
  /// ([`Plan::starting`]).
  pub fn awaiting_call(&self) -> bool {
    self.awaiting_call
  }

  /// Whether it timed out and its handler has not ended: its work goes on past its timeout, so a loop
  /// blocked now may be blocked in it.
  pub fn overrunning(&self) -> bool {
    self.status == TaskStatus::TimedOut && self.handler_ended.is_none()
  }

  /// Whether its handler was running at `at`: called by then, and not ended by then (a task that timed out
  /// counts until its handler ends).
  pub fn handler_running_at(&self, at: MonoTime) -> bool {
    self.started.is_some_and(|s| s <= at) && self.handler_ended.is_none_or(|e| e > at)
  }

  /// How long its handler has run, for a task still running or [`overrunning`](Self::overrunning): from its
  /// start until `now`.
  pub fn running_for(&self, now: MonoTime) -> Duration {
    self
      .started
      .map_or(Duration::ZERO, |start| now.saturating_since(start))
  }

  /// How long the task ran: until it settled, or until `now` if it is still running.
  pub fn duration(&self, now: MonoTime) -> Duration {
    match (self.started, self.settled) {
      (Some(start), Some(end)) => end.saturating_since(start),
      (Some(start), None) => now.saturating_since(start),
      _ => Duration::ZERO,
    }
  }
}

/// A shutdown's frozen order and its live record: which task is running since when.
#[derive(Debug)]
pub struct Plan {
  tasks: Vec<PlannedTask>,
  /// Each task's position among the registered tasks in the order they were registered (see
  /// [`Plan::registration_positions`]).
  registration_positions: Vec<u32>,
  levels: Vec<Range<usize>>,
  /// The first level of the destroy phase (`levels.len()` if it has none).
  first_destroy_level: usize,
  current: usize,
  /// Whether [`Plan::start`] ran.
  started: bool,
  /// Tasks of the current level that have not settled.
  unsettled: usize,
  /// Tasks of the current level that are running.
  running: usize,
  missing: Vec<MissingDependency>,
  /// The tasks last handed out to start whose handlers JavaScript has not yet said it called (see
  /// [`Plan::handlers_called`]).
  uncalled: Vec<u32>,
  /// Whether JavaScript has begun calling the handlers of `uncalled` (see [`Plan::handlers_calling`]).
  calling: bool,
}

/// What [`Plan::cut_stop_phase`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Cut {
  /// Stop tasks that were running, now timed out.
  pub timed_out: Vec<u32>,
  /// Stop tasks that never started and never will.
  pub skipped: Vec<u32>,
  /// Destroy tasks to start now; they are already recorded as running.
  pub ready: Vec<u32>,
}

/// What settling a task produced.
#[derive(Debug, PartialEq)]
pub struct Settled {
  /// How long the settled task ran.
  pub duration: Duration,
  /// Tasks that may start now; they are already recorded as running.
  pub ready: Vec<u32>,
}

impl Plan {
  /// The tasks in plan order; a task's index here is how it is named in [`Plan::settle`].
  pub fn tasks(&self) -> &[PlannedTask] {
    &self.tasks
  }

  /// For each task in plan order, its position among the tasks this plan was made of, in the order they
  /// were registered: the facade keeps its tasks in that order too (a task registered again after its
  /// removal goes last in both), so it finds each one's handler by position rather than the ids crossing
  /// the boundary to be looked up again.
  pub fn registration_positions(&self) -> &[u32] {
    &self.registration_positions
  }

  /// Dependencies on unregistered ids, ignored by this plan.
  pub fn missing_dependencies(&self) -> &[MissingDependency] {
    &self.missing
  }

  /// The tasks last handed out to start (by [`Plan::start`], [`Plan::settle`] or
  /// [`Plan::cut_stop_phase`]) until JavaScript says it has called their handlers. It first emits the
  /// events of what came before (`shutdown:start`, the last task's end), then says it is calling them
  /// ([`Plan::handlers_calling`]) and calls them one after another, synchronously: a loop blocked in a
  /// listener has called none, one blocked in a handler some, and which only the loop's stack can say.
  /// Recorded as running all the same.
  pub fn starting(&self) -> &[u32] {
    &self.uncalled
  }

  /// Whether JavaScript has begun calling the handlers of [`Plan::starting`] (the listeners before them
  /// have run).
  pub fn calling(&self) -> bool {
    self.calling
  }

  /// JavaScript begins calling the handlers of the tasks last handed out, at `now`: their running time
  /// counts from here, not from when they were handed out (the listeners that ran in between are not
  /// theirs).
  pub fn handlers_calling(&mut self, now: MonoTime) {
    for &i in &self.uncalled {
      let task = &mut self.tasks[i as usize];
      task.started = task.started.map(|handed_out| handed_out.max(now));
    }
    self.calling = true;
  }

  /// JavaScript has called the handlers of the tasks last handed out. It does not say so for a task handed
  /// out alone: once it is calling that one, the loop is in it.
  pub fn handlers_called(&mut self) {
    for &i in &self.uncalled {
      self.tasks[i as usize].awaiting_call = false;
    }
    self.uncalled.clear();
    self.calling = false;
  }

  /// Hands `ready` out to start: JavaScript calls their handlers before anything settles.
  fn hand_out(&mut self, ready: Vec<u32>) -> Vec<u32> {
    self.handlers_called();
    for &i in &ready {
      self.tasks[i as usize].awaiting_call = true;
    }
    self.uncalled.clone_from(&ready);
    ready
  }

  /// Whether every task has settled.
  pub fn is_finished(&self) -> bool {
    self.current >= self.levels.len()
  }

  /// Starts the first level; returns the tasks to run now, recorded as running since `now`.
  pub fn start(&mut self, now: MonoTime) -> Vec<u32> {
    if self.started {
      return Vec::new();
    }
    self.started = true;
    let ready = self.enter_level(0, now);
    self.hand_out(ready)
  }

  /// Whether the first tasks were started (a shutdown delay may still be running when it has not).
  pub fn has_started(&self) -> bool {
    self.started
  }

  /// Ends the stop phase now, so the destroy phase gets the time that is left: stop tasks still running are
  /// recorded as timed out, those not started as skipped, and the destroy phase's first tasks start.
  /// Returns `None` if the stop phase is over already.
  pub fn cut_stop_phase(&mut self, now: MonoTime) -> Option<Cut> {
    if self.started && self.current >= self.first_destroy_level {
      return None;
    }
    self.started = true;
    let stop_tasks = 0..self
      .levels
      .get(self.first_destroy_level)
      .map_or(self.tasks.len(), |range| range.start);
    let mut cut = Cut::default();
    for (i, task) in self.tasks[stop_tasks].iter_mut().enumerate() {
      match task.status {
        TaskStatus::Running => {
          task.status = TaskStatus::TimedOut;
          task.settled = Some(now);
          cut.timed_out.push(i as u32);
        }
        TaskStatus::Pending => {
          task.status = TaskStatus::Skipped;
          cut.skipped.push(i as u32);
        }
        _ => {}
      }
    }
    self.running = 0;
    self.unsettled = 0;
    let ready = self.enter_level(self.first_destroy_level, now);
    cut.ready = self.hand_out(ready);
    Some(cut)
  }

  /// Records how a running task ended and returns the tasks that may start because of it. Returns `None` if
  /// the task is not running (already settled, timed out, or never started), so a late settle is harmless.
  pub fn settle(&mut self, index: u32, outcome: Outcome, now: MonoTime) -> Option<Settled> {
    let task = self.tasks.get_mut(index as usize)?;
    if task.status != TaskStatus::Running {
      return None;
    }
    task.status = match outcome {
      Outcome::Succeeded => TaskStatus::Succeeded,
      Outcome::Failed => TaskStatus::Failed,
      Outcome::TimedOut | Outcome::EndedLate => TaskStatus::TimedOut,
    };
    task.settled = Some(now);
    if outcome != Outcome::TimedOut {
      task.handler_ended = Some(now);
    }
    let duration = task.duration(now);
    let unblocks = std::mem::take(&mut task.unblocks);
    self.unsettled -= 1;
    self.running -= 1;

    let mut ready = Vec::new();
    for j in unblocks {
      let dep = &mut self.tasks[j as usize];
      dep.blockers -= 1;
      if dep.blockers == 0 && dep.status == TaskStatus::Pending {
        ready.push(j);
      }
    }
    for &j in &ready {
      self.mark_running(j, now);
    }
    if self.unsettled == 0 {
      ready.extend(self.enter_level(self.current + 1, now));
    } else if self.running == 0 {
      ready.extend(self.release_stalled_level(now));
    }
    if !ready.is_empty() {
      ready = self.hand_out(ready);
    }
    Some(Settled { duration, ready })
  }

  /// The handler of a task that timed out (by its own timeout or a cut stop phase) has ended at `now`.
  /// Anything else is ignored: JavaScript says so for every late end, and a late end is harmless.
  pub fn handler_ended_late(&mut self, index: u32, now: MonoTime) {
    if let Some(task) = self.tasks.get_mut(index as usize)
      && task.overrunning()
    {
      task.handler_ended = Some(now);
    }
  }

  fn enter_level(&mut self, level: usize, now: MonoTime) -> Vec<u32> {
    self.current = level;
    let Some(range) = self.levels.get(level).cloned() else {
      return Vec::new();
    };
    self.unsettled = range.len();
    let ready: Vec<u32> = range
      .filter(|&i| self.tasks[i].blockers == 0)
      .map(|i| i as u32)
      .collect();
    for &i in &ready {
      self.mark_running(i, now);
    }
    if ready.is_empty() {
      return self.release_stalled_level(now);
    }
    ready
  }

  /// Unreachable while registration refuses cycles; kept as a named fallback so a bug there degrades to
  /// "run the rest of the level concurrently" instead of a shutdown that never finishes.
  fn release_stalled_level(&mut self, now: MonoTime) -> Vec<u32> {
    let Some(range) = self.levels.get(self.current).cloned() else {
      return Vec::new();
    };
    let stuck: Vec<u32> = range
      .filter(|&i| self.tasks[i].status == TaskStatus::Pending)
      .map(|i| i as u32)
      .collect();
    for &i in &stuck {
      self.mark_running(i, now);
    }
    stuck
  }

  fn mark_running(&mut self, index: u32, now: MonoTime) {
    let task = &mut self.tasks[index as usize];
    task.status = TaskStatus::Running;
    task.started = Some(now);
    self.running += 1;
  }
}

mod order;

#[cfg(test)]
mod tests;
