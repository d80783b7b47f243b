//! The report the watchdog prints to stderr at a hard exit.
//!
//! It is formatted into a fixed stack buffer ([`FixedBuf`]) and written with bounded writes (`exit_write`):
//! rendering and writing it allocate nothing and take no lock. (What the hard exit gathers before, and why
//! each lock it takes there is bounded, is in `watchdog`'s module docs.) A report that does not fit is cut
//! short, says so, and still ends with its exit line. Task ids, names and reasons are user text: control characters in them are
//! escaped, so they can neither drive the operator's terminal nor forge a line of the report.

use std::fmt::{self, Write};
use std::time::Duration;

use crate::clock::{MonoTime, millis};
use crate::coordinator::Run;
use crate::js_stack::Frame;
use crate::main_thread::MainThreadState;
use crate::plan::{PlannedTask, TaskStatus};
use crate::text::{Escaped, Quoted, TaskName};

/// Every line starts with this, so the report is easy to find in mixed logs.
const PREFIX: &str = "titan-lifecycle:";
/// A stack frame's line: the prefix, indented under its heading.
const FRAME_PREFIX: &str = "titan-lifecycle:     ";
/// How many running or pending tasks are named before the rest are counted.
const MAX_LISTED: usize = 20;

/// Room kept at the end of the report's buffer for the cut notice, the children line and the exit line.
const TAIL: usize = 256;

/// A `fmt::Write` sink over a fixed array: it never allocates, and drops what does not fit.
pub struct FixedBuf<const N: usize> {
  bytes: [u8; N],
  len: usize,
  /// Writes stop here (at most `N`): room can be kept for what must come last.
  limit: usize,
  truncated: bool,
}

impl<const N: usize> FixedBuf<N> {
  /// An empty buffer.
  pub const fn new() -> Self {
    Self {
      bytes: [0; N],
      len: 0,
      limit: N,
      truncated: false,
    }
  }

  /// What was written so far.
  pub fn as_bytes(&self) -> &[u8] {
    &self.bytes[..self.len]
  }

  /// Whether something did not fit.
  pub fn truncated(&self) -> bool {
    self.truncated
  }
}

impl<const N: usize> Default for FixedBuf<N> {
  fn default() -> Self {
    Self::new()
  }
}

impl<const N: usize> Write for FixedBuf<N> {
  fn write_str(&mut self, s: &str) -> fmt::Result {
    if self.truncated {
      // Once something was dropped, nothing after it may appear as if it followed on.
      return Ok(());
    }
    let room = self.limit.saturating_sub(self.len);
    let mut take = s.len().min(room);
    // Never split a UTF-8 character: a task name may hold any.
    while !s.is_char_boundary(take) {
      take -= 1;
    }
    self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
    self.len += take;
    if take < s.len() {
      self.truncated = true;
    }
    Ok(())
  }
}

/// What the watchdog knows at the moment it exits, besides the record.
#[derive(Copy, Clone, Debug)]
pub struct HardExitFacts {
  pub now: MonoTime,
  pub exit_code: i32,
  /// When the probe (sent shortly before the deadline) went out and when JavaScript answered it.
  pub probe_sent: Option<MonoTime>,
  pub probe_answered: Option<MonoTime>,
  /// When the deadline event went out and when JavaScript answered it (after emitting its events).
  pub deadline_sent: Option<MonoTime>,
  pub deadline_answered: Option<MonoTime>,
  /// How long the watchdog waits for that answer when the loop answered the probe.
  pub grace: Duration,
  /// The last time JavaScript called in for this manager.
  pub last_js_activity: Option<MonoTime>,
  /// How many tracked children and groups were sent SIGKILL before this exit (see `children`).
  pub children_killed: usize,
  /// The deadline the watchdog enforced: the shutdown's own, or a later one, armed when a signal asked a
  /// shutdown that had finished without exiting to exit. None where it is not known (the run's is used).
  pub deadline: Option<MonoTime>,
}

/// Where a blocked event loop was stuck, as far as the watchdog found out (see `js_stack`, `main_thread`).
pub enum Whereabouts<'a> {
  /// Not looked for: the loop was not blocked.
  NotLooked,
  /// Stacks cannot be captured in this process; why.
  Unavailable(&'a str),
  /// Running JavaScript, at these frames (innermost first); `deeper`: the stack went on past them.
  JavaScript { frames: &'a [Frame], deeper: bool },
  /// Not running JavaScript (V8 did not service the interrupt): native code or a system call.
  OutsideJavaScript(&'a MainThreadState),
}

/// What became of Node's diagnostic report (`diagnosticReport`).
pub enum DiagnosticReport<'a> {
  NotAsked,
  Written(std::borrow::Cow<'a, str>),
  /// Node wrote nothing (it says why on stderr).
  Failed,
  /// Still being written when the exit could wait no longer.
  Unfinished,
  /// It is written from inside JavaScript's thread, which was not running JavaScript.
  NeedsJavaScript,
}

/// The state of the record, as far as the watchdog could read it.
#[derive(Clone, Copy)]
pub enum RecordView<'a> {
  /// The record, read under its lock.
  Read(Option<&'a Run>),
  /// The lock could not be taken in time (JavaScript held it); the report goes without task details.
  Busy,
}

/// Writes the hard-exit report into `out`. Every line ends with a newline, and the last one is the exit
/// line, even when the rest did not fit (a notice then says the report was cut).
pub fn render_report<const N: usize>(
  out: &mut FixedBuf<N>,
  record: RecordView<'_>,
  facts: &HardExitFacts,
  whereabouts: &Whereabouts<'_>,
  diagnostic: &DiagnosticReport<'_>,
) {
  out.limit = N.saturating_sub(TAIL);
  // `FixedBuf` never fails; it only drops what does not fit.
  let _ = write_body(out, record, facts, whereabouts, diagnostic);
  let cut = std::mem::replace(&mut out.truncated, false);
  out.limit = N;
  if cut {
    // Drop the line that was cut, so every line printed is whole.
    out.len = out
      .as_bytes()
      .iter()
      .rposition(|&b| b == b'\n')
      .map_or(0, |i| i + 1);
    let _ = writeln!(out, "{PREFIX}   (report cut: it did not fit in {N} bytes)");
  }
  if facts.children_killed > 0 {
    let _ = writeln!(
      out,
      "{PREFIX} sent SIGKILL to {} tracked child process{} or group{}, so none outlives this exit",
      facts.children_killed,
      if facts.children_killed == 1 { "" } else { "es" },
      if facts.children_killed == 1 { "" } else { "s" },
    );
  }
  let _ = writeln!(out, "{PREFIX} exiting with code {}", facts.exit_code);
  out.truncated |= cut;
}

fn write_body(
  out: &mut impl Write,
  record: RecordView<'_>,
  facts: &HardExitFacts,
  whereabouts: &Whereabouts<'_>,
  diagnostic: &DiagnosticReport<'_>,
) -> fmt::Result {
  let run = match record {
    RecordView::Read(run) => run,
    RecordView::Busy => None,
  };
  // A deadline armed after the shutdown finished (a signal asking a `stop()` that did not exit to exit)
  // is what the process overran, not the shutdown's own, long past.
  let rearmed = run
    .is_some_and(|run| run.exit_code.is_some() && facts.deadline.is_some_and(|at| at != run.deadline.at()));
  let deadline = facts.deadline.or(run.map(|run| run.deadline.at()));
  match run {
    Some(run) if rearmed => writeln!(
      out,
      "{PREFIX} hard exit: the shutdown (reason {}) had finished with exit code {} without exiting; a signal \
       then asked for the exit, and the process had not exited by that signal's deadline",
      Escaped(&run.trigger.reason),
      run.exit_code.unwrap_or_default(),
    )?,
    Some(run) if run.exit_code.is_some() => writeln!(
      out,
      "{PREFIX} hard exit: the shutdown (reason {}) finished with exit code {} but the process had not \
       exited {} ms later",
      Escaped(&run.trigger.reason),
      run.exit_code.unwrap_or_default(),
      Ms(run.deadline.budget()),
    )?,
    Some(run) => writeln!(
      out,
      "{PREFIX} hard exit: the graceful shutdown (reason {}) did not finish within its {} ms deadline",
      Escaped(&run.trigger.reason),
      Ms(run.deadline.budget()),
    )?,
    None => writeln!(
      out,
      "{PREFIX} hard exit: the shutdown did not finish by its deadline"
    )?,
  }
  if let Some(run) = run {
    writeln!(
      out,
      "{PREFIX}   elapsed {} ms since it began ({} ms past the deadline)",
      Ms(run.deadline.elapsed(facts.now)),
      Ms(deadline.map_or(Duration::ZERO, |at| facts.now.saturating_since(at))),
    )?;
  }
  write_loop_state(out, run, deadline, facts)?;
  write_whereabouts(out, whereabouts, diagnostic)?;
  match record {
    RecordView::Busy => writeln!(out, "{PREFIX}   tasks: unknown (the record was being updated)")?,
    RecordView::Read(Some(run)) if run.exit_code.is_none() => write_tasks(out, run, facts.now)?,
    RecordView::Read(_) => {}
  }
  Ok(())
}

fn write_loop_state(
  out: &mut impl Write,
  run: Option<&Run>,
  deadline: Option<MonoTime>,
  facts: &HardExitFacts,
) -> fmt::Result {
  let before_deadline = |t: MonoTime| Ms(deadline.map_or(Duration::ZERO, |d| d.saturating_since(t)));
  if let Some(answered) = facts.deadline_answered {
    let took = facts
      .deadline_sent
      .map_or(Duration::ZERO, |sent| answered.saturating_since(sent));
    writeln!(
      out,
      "{PREFIX}   event loop: responsive (it answered the deadline in {} ms)",
      Ms(took)
    )?;
  } else if let (Some(probe), Some(_)) = (facts.probe_sent, facts.probe_answered) {
    writeln!(
      out,
      "{PREFIX}   event loop: stopped answering (it answered a probe sent {} ms before the deadline, but not \
       the deadline within {} ms)",
      before_deadline(probe),
      Ms(facts.grace)
    )?;
  } else {
    write!(out, "{PREFIX}   event loop: blocked (")?;
    match facts.probe_sent {
      Some(probe) => write!(
        out,
        "no answer to a probe sent {} ms before the deadline",
        before_deadline(probe)
      )?,
      None => out.write_str("no answer")?,
    }
    if let Some(last) = facts.last_js_activity {
      write!(
        out,
        "; last heard from JavaScript {} ms ago",
        Ms(facts.now.saturating_since(last))
      )?;
    }
    out.write_str(")\n")?;
  }
  if run.is_some_and(|r| !r.attached) {
    writeln!(
      out,
      "{PREFIX}   the shutdown never reached JavaScript, so no task was started"
    )?;
    if run.is_some_and(|r| r.unsent_tasks) {
      writeln!(
        out,
        "{PREFIX}   tasks registered in the turn of JavaScript that was still running are not known here, \
         so they are not listed"
      )?;
    }
  } else if run.is_some_and(|r| !r.plan.has_started()) {
    // The first tasks wait for the shutdown delay; a loop that answered would have started them when it
    // ended, but a blocked one may have kept them from starting long after.
    if facts.probe_answered.is_some() || facts.deadline_answered.is_some() {
      writeln!(
        out,
        "{PREFIX}   no task was started yet: the shutdown delay had not passed"
      )?;
    } else {
      writeln!(
        out,
        "{PREFIX}   no task was started: the event loop was blocked before the first tasks could start \
         (during the shutdown delay, or once it had passed)"
      )?;
    }
  }
  Ok(())
}

fn write_whereabouts(
  out: &mut impl Write,
  whereabouts: &Whereabouts<'_>,
  diagnostic: &DiagnosticReport<'_>,
) -> fmt::Result {
  match whereabouts {
    Whereabouts::NotLooked => {}
    Whereabouts::Unavailable(why) => writeln!(out, "{PREFIX}   where it is blocked is not known: {why}")?,
    Whereabouts::JavaScript { frames: [], .. } => writeln!(
      out,
      "{PREFIX}   running JavaScript, between functions: no frame to show (a microtask queue that never \
       empties, such as a loop of awaits with nothing else in it, or code Node runs itself)"
    )?,
    Whereabouts::JavaScript { frames, deeper } => {
      writeln!(out, "{PREFIX}   blocked in JavaScript, at:")?;
      // Frames print their names escaped (see `js_stack::Frame`).
      crate::js_stack::write_frames(out, frames, *deeper, FRAME_PREFIX)?;
    }
    Whereabouts::OutsideJavaScript(state) => writeln!(
      out,
      "{PREFIX}   blocked outside JavaScript (in native code, a system call or a garbage collection): {state}"
    )?,
  }
  match diagnostic {
    DiagnosticReport::NotAsked => Ok(()),
    DiagnosticReport::Written(path) => {
      writeln!(out, "{PREFIX}   diagnostic report: {}", Escaped(path.as_ref()))
    }
    DiagnosticReport::Failed => writeln!(
      out,
      "{PREFIX}   diagnostic report: Node could not write it (see above)"
    ),
    DiagnosticReport::Unfinished => writeln!(
      out,
      "{PREFIX}   diagnostic report: still being written after {} ms; the file may be incomplete",
      Ms(crate::watchdog::REPORT_PATIENCE)
    ),
    DiagnosticReport::NeedsJavaScript => writeln!(
      out,
      "{PREFIX}   diagnostic report: not written (it is written from JavaScript's thread, which was not running \
       JavaScript)"
    ),
  }
}

fn write_tasks(out: &mut impl Write, run: &Run, now: MonoTime) -> fmt::Result {
  let tasks = run.plan.tasks();
  // Tasks handed out whose handlers JavaScript has not said it called (see `Plan::starting`) get a line of
  // their own: the loop stopped in a listener before them, or, with more than one, in one of their
  // handlers, and which were called is not known. One alone whose handler is being called is running.
  let starting = run.plan.starting();
  let calling = run.plan.calling();
  let apart = !(calling && starting.len() == 1);
  write_task_lines(
    out,
    "running",
    tasks
      .iter()
      .filter(|t| t.status == TaskStatus::Running && !(apart && t.awaiting_call())),
    now,
  )?;
  // Tasks the shutdown went on without when they timed out, whose handlers have not ended: their work is
  // still going on, and a blocked loop may be blocked in it rather than in a task listed as running.
  write_task_lines(
    out,
    "timed out, still running",
    tasks.iter().filter(|t| t.overrunning()),
    now,
  )?;

  let is_left = |i: &&u32| {
    tasks
      .get(**i as usize)
      .is_some_and(|t| t.status == TaskStatus::Running)
  };
  let starting_left = if apart {
    starting.iter().filter(is_left).count()
  } else {
    0
  };
  if starting_left > 0 {
    write_ids(
      out,
      "starting",
      starting.iter().filter(is_left).map(|&i| &*tasks[i as usize].id),
    )?;
    writeln!(
      out,
      "{}",
      match (calling, starting_left) {
        (false, 1) => {
          " (handed out to start: the loop stopped before its handler was called, in a listener of what \
           came before; the stack shows where it was)"
        }
        (false, _) => {
          " (handed out to start: the loop stopped before their handlers were called, in a listener of \
           what came before; the stack shows where it was)"
        }
        (true, _) => {
          " (handed out to start: their handlers are called in this order, and the loop stopped before all \
           of them were; the stack shows where it was)"
        }
      }
    )?;
  }

  let mut pending = tasks
    .iter()
    .filter(|t| t.status == TaskStatus::Pending)
    .peekable();
  if pending.peek().is_some() {
    write_ids(out, "pending", pending.map(|t| &*t.id))?;
    out.write_str("\n")?;
  }

  let count = |status| tasks.iter().filter(|t| t.status == status).count();
  write!(
    out,
    "{PREFIX}   settled: {} succeeded, {} failed, {} timed out",
    count(TaskStatus::Succeeded),
    count(TaskStatus::Failed),
    count(TaskStatus::TimedOut),
  )?;
  if count(TaskStatus::Skipped) > 0 {
    write!(out, ", {} skipped", count(TaskStatus::Skipped))?;
  }
  writeln!(
    out,
    " (of {} task{})",
    tasks.len(),
    if tasks.len() == 1 { "" } else { "s" }
  )
}

/// Writes a line for each of `tasks`, the first [`MAX_LISTED`] of them (see [`write_task`]), and then how
/// many more there are.
fn write_task_lines<'a>(
  out: &mut impl Write,
  label: &str,
  tasks: impl Iterator<Item = &'a PlannedTask>,
  now: MonoTime,
) -> fmt::Result {
  let mut count = 0;
  for task in tasks {
    if count < MAX_LISTED {
      write_task(out, label, task, task.running_for(now))?;
    }
    count += 1;
  }
  if count > MAX_LISTED {
    writeln!(out, "{PREFIX}   {label}: {} more", count - MAX_LISTED)?;
  }
  Ok(())
}

/// Writes a line of one task: `label`, its quoted id, its name if it has one, and how long it has run.
fn write_task(out: &mut impl Write, label: &str, task: &PlannedTask, running_for: Duration) -> fmt::Result {
  write!(out, "{PREFIX}   {label}: {}", Quoted(&task.id))?;
  if task.name != task.id {
    write!(out, " ({})", TaskName(&task.name))?;
  }
  writeln!(out, " for {} ms", Ms(running_for))
}

/// Writes `label` and the quoted `ids`, the first [`MAX_LISTED`] of them and then how many more, without
/// ending the line.
fn write_ids<'a>(out: &mut impl Write, label: &str, ids: impl Iterator<Item = &'a str>) -> fmt::Result {
  write!(out, "{PREFIX}   {label}:")?;
  let mut count = 0;
  for id in ids {
    if count < MAX_LISTED {
      write!(out, "{} {}", if count == 0 { "" } else { "," }, Quoted(id))?;
    }
    count += 1;
  }
  if count > MAX_LISTED {
    write!(out, " and {} more", count - MAX_LISTED)?;
  }
  Ok(())
}

/// Milliseconds with one decimal, the way every figure in the report reads.
struct Ms(Duration);

impl fmt::Display for Ms {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{:.1}", millis(self.0))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::coordinator::{Coordinator, Trigger};
  use crate::plan::{Outcome, Phase, TaskSpec};

  const MS: Duration = Duration::from_millis(1);

  fn coordinator_with(ids: &[(&str, f64)]) -> Coordinator {
    let mut c = Coordinator::new();
    for &(id, priority) in ids {
      let name = if id == "db" {
        "Database pool".to_string()
      } else {
        id.to_string()
      };
      c.register(TaskSpec {
        id: id.into(),
        name: name.into(),
        priority,
        phase: Phase::Stop,
        depends_on: vec![],
      })
      .unwrap();
    }
    c
  }

  /// Begins a shutdown with a 300 ms budget, triggered by `reason` (a signal name, or 'manual').
  fn begin(c: &mut Coordinator, reason: &str, start: MonoTime) {
    let signal = match reason {
      "SIGTERM" => Some(15),
      "SIGINT" => Some(2),
      _ => None,
    };
    c.begin(
      Trigger {
        reason: reason.into(),
        signal,
      },
      start,
      300 * MS,
    );
  }

  fn render(record: RecordView<'_>, facts: &HardExitFacts) -> String {
    render_with(
      record,
      facts,
      &Whereabouts::NotLooked,
      &DiagnosticReport::NotAsked,
    )
  }

  fn render_with(
    record: RecordView<'_>,
    facts: &HardExitFacts,
    whereabouts: &Whereabouts<'_>,
    diagnostic: &DiagnosticReport<'_>,
  ) -> String {
    let mut buf = FixedBuf::<8192>::new();
    render_report(&mut buf, record, facts, whereabouts, diagnostic);
    assert!(!buf.truncated());
    String::from_utf8(buf.as_bytes().to_vec()).unwrap()
  }

  #[test]
  fn a_loop_blocked_in_javascript_shows_its_frames_escaped_and_the_diagnostic_report() {
    let mut c = coordinator_with(&[("spin", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    let frames = [
      Frame::from_parts("spin", "/srv/app.js", 12, 5),
      Frame::from_parts("", "/srv/evil\nname.js", 3, 1),
    ];
    let report = render_with(
      RecordView::Read(c.run()),
      &facts(start, false),
      &Whereabouts::JavaScript {
        frames: &frames,
        deeper: false,
      },
      &DiagnosticReport::Written("/tmp/report.json".into()),
    );
    assert!(
      report.contains(
        "titan-lifecycle:   blocked in JavaScript, at:\n\
         titan-lifecycle:     at spin (/srv/app.js:12:5)\n\
         titan-lifecycle:     at /srv/evil\\nname.js:3:1\n\
         titan-lifecycle:   diagnostic report: /tmp/report.json\n"
      ),
      "{report}"
    );
  }

  #[test]
  fn a_loop_blocked_outside_javascript_says_what_the_thread_waits_in() {
    let start = MonoTime::from_nanos(1_000_000_000);
    let state = MainThreadState::Running;
    let report = render_with(
      RecordView::Read(None),
      &facts(start, false),
      &Whereabouts::OutsideJavaScript(&state),
      &DiagnosticReport::NeedsJavaScript,
    );
    assert!(
      report.contains(
        "titan-lifecycle:   blocked outside JavaScript (in native code, a system call or a garbage collection): the \
         main thread is running \
         native code\n"
      ),
      "{report}"
    );
    assert!(report.contains("diagnostic report: not written"), "{report}");
    let report = render_with(
      RecordView::Read(None),
      &facts(start, false),
      &Whereabouts::Unavailable("v8::Isolate::GetCurrent is not exported by this Node binary"),
      &DiagnosticReport::NotAsked,
    );
    assert!(
      report.contains("where it is blocked is not known: v8::Isolate::GetCurrent is not exported"),
      "{report}"
    );
  }

  /// The facts at 321 ms into a 300 ms shutdown: a probe at 280 ms, the deadline event at 300 ms, and
  /// answers to both if `answered`.
  fn facts(start: MonoTime, answered: bool) -> HardExitFacts {
    let probe = start.saturating_add(280 * MS);
    let sent = start.saturating_add(300 * MS);
    HardExitFacts {
      now: start.saturating_add(321 * MS),
      exit_code: 124,
      probe_sent: Some(probe),
      probe_answered: answered.then(|| probe.saturating_add(MS)),
      deadline_sent: Some(sent),
      deadline_answered: answered.then(|| sent.saturating_add(MS / 2)),
      grace: 20 * MS,
      last_js_activity: Some(start.saturating_add(2 * MS)),
      children_killed: 0,
      deadline: None,
    }
  }

  #[test]
  fn says_how_many_tracked_children_it_killed_right_before_the_exit_line() {
    let start = MonoTime::from_nanos(1_000_000_000);
    let mut c = coordinator_with(&[("worker", 10.0)]);
    begin(&mut c, "SIGTERM", start);
    let quiet = render(RecordView::Read(c.run()), &facts(start, true));
    assert!(!quiet.contains("tracked child"), "{quiet}");
    let killed = HardExitFacts {
      children_killed: 2,
      ..facts(start, true)
    };
    let report = render(RecordView::Read(c.run()), &killed);
    assert!(
      report.ends_with(
        "titan-lifecycle: sent SIGKILL to 2 tracked child processes or groups, so none outlives this exit\n\
         titan-lifecycle: exiting with code 124\n"
      ),
      "{report}"
    );
  }

  #[test]
  fn names_the_reason_the_running_tasks_the_pending_ones_and_a_blocked_loop() {
    let mut c = coordinator_with(&[("spin", 10.0), ("db", 10.0), ("cache", 20.0), ("logs", 30.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start.saturating_add(MS));
    // Before JavaScript begins calling the level's handlers, the loop is in a listener before them.
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      report.contains(
        "starting: 'spin', 'db' (handed out to start: the loop stopped before their handlers were called, in \
         a listener of what came before"
      ),
      "{report}"
    );
    // Once it has begun, and until it says it called both, either may be the one it is in.
    c.handlers_calling(start.saturating_add(MS));
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      report.contains(
        "starting: 'spin', 'db' (handed out to start: their handlers are called in this order, and the loop \
         stopped before all of them were"
      ),
      "{report}"
    );
    assert!(!report.contains("running:"), "{report}");
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(!report.contains("starting:"), "{report}");
    assert!(
      report.contains("(reason SIGTERM) did not finish within its 300.0 ms deadline"),
      "{report}"
    );
    assert!(report.contains("elapsed 321.0 ms since it began (21.0 ms past the deadline)\n"));
    assert!(
      report.ends_with("\ntitan-lifecycle: exiting with code 124\n"),
      "{report}"
    );
    assert!(
      report.contains(
        "event loop: blocked (no answer to a probe sent 20.0 ms before the deadline; last heard from"
      ),
      "{report}"
    );
    assert!(report.contains("running: 'spin' for 320.0 ms"), "{report}");
    assert!(
      report.contains("running: 'db' (Database pool) for 320.0 ms"),
      "{report}"
    );
    assert!(report.contains("pending: 'cache', 'logs'"), "{report}");
    assert!(report.contains("settled: 0 succeeded, 0 failed, 0 timed out (of 4 tasks)"));
    assert!(report.lines().all(|l| l.starts_with(PREFIX)));
  }

  #[test]
  fn one_task_handed_out_is_starting_until_called_and_runs_from_its_call() {
    let mut c = coordinator_with(&[("db", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    // The loop stopped in a `shutdown:start` listener, or in the handler: not known which.
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      report.contains(
        "starting: 'db' (handed out to start: the loop stopped before its handler was called, in a listener \
         of what came before; the stack shows where it was)\n"
      ),
      "{report}"
    );
    assert!(!report.contains("running:"), "{report}");
    // JavaScript calls its handler 200 ms in (the listeners took that long): the loop is in the handler.
    c.handlers_calling(start.saturating_add(200 * MS));
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      report.contains("running: 'db' (Database pool) for 121.0 ms\n"),
      "{report}"
    );
    assert!(!report.contains("starting:"), "{report}");
  }

  #[test]
  fn lists_tasks_that_timed_out_with_their_handlers_still_at_work() {
    let mut c = coordinator_with(&[("db", 10.0), ("cache", 10.0), ("next", 20.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    c.handlers_called();
    c.settle(0, Outcome::TimedOut, start.saturating_add(100 * MS));
    c.settle(1, Outcome::TimedOut, start.saturating_add(100 * MS));
    c.handler_ended_late(1, start.saturating_add(150 * MS));
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      report.contains(
        "running: 'next' for 221.0 ms\ntitan-lifecycle:   timed out, still running: 'db' (Database pool) for \
         321.0 ms\n"
      ),
      "{report}"
    );
    assert!(!report.contains("'cache' for"), "{report}");
    assert!(report.contains("settled: 0 succeeded, 0 failed, 2 timed out (of 3 tasks)"));
  }

  #[test]
  fn says_when_the_loop_answered_and_counts_settled_tasks() {
    let mut c = coordinator_with(&[("a", 10.0), ("b", 20.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "manual", start);
    c.attach(start);
    c.settle(0, Outcome::Failed, start.saturating_add(MS));
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, true));
    assert!(
      report.contains("event loop: responsive (it answered the deadline in 0.5 ms)"),
      "{report}"
    );
    assert!(report.contains("running: 'b' for 320.0 ms"), "{report}");
    assert!(report.contains("settled: 0 succeeded, 1 failed"), "{report}");
  }

  #[test]
  fn a_loop_that_answered_the_probe_but_not_the_deadline_stopped_answering() {
    let mut c = coordinator_with(&[("a", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    let facts = HardExitFacts {
      deadline_answered: None,
      ..facts(start, true)
    };
    let report = render(RecordView::Read(c.run()), &facts);
    assert!(
      report.contains(
        "event loop: stopped answering (it answered a probe sent 20.0 ms before the deadline, but not the deadline \
         within 20.0 ms)"
      ),
      "{report}"
    );
  }

  #[test]
  fn a_signal_after_a_shutdown_that_did_not_exit_is_measured_by_its_own_deadline() {
    // A `stop()` finished 300 ms in without exiting; a signal came 1.3 s later and its 400 ms deadline
    // passed 21 ms ago with the loop blocked (probe 20 ms before that deadline).
    let mut c = coordinator_with(&[("a", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "manual", start);
    c.attach(start);
    c.settle(0, Outcome::Succeeded, start.saturating_add(MS));
    c.finish(0);
    let rearmed_at = start.saturating_add(2000 * MS);
    let late = HardExitFacts {
      now: rearmed_at.saturating_add(21 * MS),
      probe_sent: Some(start.saturating_add(1980 * MS)),
      probe_answered: None,
      deadline_sent: Some(rearmed_at),
      deadline_answered: None,
      deadline: Some(rearmed_at),
      ..facts(start, false)
    };
    let report = render(RecordView::Read(c.run()), &late);
    assert!(
      report.contains(
        "hard exit: the shutdown (reason manual) had finished with exit code 0 without exiting; a signal then \
         asked for the exit, and the process had not exited by that signal's deadline\n"
      ),
      "{report}"
    );
    assert!(
      report.contains("elapsed 2021.0 ms since it began (21.0 ms past the deadline)\n"),
      "{report}"
    );
    assert!(
      report.contains("no answer to a probe sent 20.0 ms before the deadline"),
      "{report}"
    );
    // The shutdown's own deadline, armed again at the same instant (an exit its continuations delayed),
    // keeps the first wording.
    let same = HardExitFacts {
      deadline: Some(start.saturating_add(300 * MS)),
      ..facts(start, false)
    };
    let report = render(RecordView::Read(c.run()), &same);
    assert!(
      report.contains("finished with exit code 0 but the process had not exited 300.0 ms later"),
      "{report}"
    );
  }

  #[test]
  fn tasks_not_started_blame_the_delay_only_while_the_loop_answered() {
    let mut c = coordinator_with(&[("a", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    assert!(c.attach_without_starting());
    let blocked = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(
      blocked.contains("no task was started: the event loop was blocked before the first tasks could start"),
      "{blocked}"
    );
    let answering = render(RecordView::Read(c.run()), &facts(start, true));
    assert!(
      answering.contains("no task was started yet: the shutdown delay had not passed"),
      "{answering}"
    );
  }

  #[test]
  fn a_capture_without_frames_says_the_loop_was_between_functions() {
    let start = MonoTime::from_nanos(1_000_000_000);
    let report = render_with(
      RecordView::Read(None),
      &facts(start, false),
      &Whereabouts::JavaScript {
        frames: &[],
        deeper: false,
      },
      &DiagnosticReport::NotAsked,
    );
    assert!(
      report.contains("running JavaScript, between functions: no frame to show (a microtask queue"),
      "{report}"
    );
  }

  #[test]
  fn a_shutdown_that_never_reached_javascript_says_when_tasks_were_not_sent_yet() {
    let mut c = coordinator_with(&[("a", 10.0)]);
    c.note_unsent_tasks();
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(report.contains("pending: 'a'"), "{report}");
    assert!(
      report.contains("tasks registered in the turn of JavaScript that was still running are not known here"),
      "{report}"
    );
    // Sent after the shutdown began (before JavaScript took it up): nothing is missing.
    c.register(TaskSpec::new("b", "b", 10.0, Phase::Stop, Vec::new()))
      .unwrap();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(!report.contains("not known here"), "{report}");
    // Registered after the signal, in a turn that never ended.
    let mut c = coordinator_with(&[]);
    begin(&mut c, "SIGTERM", start);
    c.note_unsent_tasks();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(report.contains("not known here"), "{report}");
  }

  #[test]
  fn a_shutdown_that_never_reached_javascript_says_so() {
    let mut c = coordinator_with(&[("a", 10.0)]);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGINT", start);
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(report.contains("never reached JavaScript"), "{report}");
    assert!(report.contains("pending: 'a'"), "{report}");
  }

  #[test]
  fn a_busy_record_still_gives_a_report() {
    let report = render(RecordView::Busy, &facts(MonoTime::from_nanos(5), false));
    assert!(report.contains("hard exit"), "{report}");
    assert!(report.contains("tasks: unknown"), "{report}");
  }

  #[test]
  fn long_lists_are_cut_and_counted() {
    let ids: Vec<(String, f64)> = (0..50).map(|i| (format!("t{i}"), 10.0)).collect();
    let refs: Vec<(&str, f64)> = ids.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    let mut c = coordinator_with(&refs);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert_eq!(report.matches("running: 't").count(), MAX_LISTED);
    assert!(report.contains("running: 30 more"), "{report}");
  }

  #[test]
  fn the_fixed_buffer_truncates_on_a_character_boundary() {
    let mut buf = FixedBuf::<5>::new();
    buf.write_str("abcé").unwrap(); // 'é' is two bytes and fits exactly
    assert_eq!(buf.as_bytes(), "abcé".as_bytes());
    buf.write_str("x").unwrap();
    assert!(buf.truncated());
    let mut buf = FixedBuf::<4>::new();
    buf.write_str("abcé").unwrap();
    assert_eq!(buf.as_bytes(), b"abc");
    assert!(buf.truncated());
  }

  #[test]
  fn user_text_in_the_report_cannot_forge_lines_or_drive_the_terminal() {
    let mut c = Coordinator::new();
    c.register(TaskSpec {
      id: "x\ntitan-lifecycle: forged".into(),
      name: "\x1b]0;title\x07".into(),
      priority: 1.0,
      phase: Phase::Stop,
      depends_on: vec![],
    })
    .unwrap();
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(report.lines().all(|l| l.starts_with(PREFIX)), "{report}");
    assert!(
      !report.lines().any(|l| l.starts_with("titan-lifecycle: forged")),
      "{report}"
    );
    assert!(
      !report.chars().any(|ch| ch.is_control() && ch != '\n'),
      "{report:?}"
    );
    assert!(
      report.contains("running: 'x\\ntitan-lifecycle: forged' (\\x1b]0;title\\x07)"),
      "{report}"
    );
  }

  #[test]
  fn one_long_task_name_is_cut_rather_than_crowding_out_the_other_tasks() {
    // A 20 KB id (more than the whole report holds) ahead of two ordinary tasks, one running and one
    // waiting for it, and an id whose quote would otherwise end its quoting early.
    let long = "🦀".repeat(5_000);
    let mut c = Coordinator::new();
    for (id, priority) in [(long.as_str(), 1.0), ("cache', 'queue", 1.0), ("after", 10.0)] {
      c.register(TaskSpec::new(id, id, priority, Phase::Stop, Vec::new()))
        .unwrap();
    }
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    c.handlers_called();
    let report = render(RecordView::Read(c.run()), &facts(start, false));
    assert!(!report.contains("report cut"), "{report}");
    let first = report
      .lines()
      .find(|l| l.contains("running: '🦀"))
      .expect(&report);
    assert!(first.len() < crate::text::MAX_TASK_TEXT + 100, "{first}");
    assert!(first.contains("🦀…' for "), "{first}");
    assert!(report.contains("running: 'cache\\', \\'queue' for "), "{report}");
    assert!(report.contains("pending: 'after'\n"), "{report}");
    assert!(report.contains("(of 3 tasks)"), "{report}");
  }

  #[test]
  fn a_report_that_overflows_says_so_and_still_ends_with_the_exit_line() {
    let names: Vec<(String, f64)> = (0..40)
      .map(|i| (format!("{}{i}", "n".repeat(300)), 10.0))
      .collect();
    let refs: Vec<(&str, f64)> = names.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    let mut c = coordinator_with(&refs);
    let start = MonoTime::from_nanos(1_000_000_000);
    begin(&mut c, "SIGTERM", start);
    c.attach(start);
    let mut buf = FixedBuf::<2048>::new();
    render_report(
      &mut buf,
      RecordView::Read(c.run()),
      &facts(start, false),
      &Whereabouts::NotLooked,
      &DiagnosticReport::NotAsked,
    );
    let report = std::str::from_utf8(buf.as_bytes()).unwrap();
    assert!(buf.truncated());
    assert!(report.len() <= 2048);
    assert!(
      report.contains("\ntitan-lifecycle:   (report cut: it did not fit in 2048 bytes)\n"),
      "{report}"
    );
    assert!(
      report.ends_with("\ntitan-lifecycle: exiting with code 124\n"),
      "{report}"
    );
    assert!(report.lines().all(|l| l.starts_with(PREFIX)), "{report}");
  }
}
