//! Where the event loop is stuck: the JavaScript stack, captured on the main thread inside a V8 interrupt
//! that the watchdog requests (see `v8`), into fixed storage the watchdog then reads.
//!
//! Three slots: the hard exit's stack (asked for shortly before the deadline, or half way through the
//! deadline's grace for a loop that answered the probe and then blocked), the diagnostic report (asked
//! for at the deadline, once the exit is certain, so a shutdown that finishes in time never writes one), and
//! stalls during a shutdown. A request moves a slot from idle to requested, with a new generation, and asks
//! V8 for the interrupt; the interrupt (main thread) claims that generation, writes the frames, then, if
//! asked, writes Node's diagnostic report, and marks the slot done. A request nobody serviced (the main
//! thread is in native code or a system call: V8 checks for interrupts only while running JavaScript) is
//! withdrawn; should V8 run the interrupt later, it finds its generation gone and returns at once. Readers
//! name the generation they asked for, so they never read another request's capture.
//!
//! The interrupt never runs JavaScript: it reads the stack V8 already has, copies strings into fixed
//! arrays, and for the report calls Node's own writer, which also runs no JavaScript.

use std::cell::UnsafeCell;
use std::ffi::{CString, c_void};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::MonoTime;
use crate::text::Escaped;
use crate::v8;

/// How many frames are kept: Node's own traces show 10.
pub const MAX_FRAMES: usize = 16;
const FUNCTION_BYTES: usize = 128;
const SCRIPT_BYTES: usize = 320;
const REPORT_NAME_BYTES: usize = 128;

/// Which capture: the one the hard exit prints (taken before the deadline), the one that writes the
/// diagnostic report (at the deadline, once the exit is certain), or the one a stall event carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
  HardExit = 0,
  Report = 1,
  Stall = 2,
}

/// One JavaScript frame, its strings as UTF-8 (cut on a character boundary if long).
#[derive(Copy, Clone)]
pub struct Frame {
  function: [u8; FUNCTION_BYTES],
  function_len: usize,
  script: [u8; SCRIPT_BYTES],
  script_len: usize,
  /// One-based line and column, as Node prints them.
  pub line: i32,
  pub column: i32,
}

impl Frame {
  const EMPTY: Frame = Frame {
    function: [0; FUNCTION_BYTES],
    function_len: 0,
    script: [0; SCRIPT_BYTES],
    script_len: 0,
    line: 0,
    column: 0,
  };

  /// A frame from its parts (strings cut to fit).
  pub fn from_parts(function: &str, script: &str, line: i32, column: i32) -> Frame {
    let mut frame = Frame::EMPTY;
    frame.function_len = utf8_into(function, &mut frame.function);
    frame.script_len = utf8_into(script, &mut frame.script);
    frame.line = line;
    frame.column = column;
    frame
  }

  /// The function's name; empty for an anonymous function or top-level code.
  pub fn function(&self) -> &str {
    utf8(&self.function[..self.function_len])
  }

  /// The script's name (a path, or a `file:` or `node:` URL); empty for code without one (`eval`).
  pub fn script(&self) -> &str {
    utf8(&self.script[..self.script_len])
  }
}

/// Bytes this module wrote from whole characters; an invalid tail cannot occur, but reads as nothing.
fn utf8(bytes: &[u8]) -> &str {
  std::str::from_utf8(bytes).unwrap_or_default()
}

/// A frame the way Node prints one in a stack trace, without the leading "at ": `name (file:line:column)`,
/// or `file:line:column` for a nameless function. Names are user text, escaped as the report escapes it
/// (a control character in a file name cannot forge a line).
impl fmt::Display for Frame {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let script = Escaped(match self.script() {
      "" => "<anonymous>",
      script => script,
    });
    match self.function() {
      "" => write!(f, "{script}:{}:{}", self.line, self.column),
      function => write!(
        f,
        "{} ({script}:{}:{})",
        Escaped(function),
        self.line,
        self.column
      ),
    }
  }
}

/// The package's own JavaScript (file and directory paths), set once by the binding: runs of frames in it
/// are printed as one line, so the user's frames stand out.
static OWN_PATHS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Sets the package's own paths (see [`write_frames`]): a frame whose script starts with one is its own.
pub fn set_own_paths(paths: Vec<String>) {
  *OWN_PATHS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = paths;
}

/// Writes `frames`, one per line, each as `{line_prefix}at {frame}`; a run of two or more frames in the
/// package's own code becomes one line saying how many. `deeper`: the stack went on past the frames kept,
/// which a last line says (a deep recursion fills them all with one function, and its caller, the task's
/// handler, is among those left out). Never waits: if the paths cannot be read at once, every frame is
/// printed.
pub fn write_frames(
  out: &mut impl fmt::Write,
  frames: &[Frame],
  deeper: bool,
  line_prefix: &str,
) -> fmt::Result {
  // Held while the frames are written rather than copied: the hard exit's report allocates nothing (the
  // lock is only ever taken to set the paths, at start-up).
  let guard = OWN_PATHS.try_lock().ok();
  let own: &[String] = guard.as_deref().map_or(&[], Vec::as_slice);
  let is_own = |frame: &Frame| own.iter().any(|path| frame.script().starts_with(path.as_str()));
  let mut i = 0;
  while i < frames.len() {
    let run = frames[i..].iter().take_while(|f| is_own(f)).count();
    if run >= 2 {
      writeln!(out, "{line_prefix}... {run} frames inside titan-lifecycle")?;
      i += run;
    } else {
      writeln!(out, "{line_prefix}at {}", frames[i])?;
      i += 1;
    }
  }
  if deeper {
    writeln!(
      out,
      "{line_prefix}... and older frames (only the innermost {MAX_FRAMES} are kept)"
    )?;
  }
  Ok(())
}

/// What one capture found.
pub struct Capture {
  frames: [Frame; MAX_FRAMES],
  count: usize,
  /// Whether the stack had more frames than were kept.
  deeper: bool,
  /// Whether V8's stack could be walked at all (a handle scope opened); if not, `count` is 0 for that.
  walked: bool,
  requested: MonoTime,
  captured: MonoTime,
  /// The diagnostic report's file name (no directory), when one was asked for and Node wrote it.
  report_name: [u8; REPORT_NAME_BYTES],
  report_len: usize,
}

impl Capture {
  const EMPTY: Capture = Capture {
    frames: [Frame::EMPTY; MAX_FRAMES],
    count: 0,
    deeper: false,
    walked: false,
    requested: MonoTime::from_nanos(0),
    captured: MonoTime::from_nanos(0),
    report_name: [0; REPORT_NAME_BYTES],
    report_len: 0,
  };

  /// The frames, innermost first.
  pub fn frames(&self) -> &[Frame] {
    &self.frames[..self.count]
  }

  /// Whether the stack went on past [`Capture::frames`] (see [`write_frames`]).
  pub fn deeper(&self) -> bool {
    self.deeper
  }

  /// Whether the stack was walked: `false` when no handle scope could be opened (the main environment
  /// was going away), so an empty `frames` says nothing about where the loop was.
  pub fn walked(&self) -> bool {
    self.walked
  }

  /// When the watchdog asked for it.
  pub fn requested(&self) -> MonoTime {
    self.requested
  }

  /// How long V8 took to run the interrupt: a fraction of a millisecond when the loop was in JavaScript.
  pub fn delay(&self) -> Duration {
    self.captured.saturating_since(self.requested)
  }
}

/// Where a diagnostic report goes: the path to give Node (relative to `process.report.directory` when one
/// is set, as Node puts it there) and the directory to print.
#[derive(Clone, Debug)]
pub struct ReportTarget {
  pub for_node: CString,
  pub shown: String,
}

// A slot's state and the generation of its request share one atomic word (state in the low byte), so a
// request, the interrupt's claim and a withdrawal are each one compare-and-swap on both at once.
const IDLE: u64 = 0;
const REQUESTED: u64 = 1;
/// The interrupt claimed the request and is reading the stack.
const RUNNING: u64 = 2;
/// The frames are in; the diagnostic report is being written.
const FRAMES: u64 = 3;
const DONE: u64 = 4;
const STATE_BITS: u32 = 8;

fn word(generation: u64, state: u64) -> u64 {
  (generation << STATE_BITS) | state
}

fn state_of(word: u64) -> u64 {
  word & ((1 << STATE_BITS) - 1)
}

fn generation_of(word: u64) -> u64 {
  word >> STATE_BITS
}

struct Slot {
  word: AtomicU64,
  /// When the current request was made (written before the request is published).
  requested_ns: AtomicU64,
  /// Where the current request's diagnostic report goes, if it asks for one.
  report: Mutex<Option<ReportTarget>>,
  capture: UnsafeCell<Capture>,
}

// SAFETY: `capture` is written only by the interrupt that moved the word from (g, REQUESTED) to
// (g, RUNNING), one at a time (interrupts run on the main thread, one after another, and the claim is a
// compare-and-swap), and read only after an acquire load saw (g, FRAMES) or (g, DONE), which the writer
// stores with release ordering after its last write to what that state covers (the frames at FRAMES, the
// report's name at DONE). A new request cannot take a slot in RUNNING or FRAMES.
unsafe impl Sync for Slot {}

impl Slot {
  const fn new() -> Self {
    Slot {
      word: AtomicU64::new(0),
      requested_ns: AtomicU64::new(0),
      report: Mutex::new(None),
      capture: UnsafeCell::new(Capture::EMPTY),
    }
  }
}

static SLOTS: [Slot; 3] = [Slot::new(), Slot::new(), Slot::new()];

/// Whether stacks can be captured in this process; `Err` says why not (shown in the report).
pub fn availability() -> Result<(), &'static str> {
  v8::api()?;
  if v8::main_isolate_known() {
    Ok(())
  } else {
    Err("the main thread's V8 isolate is not known")
  }
}

/// Whether a diagnostic report can be written in this process.
pub fn can_write_diagnostic_report() -> bool {
  availability().is_ok() && v8::api().is_ok_and(|api| api.can_write_diagnostic_report())
}

/// Asks V8 to capture the stack into `purpose`'s slot, and then to write a diagnostic report to `report`.
/// Any thread. Returns the request's generation, which `read` and `abandon` take; `None` if capturing is
/// unavailable or a capture is in progress in that slot.
pub fn request(purpose: Purpose, report: Option<ReportTarget>) -> Option<u64> {
  let Ok(api) = v8::api() else {
    return None;
  };
  let slot = &SLOTS[purpose as usize];
  let mut current = slot.word.load(Ordering::Acquire);
  let generation = loop {
    if matches!(state_of(current), RUNNING | FRAMES) {
      return None;
    }
    // Written before the request is published below. Should an interrupt claim the previous request in
    // between, the compare-and-swap fails and this is retried; all that interrupt can see of these is a
    // slightly later request time (a capture that looks more prompt than it was) and the new target.
    slot
      .requested_ns
      .store(MonoTime::now().as_nanos(), Ordering::Release);
    *slot
      .report
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner()) = report.clone();
    let generation = generation_of(current) + 1;
    match slot.word.compare_exchange(
      current,
      word(generation, REQUESTED),
      Ordering::AcqRel,
      Ordering::Acquire,
    ) {
      Ok(_) => break generation,
      Err(actual) => current = actual,
    }
  };
  let data = ((generation << 2) | purpose as u64) as usize as *mut c_void;
  // SAFETY: `on_interrupt` checks the request is still current before touching anything, so it may run
  // late or never.
  if unsafe { api.interrupt_main(on_interrupt, data) } {
    Some(generation)
  } else {
    // The main isolate is gone (the process is tearing down): withdraw the request nobody will serve.
    abandon(purpose, generation);
    None
  }
}

/// The state of a slot's request, as the watchdog and the binding see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Progress {
  /// Not this request's: withdrawn, superseded, or never made.
  Gone,
  /// Requested; V8 has not run the interrupt (the main thread is not running JavaScript).
  Pending,
  /// The interrupt is reading the stack.
  Running,
  /// The frames are in; the diagnostic report is still being written.
  FramesIn,
  Done,
}

/// How request `generation` in `purpose`'s slot is getting on.
pub fn progress(purpose: Purpose, generation: u64) -> Progress {
  let current = SLOTS[purpose as usize].word.load(Ordering::Acquire);
  if generation_of(current) != generation {
    return Progress::Gone;
  }
  match state_of(current) {
    REQUESTED => Progress::Pending,
    RUNNING => Progress::Running,
    FRAMES => Progress::FramesIn,
    DONE => Progress::Done,
    _ => Progress::Gone,
  }
}

/// Waits (sleeping in short steps) until the request is done, or its frames are in when `frames_only`, or
/// `until` passes, or `pending_until` passes with V8 not yet at it (a request the interrupt has not claimed
/// by then will not be: the main thread is outside JavaScript); returns its progress then. Not for the main
/// thread, which runs the interrupt.
pub fn wait(
  purpose: Purpose,
  generation: u64,
  pending_until: MonoTime,
  until: MonoTime,
  frames_only: bool,
) -> Progress {
  loop {
    let progress = progress(purpose, generation);
    let now = MonoTime::now();
    let enough = match progress {
      Progress::Done | Progress::Gone => true,
      Progress::FramesIn => frames_only,
      Progress::Pending => now >= pending_until,
      Progress::Running => false,
    };
    if enough || now >= until {
      return progress;
    }
    std::thread::sleep(Duration::from_micros(250));
  }
}

/// Withdraws request `generation` if V8 has not serviced it; returns whether it did (false: the interrupt
/// claimed it first, or it is not pending).
pub fn abandon(purpose: Purpose, generation: u64) -> bool {
  SLOTS[purpose as usize]
    .word
    .compare_exchange(
      word(generation, REQUESTED),
      word(generation, IDLE),
      Ordering::AcqRel,
      Ordering::Acquire,
    )
    .is_ok()
}

/// Reads the capture of request `generation`, if its frames are in.
pub fn read<R>(purpose: Purpose, generation: u64, f: impl FnOnce(&Capture) -> R) -> Option<R> {
  let slot = &SLOTS[purpose as usize];
  let current = slot.word.load(Ordering::Acquire);
  if generation_of(current) != generation || !matches!(state_of(current), FRAMES | DONE) {
    return None;
  }
  // SAFETY: (generation, FRAMES or DONE) was stored with release ordering after the frames were written,
  // and the frames cannot be written again while this read lasts. The hard exit's slot is requested and
  // read by the watchdog alone. The stall slot is requested by the watchdog, but only the interrupt on the
  // main thread writes its frames, and the main thread is the one reading it here (the binding's stall
  // reading), so the interrupt cannot run during this call.
  Some(f(unsafe { &*slot.capture.get() }))
}

/// What became of the diagnostic report request `generation` asked for.
pub fn report_outcome(purpose: Purpose, generation: u64) -> ReportOutcome {
  let slot = &SLOTS[purpose as usize];
  let current = slot.word.load(Ordering::Acquire);
  if generation_of(current) != generation {
    return ReportOutcome::NotWritten;
  }
  match state_of(current) {
    DONE => {
      // SAFETY: DONE was stored with release ordering after the report's name was written.
      let capture = unsafe { &*slot.capture.get() };
      let name = utf8(&capture.report_name[..capture.report_len]);
      let shown = slot
        .report
        .try_lock()
        .ok()
        .and_then(|t| t.as_ref().map(|t| t.shown.clone()));
      match (name, shown) {
        ("", _) | (_, None) => ReportOutcome::Failed,
        (name, Some(directory)) => ReportOutcome::Written(join(&directory, name)),
      }
    }
    REQUESTED => ReportOutcome::NotWritten,
    _ => ReportOutcome::Unfinished,
  }
}

/// What became of a diagnostic report request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
  /// Written, to this path.
  Written(String),
  /// Node wrote nothing (it says why on stderr).
  Failed,
  /// Still being written.
  Unfinished,
  /// Never started: V8 did not run the interrupt.
  NotWritten,
}

fn join(directory: &str, name: &str) -> String {
  if directory.ends_with('/') {
    format!("{directory}{name}")
  } else {
    format!("{directory}/{name}")
  }
}

/// What V8 runs on the main thread at its next interrupt check after `request`.
unsafe extern "C" fn on_interrupt(isolate: *mut v8::Isolate, data: *mut c_void) {
  let data = data as usize as u64;
  let Some(slot) = SLOTS.get((data & 3) as usize) else {
    return;
  };
  let generation = data >> 2;
  if slot
    .word
    .compare_exchange(
      word(generation, REQUESTED),
      word(generation, RUNNING),
      Ordering::AcqRel,
      Ordering::Acquire,
    )
    .is_err()
  {
    // Withdrawn or superseded: a late interrupt must not describe a moment nobody asked about.
    return;
  }
  let Ok(api) = v8::api() else {
    slot.word.store(word(generation, DONE), Ordering::Release);
    return;
  };
  // Nothing here may unwind into V8: a panic ends the capture, not the process. (Unwind safety: a capture
  // cut short is marked done all the same, and its count says how many frames are whole.)
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    // SAFETY: this request was claimed above, so nothing else writes the slot, and nothing reads it until
    // the word says so.
    let capture = unsafe { &mut *slot.capture.get() };
    capture.requested = MonoTime::from_nanos(slot.requested_ns.load(Ordering::Acquire));
    capture.count = 0;
    capture.deeper = false;
    capture.walked = false;
    capture.report_len = 0;
    let mut units = [0u16; SCRIPT_BYTES];
    // SAFETY: V8 runs this callback on the isolate's thread at an interrupt check, where handles may be made.
    capture.walked = unsafe {
      // One frame more than is kept: whether there are more is all it tells.
      api.walk_stack(isolate, MAX_FRAMES + 1, |api, raw| {
        if capture.count == MAX_FRAMES {
          capture.deeper = true;
          return;
        }
        let frame = &mut capture.frames[capture.count];
        let n = api.read_string(isolate, raw.function, &mut units[..FUNCTION_BYTES]);
        frame.function_len = utf16_into(&units[..n], &mut frame.function);
        let n = api.read_string(isolate, raw.script, &mut units);
        frame.script_len = utf16_into(&units[..n], &mut frame.script);
        frame.line = raw.line;
        frame.column = raw.column;
        capture.count += 1;
      })
    };
    capture.captured = MonoTime::now();
    slot.word.store(word(generation, FRAMES), Ordering::Release);
    let target = slot.report.try_lock().ok().and_then(|t| t.clone());
    if let Some(target) = target {
      let name = report_name();
      if let Ok(path) = CString::new(join(&target.for_node.to_string_lossy(), &name)) {
        // Node announces the report on stderr before writing its file: a stderr nobody reads must not
        // hold it there (the exit would wait out its patience, with an empty file).
        let written = crate::exit_write::without_blocking_stderr(|| {
          // SAFETY: inside the interrupt, as above.
          unsafe {
            api.write_diagnostic_report(
              isolate,
              &path,
              c"titan-lifecycle hard exit",
              &mut capture.report_name,
            )
          }
        });
        // Node answers with the path it was given; only its last component is kept (the directory
        // printed is the one set, whatever `process.report.directory` made of it).
        capture.report_len = if written > 0 {
          utf8_into(&name, &mut capture.report_name)
        } else {
          0
        };
      }
    }
  }));
  slot.word.store(word(generation, DONE), Ordering::Release);
}

/// `report.<UTC date>.<UTC time>.<pid>.titan-lifecycle.json`: Node's own report names, with the date and
/// pid, so reports from a restarted container (the same pid, often 1) never overwrite each other.
fn report_name() -> String {
  let seconds = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0, |d| d.as_secs());
  let (year, month, day, hour, minute, second) = utc(seconds);
  format!(
    "report.{year:04}{month:02}{day:02}.{hour:02}{minute:02}{second:02}.{}.titan-lifecycle.json",
    std::process::id(),
  )
}

/// Seconds since the Unix epoch as a UTC date and time: (year, month, day, hour, minute, second). Done by
/// hand (days to a civil date, by the proleptic Gregorian calendar) rather than with `gmtime_r`, whose
/// `time_t` is about to change size on musl.
fn utc(seconds: u64) -> (u64, u64, u64, u64, u64, u64) {
  let (days, rest) = (seconds / 86_400, seconds % 86_400);
  // Shifted so that a 400-year era starts on 1 March, which puts the leap day last.
  let z = days + 719_468;
  let era = z / 146_097;
  let day_of_era = z - era * 146_097;
  let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
  let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  let shifted_month = (5 * day_of_year + 2) / 153;
  let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  let month = if shifted_month < 10 {
    shifted_month + 3
  } else {
    shifted_month - 9
  };
  let year = year_of_era + era * 400 + u64::from(month <= 2);
  (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Copies as much of `text` into `out` as fits in whole characters; returns the bytes written.
fn utf8_into(text: &str, out: &mut [u8]) -> usize {
  let mut take = text.len().min(out.len());
  while !text.is_char_boundary(take) {
    take -= 1;
  }
  out[..take].copy_from_slice(&text.as_bytes()[..take]);
  take
}

/// Encodes UTF-16 `units` as UTF-8 into `out`, stopping before a character that does not fit; a lone
/// surrogate becomes U+FFFD. Returns the bytes written.
pub fn utf16_into(units: &[u16], out: &mut [u8]) -> usize {
  let mut len = 0;
  for c in char::decode_utf16(units.iter().copied()) {
    let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
    if len + c.len_utf8() > out.len() {
      break;
    }
    len += c.encode_utf8(&mut out[len..]).len();
  }
  len
}

#[cfg(test)]
mod tests {
  use super::*;

  fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
  }

  #[test]
  fn utf16_is_encoded_whole_characters_only() {
    let mut out = [0u8; 8];
    let n = utf16_into(&units("añ€😀x"), &mut out);
    // a (1) + ñ (2) + € (3) = 6; the emoji (4) does not fit in the 2 left.
    assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), "añ€");
    let n = utf16_into(&[0xd800, 0x61], &mut out);
    assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), "\u{fffd}a");
  }

  #[test]
  fn a_frame_prints_as_node_prints_it() {
    let mut frame = Frame::EMPTY;
    frame.line = 12;
    frame.column = 5;
    frame.script_len = utf16_into(&units("/srv/app.js"), &mut frame.script);
    assert_eq!(frame.to_string(), "/srv/app.js:12:5");
    frame.function_len = utf16_into(&units("spin"), &mut frame.function);
    assert_eq!(frame.to_string(), "spin (/srv/app.js:12:5)");
    frame.script_len = 0;
    assert_eq!(frame.to_string(), "spin (<anonymous>:12:5)");
  }

  #[test]
  fn frames_inside_the_package_collapse_into_one_line() {
    set_own_paths(vec![
      "/pkg/titan-lifecycle/lib/".into(),
      "/pkg/titan-lifecycle/index.js".into(),
    ]);
    let frames = [
      Frame::from_parts("spin", "/srv/app.js", 3, 1),
      Frame::from_parts("handler", "/pkg/titan-lifecycle/lib/run.js", 10, 2),
      Frame::from_parts("", "/pkg/titan-lifecycle/index.js", 20, 3),
      Frame::from_parts("main", "/srv/app.js", 9, 1),
      Frame::from_parts("one", "/pkg/titan-lifecycle/index.js", 30, 4),
    ];
    let mut out = String::new();
    write_frames(&mut out, &frames, false, "> ").unwrap();
    assert_eq!(
      out,
      "> at spin (/srv/app.js:3:1)\n> ... 2 frames inside titan-lifecycle\n> at main (/srv/app.js:9:1)\n\
       > at one (/pkg/titan-lifecycle/index.js:30:4)\n"
    );
    // A stack deeper than the frames kept says so last.
    let mut out = String::new();
    write_frames(&mut out, &frames[..1], true, "> ").unwrap();
    assert_eq!(
      out,
      "> at spin (/srv/app.js:3:1)\n> ... and older frames (only the innermost 16 are kept)\n"
    );
  }

  #[test]
  fn report_names_carry_the_utc_date_and_time() {
    assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
    // 2024-02-29T23:59:59Z, a leap day; 2026-11-22T02:32:50Z (as `date -u -d @1795314770` says).
    assert_eq!(utc(1_709_251_199), (2024, 2, 29, 23, 59, 59));
    assert_eq!(utc(1_795_314_770), (2026, 11, 22, 2, 32, 50));
    assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
  }

  #[test]
  fn without_node_nothing_is_requested_and_the_reason_is_given() {
    // The test binary is not Node: the V8 functions are not there.
    assert!(availability().is_err());
    assert_eq!(request(Purpose::Stall, None), None);
    assert_eq!(progress(Purpose::Stall, 1), Progress::Gone);
  }

  #[test]
  fn a_request_v8_has_not_claimed_in_time_is_not_waited_for_but_one_it_reads_is() {
    // The report's slot, which no other test uses; a request stands in for one V8 never serviced (a loop
    // blocked in native code), then for one whose frames it is copying.
    let slot = &SLOTS[Purpose::Report as usize];
    let generation = 77;
    let long = Duration::from_secs(5);
    slot.word.store(word(generation, REQUESTED), Ordering::Release);
    let start = MonoTime::now();
    let progress = wait(
      Purpose::Report,
      generation,
      start,
      start.saturating_add(long),
      true,
    );
    assert_eq!(progress, Progress::Pending);
    assert!(
      MonoTime::now().saturating_since(start) < Duration::from_secs(1),
      "a pending request held the wait"
    );
    // Still pending with its own patience left: waited for until then.
    let pending_until = MonoTime::now().saturating_add(Duration::from_millis(20));
    assert_eq!(
      wait(
        Purpose::Report,
        generation,
        pending_until,
        pending_until.saturating_add(long),
        true
      ),
      Progress::Pending
    );
    assert!(MonoTime::now() >= pending_until);
    // Claimed by the interrupt: waited for until `until`, whatever the pending patience.
    slot.word.store(word(generation, RUNNING), Ordering::Release);
    let until = MonoTime::now().saturating_add(Duration::from_millis(20));
    assert_eq!(
      wait(Purpose::Report, generation, start, until, true),
      Progress::Running
    );
    assert!(MonoTime::now() >= until);
    slot.word.store(word(0, IDLE), Ordering::Release);
  }
}
