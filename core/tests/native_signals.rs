//! Real signals against the native primitives: the handler, chaining, re-entry, escalation, the guard, and
//! the watchdog's hard exit.
//!
//! Method: the parent (this binary, run by `cargo test`) re-executes itself once per scenario with
//! `TITAN_SCENARIO=<name>`, so every scenario runs in a fresh process of its own (a signal handler and an
//! `_exit` are process-wide; `fork` inside a multi-threaded test runner is not safe). The child arms
//! `alarm(10)` so a hang kills it; the parent also gives up and kills it after 10 s. The parent then checks
//! the child's exit status, its stderr, and how long it lived.
//!
//! ```text
//! parent ──spawn──► child: set up, raise(2)/sleep ──exit code, stderr──► parent: compare with the scenario
//! ```

use std::ffi::c_int;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use titan_lifecycle_core::clock::{Deadline, MonoTime};
use titan_lifecycle_core::coordinator::Trigger;
use titan_lifecycle_core::exit_write;
use titan_lifecycle_core::plan::{Phase, TaskSpec};
use titan_lifecycle_core::session::{NativeEvent, Notifier, Session};
use titan_lifecycle_core::signals::{self, Policy};
use titan_lifecycle_core::watchdog::{self, SignalOwner};

// ---- the child side ------------------------------------------------------------------------------------

static FOREIGN_CALLS: AtomicU32 = AtomicU32::new(0);

extern "C" fn foreign_handler(_signo: c_int) {
  FOREIGN_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// A displacer that, like signal-hook-registry, chains to whatever it displaced: here, to our handler.
static DISPLACED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn chaining_foreign_handler(signo: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  FOREIGN_CALLS.fetch_add(1, Ordering::SeqCst);
  let previous = DISPLACED.load(Ordering::SeqCst);
  if previous != 0 {
    // SAFETY: `previous` is the SA_SIGINFO handler this one displaced (ours), read with sigaction.
    let previous: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
      unsafe { std::mem::transmute(previous) };
    previous(signo, info, context);
  }
}

fn set_handler(signo: c_int, handler: usize, flags: c_int) -> libc::sigaction {
  // SAFETY: plain sigaction calls with fully initialised structs.
  unsafe {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    libc::sigemptyset(&mut action.sa_mask);
    let mut old: libc::sigaction = std::mem::zeroed();
    libc::sigaction(signo, &action, &mut old);
    old
  }
}

fn raise(signo: c_int) {
  // SAFETY: raise has no preconditions; the handlers it runs are installed by the scenario.
  unsafe { libc::raise(signo) };
}

/// Sends this process a signal from another process: a shell of ours, neither our parent nor ourselves
/// (as a terminal or a supervisor other than the parent would be).
fn kill_from_a_shell(name: &str) {
  let status = Command::new("sh")
    .args(["-c", &format!("kill -{name} {}", std::process::id())])
    .status()
    .unwrap_or_else(|e| fail(format!("sh: {e}")));
  expect(status.success(), &format!("the shell sent SIG{name}"));
}

fn fail(message: String) -> ! {
  eprintln!("scenario failed: {message}");
  std::process::exit(1)
}

fn expect(condition: bool, message: &str) {
  if !condition {
    fail(message.to_string())
  }
}

fn policy(escalate: bool, second_signal_exit: Option<i32>) {
  signals::configure(Policy {
    escalate,
    second_signal_exit,
    exclusive: false,
  });
}

/// A pipe for the handler's wake-up byte, as the watchdog would create.
fn wake_pipe() -> c_int {
  let mut fds = [0 as c_int; 2];
  // SAFETY: `fds` has room for two descriptors.
  unsafe {
    libc::pipe(fds.as_mut_ptr());
    libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK);
    libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK);
  }
  signals::set_wake_fd(fds[1]);
  fds[0]
}

fn bytes_in(fd: c_int) -> usize {
  let mut buf = [0u8; 64];
  // SAFETY: reading into a live buffer from a non-blocking pipe.
  let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
  n.max(0) as usize
}

fn session_with_running_task(hard_exit_code: i32) -> Arc<Session> {
  let session = Session::new(Some(hard_exit_code));
  let spec = TaskSpec {
    id: "spin".into(),
    name: "spin".into(),
    priority: 50.0,
    phase: Phase::Stop,
    depends_on: vec![],
  };
  session
    .record()
    .register(spec)
    .unwrap_or_else(|e| fail(e.to_string()));
  session
}

fn begin_and_arm(session: &Arc<Session>, budget: Duration) {
  let now = MonoTime::now();
  let mut record = session.record();
  record.begin(
    Trigger {
      reason: "manual".into(),
      signal: None,
    },
    now,
    budget,
  );
  record.attach(now);
  // As JavaScript does before it calls the first task's handler.
  record.handlers_calling(now);
  drop(record);
  watchdog::arm(session, Deadline::new(now, budget)).unwrap_or_else(|e| fail(e.to_string()));
}

/// Fills fd 2 (a pipe the parent does not read while we run) until a write would block, then makes it
/// blocking again: the state of a stderr whose collector stalled.
fn fill_stderr() {
  // SAFETY: fcntl and write on fd 2 with a live buffer.
  unsafe {
    let flags = libc::fcntl(2, libc::F_GETFL);
    libc::fcntl(2, libc::F_SETFL, flags | libc::O_NONBLOCK);
    let chunk = [b'.'; 4096];
    while libc::write(2, chunk.as_ptr().cast(), chunk.len()) > 0 {}
    libc::fcntl(2, libc::F_SETFL, flags & !libc::O_NONBLOCK);
  }
}

/// Records the signals the watchdog tells "JavaScript" of.
struct SignalRecorder(std::sync::Mutex<Vec<(i32, Option<u64>)>>);

impl Notifier for SignalRecorder {
  fn notify(&self, event: NativeEvent) {
    if let NativeEvent::Signal { signo, seq, .. } = event {
      self.0.lock().unwrap().push((signo, seq));
    }
  }
}

/// Answers the deadline at once, as a responsive event loop would.
struct ResponsiveLoop(std::sync::Mutex<Option<Arc<Session>>>);

impl Notifier for ResponsiveLoop {
  fn notify(&self, event: NativeEvent) {
    if let Some(session) = self.0.lock().unwrap().as_ref() {
      match event {
        NativeEvent::Probe => session.probe.answer(),
        NativeEvent::Deadline => session.deadline_event.answer(),
        _ => {}
      }
    }
  }
}

fn child(scenario: &str) {
  // SAFETY: alarm only schedules a SIGALRM; its default action ends a hung child.
  unsafe { libc::alarm(10) };
  match scenario {
    "records-wakes-and-chains" => {
      let wake = wake_pipe();
      set_handler(libc::SIGTERM, foreign_handler as *const () as usize, 0);
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      expect(signals::is_installed(libc::SIGTERM), "our handler is in the slot");
      raise(libc::SIGTERM);
      expect(
        FOREIGN_CALLS.load(Ordering::SeqCst) == 1,
        "the displaced handler ran once",
      );
      let pending: Vec<(c_int, u32)> = signals::take_pending().collect();
      expect(
        pending == vec![(libc::SIGTERM, 1)],
        &format!("pending {pending:?}"),
      );
      expect(bytes_in(wake) == 1, "one wake-up byte");
      expect(
        signals::first_signal_time().is_some(),
        "the first signal's time was recorded",
      );
    }
    "second-signal-exits" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      signals::install(libc::SIGINT).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      raise(libc::SIGTERM);
      raise(libc::SIGINT); // exits 130 from inside the handler
      fail("still alive after a second signal".into());
    }
    "second-signal-fixed-code" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, Some(7));
      raise(libc::SIGTERM);
      raise(libc::SIGTERM);
      fail("still alive after a second signal".into());
    }
    "no-escalation" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(false, None);
      raise(libc::SIGTERM);
      raise(libc::SIGTERM);
      let pending: Vec<(c_int, u32)> = signals::take_pending().collect();
      expect(
        pending == vec![(libc::SIGTERM, 2)],
        &format!("pending {pending:?}"),
      );
    }
    "never-chains-to-a-one-shot-handler" => {
      // Node's start-up handler is SA_RESETHAND and re-raises; chaining to it would re-deliver forever.
      wake_pipe();
      set_handler(
        libc::SIGTERM,
        foreign_handler as *const () as usize,
        libc::SA_RESETHAND,
      );
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(false, None);
      raise(libc::SIGTERM);
      expect(
        FOREIGN_CALLS.load(Ordering::SeqCst) == 0,
        "the one-shot handler was not chained",
      );
      expect(signals::is_installed(libc::SIGTERM), "still ours");
    }
    "guard-takes-back-and-cuts-cycles" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(false, None);
      // A neighbour installs itself on top and chains to what it found: us.
      let ours = set_handler(
        libc::SIGTERM,
        chaining_foreign_handler as *const () as usize,
        libc::SA_SIGINFO,
      );
      DISPLACED.store(ours.sa_sigaction, Ordering::SeqCst);
      expect(!signals::is_installed(libc::SIGTERM), "displaced");
      let found = signals::reassert(false);
      expect(
        found.len() == 1 && found[0].chained,
        &format!("reassert found {found:?}"),
      );
      expect(signals::is_installed(libc::SIGTERM), "taken back");
      // Now we chain to the neighbour, which chains back to us: the re-entry table must cut the cycle.
      raise(libc::SIGTERM);
      expect(
        FOREIGN_CALLS.load(Ordering::SeqCst) == 1,
        "the neighbour ran once",
      );
      let pending: Vec<(c_int, u32)> = signals::take_pending().collect();
      expect(
        pending == vec![(libc::SIGTERM, 1)],
        &format!("counted once, not twice: {pending:?}"),
      );
      expect(signals::reassert(false).is_empty(), "nothing more to take back");
    }
    "watchdog-hard-exit-blocked" => {
      let session = session_with_running_task(124);
      begin_and_arm(&session, Duration::from_millis(200));
      std::thread::sleep(Duration::from_secs(5)); // "blocked": the watchdog must end the process
      fail("the watchdog did not exit".into());
    }
    "watchdog-hard-exit-responsive" => {
      let session = session_with_running_task(124);
      let notifier = Arc::new(ResponsiveLoop(std::sync::Mutex::new(Some(session.clone()))));
      session.set_notifier(notifier);
      begin_and_arm(&session, Duration::from_millis(200));
      std::thread::sleep(Duration::from_secs(5));
      fail("the watchdog did not exit".into());
    }
    "watchdog-disarmed" => {
      let session = session_with_running_task(124);
      begin_and_arm(&session, Duration::from_millis(100));
      session.record().finish(0);
      session.disarm();
      std::thread::sleep(Duration::from_millis(400));
    }
    "signal-begins-shutdown-natively" => {
      // The owner's shutdown begins on the watchdog thread, from the handler's timestamp, even though
      // nothing else (no event loop here) ever picks it up.
      let session = session_with_running_task(124);
      watchdog::set_signal_owner(Some(SignalOwner {
        session: session.clone(),
        budget: Duration::from_millis(150),
      }))
      .unwrap_or_else(|e| fail(e.to_string()));
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      raise(libc::SIGTERM);
      std::thread::sleep(Duration::from_secs(5));
      fail("the watchdog did not exit".into());
    }
    "bounded-write-to-a-stalled-stderr" => {
      fill_stderr();
      let started = Instant::now();
      let written = exit_write::write_stderr_bounded(&[b'x'; 20_000], exit_write::EXIT_WRITE_BUDGET);
      let took = started.elapsed();
      expect(!written, "nothing could be written to a full pipe");
      expect(
        took >= exit_write::EXIT_WRITE_BUDGET && took < exit_write::EXIT_WRITE_BUDGET * 4,
        &format!("gave up after {took:?}"),
      );
    }
    "bounded-write-to-a-stalled-socket" => {
      // As Node makes a child's stdio: a socket pair, here with nobody reading the other end, non-blocking.
      let mut pair = [0 as c_int; 2];
      // SAFETY: socketpair fills `pair`; dup2 replaces fd 2 with our end.
      unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr());
        libc::dup2(pair[0], 2);
      }
      fill_stderr();
      // SAFETY: as in `fill_stderr`.
      unsafe { libc::fcntl(2, libc::F_SETFL, libc::fcntl(2, libc::F_GETFL) | libc::O_NONBLOCK) };
      let started = Instant::now();
      let written = exit_write::write_stderr_bounded(&[b'x'; 20_000], exit_write::EXIT_WRITE_BUDGET);
      let took = started.elapsed();
      // SAFETY: restoring a writable stderr for the report below: the pipe the parent reads.
      unsafe { libc::dup2(1, 2) };
      expect(!written, "nothing could be written to a full socket");
      expect(
        took >= exit_write::EXIT_WRITE_BUDGET && took < exit_write::EXIT_WRITE_BUDGET * 4,
        &format!("gave up after {took:?}"),
      );
    }
    "second-signal-with-a-stalled-stderr" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      fill_stderr();
      raise(libc::SIGTERM);
      raise(libc::SIGTERM); // its line cannot be written: it must exit 143 anyway
      fail("still alive after a second signal".into());
    }
    "hard-exit-with-a-stalled-stderr" => {
      let session = session_with_running_task(124);
      fill_stderr();
      begin_and_arm(&session, Duration::from_millis(200));
      std::thread::sleep(Duration::from_secs(5));
      fail("the watchdog did not exit".into());
    }
    "a-copy-forwarded-by-the-parent-is-the-same-signal" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      // The first copy comes from elsewhere (here: ourselves); the parent sends its own copy 300 ms after
      // the child started. A third copy, from the first sender again, is a second request.
      raise(libc::SIGTERM);
      std::thread::sleep(Duration::from_millis(900));
      let pending: u32 = signals::take_pending().map(|(_, n)| n).sum();
      expect(
        pending == 2,
        &format!("the parent's copy arrived and was kept ({pending})"),
      );
      raise(libc::SIGTERM);
      fail("a second request from the first sender did not exit".into());
    }
    "a-later-signal-from-the-parent-joins" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      signals::install(libc::SIGINT).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      // The group's SIGINT (here: from ourselves) begins the shutdown; the parent (npm, say) forwards its
      // copy 300 ms in, and stops us 1.5 s in, with SIGTERM, in its own shutdown. Then SIGINT from the first
      // sender again is a second request.
      raise(libc::SIGINT);
      std::thread::sleep(Duration::from_millis(2000));
      let pending: u32 = signals::take_pending().map(|(_, n)| n).sum();
      expect(
        pending == 3,
        &format!("the parent's copy and its SIGTERM arrived and were kept ({pending})"),
      );
      raise(libc::SIGINT);
      fail("a second request from the first sender did not exit".into());
    }
    "the-group-signal-just-after-the-parents-joins" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      signals::install(libc::SIGINT).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      // The parent stops us 300 ms in (SIGTERM, its trackChild answering a Ctrl-C it heard first); the
      // group's SIGINT (here: from a shell of ours, neither the parent nor this process) is recorded after
      // it. Then SIGTERM from that sender is a second request: one signal from elsewhere joins, not two.
      std::thread::sleep(Duration::from_millis(600));
      kill_from_a_shell("INT");
      std::thread::sleep(Duration::from_millis(100));
      let pending: u32 = signals::take_pending().map(|(_, n)| n).sum();
      expect(
        pending == 2,
        &format!("the parent's SIGTERM and the group's SIGINT arrived and were kept ({pending})"),
      );
      eprintln!("the group's SIGINT joined");
      kill_from_a_shell("TERM");
      std::thread::sleep(Duration::from_secs(2));
      fail("a second signal from elsewhere did not exit".into());
    }
    "a-signal-relayed-to-itself-joins" => {
      wake_pipe();
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(true, None);
      // SIGTERM from elsewhere (a shell of ours), then relayed by this process to itself (signal-exit's
      // way): one request. Relayed again, it is a second.
      kill_from_a_shell("TERM");
      std::thread::sleep(Duration::from_millis(100));
      raise(libc::SIGTERM);
      std::thread::sleep(Duration::from_millis(100));
      let pending: u32 = signals::take_pending().map(|(_, n)| n).sum();
      expect(
        pending == 2,
        &format!("both copies arrived and were kept ({pending})"),
      );
      eprintln!("the relayed copy joined");
      raise(libc::SIGTERM);
      fail("a second relayed copy did not exit".into());
    }
    "the-watchdog-tells-javascript-when-libuv-does-not" => {
      // No libuv here at all: only the watchdog can tell "JavaScript" (the recorder) of the signal.
      let session = session_with_running_task(124);
      let recorder = Arc::new(SignalRecorder(std::sync::Mutex::new(Vec::new())));
      session.set_notifier(recorder.clone());
      watchdog::set_signal_owner(Some(SignalOwner {
        session: session.clone(),
        budget: Duration::from_secs(5),
      }))
      .unwrap_or_else(|e| fail(e.to_string()));
      signals::install(libc::SIGTERM).unwrap_or_else(|e| fail(e.to_string()));
      policy(false, None);
      let raised = Instant::now();
      raise(libc::SIGTERM);
      while recorder.0.lock().unwrap().is_empty() && raised.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(1));
      }
      let told = recorder.0.lock().unwrap().clone();
      expect(
        told == vec![(libc::SIGTERM, Some(1))],
        &format!("told {told:?} after {:?}", raised.elapsed()),
      );
      expect(
        raised.elapsed() < Duration::from_millis(200),
        "told within a few milliseconds",
      );
    }
    other => fail(format!("unknown scenario {other}")),
  }
  std::process::exit(0)
}

// ---- the parent side -----------------------------------------------------------------------------------

struct Outcome {
  status: ExitStatus,
  stderr: String,
  lived: Duration,
}

/// Signals the parent sends to a scenario, as (milliseconds after it started, signal).
fn parent_signals(scenario: &str) -> &'static [(u64, c_int)] {
  match scenario {
    "a-copy-forwarded-by-the-parent-is-the-same-signal" => &[(300, libc::SIGTERM)],
    "a-later-signal-from-the-parent-joins" => &[(300, libc::SIGINT), (1500, libc::SIGTERM)],
    "the-group-signal-just-after-the-parents-joins" => &[(300, libc::SIGTERM)],
    _ => &[],
  }
}

fn run(scenario: &str) -> Outcome {
  let started = Instant::now();
  let mut child = Command::new(std::env::current_exe().expect("own path"))
    .env("TITAN_SCENARIO", scenario)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn the scenario");
  let mut to_send = parent_signals(scenario).iter();
  let mut next_signal = to_send.next();
  let give_up = started + Duration::from_secs(10);
  let status = loop {
    if let Some(&(after_ms, signo)) = next_signal
      && started.elapsed() >= Duration::from_millis(after_ms)
    {
      // SAFETY: kill on our own child's pid.
      unsafe { libc::kill(child.id() as libc::pid_t, signo) };
      next_signal = to_send.next();
    }
    if let Some(status) = child.try_wait().expect("wait") {
      break status;
    }
    if Instant::now() > give_up {
      let _ = child.kill();
      break child.wait().expect("wait after kill");
    }
    std::thread::sleep(Duration::from_millis(2));
  };
  let lived = started.elapsed();
  let mut stderr = String::new();
  if let Some(mut pipe) = child.stderr.take() {
    use std::io::Read;
    let _ = pipe.read_to_string(&mut stderr);
  }
  Outcome {
    status,
    stderr,
    lived,
  }
}

type Check = fn(&Outcome) -> Result<(), String>;

fn exit_code(outcome: &Outcome, code: i32) -> Result<(), String> {
  match outcome.status.code() {
    Some(c) if c == code => Ok(()),
    _ => Err(format!(
      "expected exit {code}, got {:?}; stderr:\n{}",
      outcome.status, outcome.stderr
    )),
  }
}

fn contains(outcome: &Outcome, text: &str) -> Result<(), String> {
  if outcome.stderr.contains(text) {
    Ok(())
  } else {
    Err(format!("stderr lacks {text:?}:\n{}", outcome.stderr))
  }
}

fn lived_between(outcome: &Outcome, min_ms: u64, max_ms: u64) -> Result<(), String> {
  let ms = outcome.lived.as_millis() as u64;
  if (min_ms..=max_ms).contains(&ms) {
    Ok(())
  } else {
    Err(format!("lived {ms} ms, expected {min_ms}..={max_ms}"))
  }
}

const SCENARIOS: &[(&str, Check)] = &[
  ("records-wakes-and-chains", |o| exit_code(o, 0)),
  ("second-signal-exits", |o| {
    exit_code(o, 130)?;
    contains(
      o,
      "titan-lifecycle: second SIGINT during shutdown, exiting now with code 130",
    )
  }),
  ("second-signal-fixed-code", |o| exit_code(o, 7)),
  ("no-escalation", |o| exit_code(o, 0)),
  ("never-chains-to-a-one-shot-handler", |o| exit_code(o, 0)),
  ("guard-takes-back-and-cuts-cycles", |o| exit_code(o, 0)),
  ("watchdog-hard-exit-blocked", |o| {
    exit_code(o, 124)?;
    // Deadline 200 ms. The loop never answered the probe, so the watchdog does not wait for it: the rest is
    // process start-up and a loaded machine.
    lived_between(o, 195, 600)?;
    contains(o, "did not finish within its 200.0 ms deadline")?;
    contains(o, "event loop: blocked (no answer to a probe sent")?;
    contains(o, "running: 'spin'")
  }),
  ("watchdog-hard-exit-responsive", |o| {
    exit_code(o, 124)?;
    lived_between(o, 195, 600)?;
    contains(o, "event loop: responsive")
  }),
  ("watchdog-disarmed", |o| exit_code(o, 0)),
  ("bounded-write-to-a-stalled-stderr", |o| exit_code(o, 0)),
  ("bounded-write-to-a-stalled-socket", |o| exit_code(o, 0)),
  ("second-signal-with-a-stalled-stderr", |o| {
    exit_code(o, 143)?;
    lived_between(o, 0, 2_000)
  }),
  ("hard-exit-with-a-stalled-stderr", |o| {
    exit_code(o, 124)?;
    lived_between(o, 195, 800)
  }),
  ("a-copy-forwarded-by-the-parent-is-the-same-signal", |o| {
    exit_code(o, 143)?;
    contains(o, "second SIGTERM during shutdown")
  }),
  ("a-later-signal-from-the-parent-joins", |o| {
    exit_code(o, 130)?;
    contains(o, "second SIGINT during shutdown")
  }),
  ("the-group-signal-just-after-the-parents-joins", |o| {
    contains(o, "the group's SIGINT joined")?;
    exit_code(o, 143)?;
    contains(o, "second SIGTERM during shutdown")
  }),
  ("a-signal-relayed-to-itself-joins", |o| {
    contains(o, "the relayed copy joined")?;
    exit_code(o, 143)?;
    contains(o, "second SIGTERM during shutdown")
  }),
  ("the-watchdog-tells-javascript-when-libuv-does-not", |o| {
    exit_code(o, 0)
  }),
  ("signal-begins-shutdown-natively", |o| {
    exit_code(o, 124)?;
    lived_between(o, 145, 600)?;
    contains(o, "(reason SIGTERM) did not finish within its 150.0 ms deadline")?;
    contains(o, "the shutdown never reached JavaScript")?;
    contains(o, "pending: 'spin'")
  }),
];

fn main() {
  if let Ok(scenario) = std::env::var("TITAN_SCENARIO") {
    child(&scenario);
    return;
  }
  println!("\nrunning {} tests", SCENARIOS.len());
  let mut failed = 0;
  for (name, check) in SCENARIOS {
    match check(&run(name)) {
      Ok(()) => println!("test {name} ... ok"),
      Err(why) => {
        failed += 1;
        println!("test {name} ... FAILED\n{why}");
      }
    }
  }
  let verdict = if failed == 0 { "ok" } else { "FAILED" };
  println!(
    "\ntest result: {verdict}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
    SCENARIOS.len() - failed
  );
  std::process::exit(if failed == 0 { 0 } else { 1 });
}
