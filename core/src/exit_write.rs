//! Writes to stderr on an exit path, bounded in time; and the default logger's lines to a terminal
//! ([`write_line_bounded`]), which must not hold the event loop either.
//!
//! The hard-exit report and the second-signal line are written just before `_exit`. A plain blocking
//! `write(2)` there can wait forever: stderr may be a pipe or socket nobody reads (a stalled log collector;
//! fd 2 is blocking whenever Node has not wrapped it, and a child that inherited it can keep it full) or a
//! terminal paused with Ctrl-S. A non-blocking fd 2 that is full fails at once instead, and the report would be
//! lost. So every write here waits for room with `poll`, for at most the time left of a small budget, and
//! gives up when the budget is spent: the process then exits with its code, with or without the text.
//!
//! How the wait is made non-blocking depends on what fd 2 is (`fstat`):
//! - a regular file: written directly (a local disk does not wait on a reader; a hung network file system
//!   would, and is not covered);
//! - a socket: `send` with `MSG_DONTWAIT`, which is non-blocking for this call only;
//! - a pipe or terminal, on Linux: reopened through `/proc/self/fd/2` with `O_NONBLOCK`. That is a new open
//!   file description, so the flag does not change the one fd 2 shares with other processes;
//! - anything else, or when reopening fails (no `/proc`, as on macOS, or no permission, as for a terminal
//!   that belongs to another user): `O_NONBLOCK` is set on fd 2 itself for the write and put back right
//!   after. Other processes sharing it could see `EAGAIN` for those few milliseconds; a write that cannot
//!   block is worth that at an exit. Whether fd 2 was already non-blocking is never trusted: another process
//!   sharing it could clear the flag between the check and the write.
//!
//! # Async-signal-safety
//!
//! Everything here runs inside the signal handler (a second signal) and on the watchdog thread: it uses only
//! `fstat`, `fcntl`, `open`, `close`, `poll`, `write`, `send` and `clock_gettime`, all async-signal-safe by
//! POSIX, on stack buffers. No allocation, no lock.

use std::ffi::c_int;
use std::time::Duration;

use crate::clock::MonoTime;
use crate::errno;

/// How long one exit path may spend writing to stderr in total. Long enough for a collector that is merely
/// slow, short enough that a stalled one delays the exit by a few tens of milliseconds only.
pub const EXIT_WRITE_BUDGET: Duration = Duration::from_millis(50);

/// The largest chunk written at once: what a pipe accepts atomically.
const CHUNK: usize = libc::PIPE_BUF;

const STDERR: c_int = 2;

/// How a write reaches fd 2 without blocking.
enum Target {
  /// Written directly: a regular file.
  Direct,
  /// A socket, sent to with `MSG_DONTWAIT`.
  Socket,
  /// A non-blocking descriptor of our own on the same pipe or terminal, closed when done.
  Reopened(c_int),
  /// fd 2 made non-blocking for the write; its flags as they were, put back when done.
  FlagSet(c_int),
}

impl Target {
  /// Async-signal-safe: `fstat`, `fcntl`, `open`.
  fn of_stderr() -> Target {
    if let Some(target) = Self::unshared() {
      return target;
    }
    // SAFETY: F_GETFL only reads the descriptor's flags; F_SETFL changes only O_NONBLOCK here.
    unsafe {
      let flags = libc::fcntl(STDERR, libc::F_GETFL);
      if flags < 0 {
        return Target::Direct;
      }
      libc::fcntl(STDERR, libc::F_SETFL, flags | libc::O_NONBLOCK);
      Target::FlagSet(flags)
    }
  }

  /// A way to write without blocking that changes nothing other processes share, or `None` where the only
  /// one left is a flag on fd 2's own description. Async-signal-safe: `fstat`, `open`.
  fn unshared() -> Option<Target> {
    match stderr_kind() {
      // Closed: written directly, which fails just as quickly.
      None | Some(StderrKind::File) => Some(Target::Direct),
      Some(StderrKind::Socket) => Some(Target::Socket),
      Some(StderrKind::Other) => reopen_non_blocking().map(Target::Reopened),
    }
  }

  /// The descriptor to poll.
  fn fd(&self) -> c_int {
    match self {
      Target::Reopened(fd) => *fd,
      _ => STDERR,
    }
  }

  /// One write attempt of at most [`CHUNK`] bytes. Async-signal-safe.
  fn write(&self, bytes: &[u8]) -> isize {
    let len = chunk_len(bytes);
    match self {
      // SAFETY: the pointer and length describe the live slice `bytes`.
      Target::Socket => unsafe {
        libc::send(
          STDERR,
          bytes.as_ptr().cast(),
          len,
          libc::MSG_DONTWAIT | no_sigpipe(),
        )
      },
      // SAFETY: as above.
      _ => unsafe { libc::write(self.fd(), bytes.as_ptr().cast(), len) },
    }
  }
}

impl Drop for Target {
  fn drop(&mut self) {
    match self {
      // SAFETY: our own descriptor from `open`, closed once.
      Target::Reopened(fd) => unsafe {
        libc::close(*fd);
      },
      // SAFETY: restores the flags read from fd 2 before we changed them.
      Target::FlagSet(flags) => unsafe {
        libc::fcntl(STDERR, libc::F_SETFL, *flags);
      },
      _ => {}
    }
  }
}

#[cfg(target_os = "linux")]
fn reopen_non_blocking() -> Option<c_int> {
  // O_NOCTTY: opening a terminal must not make it our controlling terminal.
  let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
  // SAFETY: a NUL-terminated path; open is async-signal-safe.
  let fd = unsafe { libc::open(c"/proc/self/fd/2".as_ptr(), flags) };
  (fd >= 0).then_some(fd)
}

/// Elsewhere `/dev/fd/2` is a `dup` of fd 2, sharing its blocking flag: no help.
#[cfg(not(target_os = "linux"))]
fn reopen_non_blocking() -> Option<c_int> {
  None
}

#[cfg(target_os = "linux")]
fn no_sigpipe() -> c_int {
  libc::MSG_NOSIGNAL
}

/// Where `MSG_NOSIGNAL` does not exist, Node ignores SIGPIPE anyway.
#[cfg(not(target_os = "linux"))]
fn no_sigpipe() -> c_int {
  0
}

/// Waits until `fd` has room for a write or `give_up` passes; returns whether it has room.
///
/// Async-signal-safe: `poll` and `clock_gettime`.
fn wait_writable(fd: c_int, give_up: MonoTime) -> bool {
  loop {
    let left = give_up.saturating_since(MonoTime::now());
    if left.is_zero() {
      return false;
    }
    let mut poll_fd = libc::pollfd {
      fd,
      events: libc::POLLOUT,
      revents: 0,
    };
    let ms = left.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int;
    // SAFETY: one valid pollfd on the stack.
    match unsafe { libc::poll(&mut poll_fd, 1, ms) } {
      n if n > 0 => return poll_fd.revents & libc::POLLOUT != 0,
      0 => return false,
      _ if errno::get() == libc::EINTR => continue,
      _ => return false,
    }
  }
}

/// How much of `bytes` to write at once: all of it if it fits in a [`CHUNK`], else up to the last line end
/// that fits (a whole chunk for a line longer than that). A pipe takes a chunk whole or not at all, so
/// another writer's line (a second signal's, JavaScript's log) lands between two of ours, not inside one.
/// Async-signal-safe: reads the slice only.
fn chunk_len(bytes: &[u8]) -> usize {
  if bytes.len() <= CHUNK {
    return bytes.len();
  }
  bytes[..CHUNK]
    .iter()
    .rposition(|&b| b == b'\n')
    .map_or(CHUNK, |at| at + 1)
}

/// Runs `f`, which writes to stderr through code we do not control (Node's diagnostic report announces
/// itself there with a blocking `fprintf`), with a non-blocking description of the same pipe or terminal
/// standing in for fd 2 (Linux), put back after: what `f` writes to a full stderr is lost rather than
/// waited for. This runs only on the way to an exit, where a stderr nobody reads must not hold the process,
/// nor keep Node from writing the report's file, which it opens first. Anything else is left as it is: a
/// regular file does not wait on a reader; for a socket, or where the pipe cannot be reopened, the only
/// ways round would be a flag on fd 2's own description (the watchdog may `_exit` while `f` still runs,
/// and the flag would stay set for every process sharing it: a terminal, a journal socket) or `/dev/null`
/// (the watchdog's report, written meanwhile, would be lost); `f` may then block until the watchdog's
/// patience for the report ends, as before. Other threads writing to fd 2 meanwhile write to the stand-in.
///
/// Not for signal context: it calls `f`. What it does itself (`fstat`, `open`, `fcntl`, `dup2`, `close`) is
/// async-signal-safe.
pub fn without_blocking_stderr<R>(f: impl FnOnce() -> R) -> R {
  let Some(stand_in) = non_blocking_stand_in() else {
    return f();
  };
  // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor (3 or above) for fd 2's description, or fails.
  let saved = unsafe { libc::fcntl(STDERR, libc::F_DUPFD_CLOEXEC, 3) };
  // SAFETY: `stand_in` is our own open descriptor; dup2 replaces slot 2 atomically.
  let swapped = saved >= 0 && unsafe { libc::dup2(stand_in, STDERR) } >= 0;
  // SAFETY: our own descriptor, closed once (slot 2 holds its own reference if the swap was made).
  unsafe { libc::close(stand_in) };
  if !swapped {
    if saved >= 0 {
      // SAFETY: our own descriptor, closed once.
      unsafe { libc::close(saved) };
    }
    return f();
  }
  let result = f();
  // SAFETY: `saved` holds fd 2's original description; dup2 puts it back in slot 2. EINTR and EBUSY (a
  // race with another thread's open) are retried a few times; `saved` is closed either way.
  unsafe {
    for _ in 0..8 {
      if libc::dup2(saved, STDERR) >= 0 {
        break;
      }
      let error = errno::get();
      if error != libc::EINTR && error != libc::EBUSY {
        break;
      }
    }
    libc::close(saved);
  }
  result
}

/// What stands in for fd 2 in [`without_blocking_stderr`], or `None` to leave fd 2 as it is.
fn non_blocking_stand_in() -> Option<c_int> {
  match stderr_kind()? {
    StderrKind::File | StderrKind::Socket => None,
    StderrKind::Other => reopen_non_blocking(),
  }
}

/// What fd 2 is, as far as a write's blocking goes.
enum StderrKind {
  /// A regular file: a write does not wait on a reader.
  File,
  /// A socket: a send can be made non-blocking for itself alone.
  Socket,
  /// A pipe, a terminal or anything else: a write can block.
  Other,
}

/// What fd 2 is, or `None` if it is closed. Async-signal-safe: `fstat`.
fn stderr_kind() -> Option<StderrKind> {
  // SAFETY: a zeroed `stat` is a valid out-parameter.
  let mut info: libc::stat = unsafe { std::mem::zeroed() };
  // SAFETY: fd 2 may be closed; fstat then fails.
  if unsafe { libc::fstat(STDERR, &mut info) } != 0 {
    return None;
  }
  Some(match info.st_mode & libc::S_IFMT {
    libc::S_IFREG => StderrKind::File,
    libc::S_IFSOCK => StderrKind::Socket,
    _ => StderrKind::Other,
  })
}

/// Writes `bytes` to stderr, giving up once `budget` has passed. Returns whether all of it was written.
///
/// Async-signal-safe (see the module docs).
pub fn write_stderr_bounded(bytes: &[u8], budget: Duration) -> bool {
  write_within(
    &Target::of_stderr(),
    bytes,
    MonoTime::now().saturating_add(budget),
    None,
  )
}

/// How long a log line may wait for a terminal that takes nothing (paused with Ctrl-S, a reader gone),
/// counted from the last byte it took. A pseudo-terminal read slowly takes what is written in bursts,
/// once its reader has drained its 4 KB line buffer (the throttle): 300 ms apart at 12.8 KB/s, a 115 200
/// baud console. A paused terminal holds the event loop this long once (see the default logger in
/// lib/validate.js).
pub const LINE_STALL: Duration = Duration::from_millis(500);
/// How long a log line may take in all, while the terminal keeps taking some of it (a slow console, a
/// line of megabytes).
pub const LINE_LIMIT: Duration = Duration::from_secs(2);

/// Writes a log line to stderr in the course of things (not on the way to an exit): whether all of it was
/// written, giving up once the terminal has taken nothing for [`LINE_STALL`] or after [`LINE_LIMIT`] (the
/// rest is lost); or `None` where that cannot be done without setting `O_NONBLOCK` on the description fd 2
/// shares with other processes (a terminal of another user; no `/proc`, as on macOS). Only an exit takes
/// that liberty: set while this thread writes, the flag could be saved and "restored" by the watchdog's
/// report, or outlive a `_exit` in between, and a shell sharing the terminal would then read it with
/// EAGAIN.
pub fn write_line_bounded(bytes: &[u8]) -> Option<bool> {
  let target = Target::unshared()?;
  let limit = MonoTime::now().saturating_add(LINE_LIMIT);
  Some(write_within(&target, bytes, limit, Some(LINE_STALL)))
}

/// Writes `bytes` to `target` until done; returns whether all of it went. Gives up at `limit`, and with
/// `stall`, once that long has passed since the last byte was taken. Async-signal-safe (`clock_gettime`
/// besides the writes and `poll`).
fn write_within(target: &Target, mut bytes: &[u8], limit: MonoTime, stall: Option<Duration>) -> bool {
  let give_up_after = |now: MonoTime| match stall {
    Some(stall) if now.saturating_add(stall) < limit => now.saturating_add(stall),
    _ => limit,
  };
  let mut give_up = give_up_after(MonoTime::now());
  while !bytes.is_empty() {
    let n = target.write(bytes);
    if n > 0 {
      bytes = &bytes[n as usize..];
      if stall.is_some() {
        give_up = give_up_after(MonoTime::now());
      }
      continue;
    }
    match errno::get() {
      _ if n == 0 => return false,
      libc::EINTR => {}
      e if e == libc::EAGAIN || e == libc::EWOULDBLOCK => {
        if !wait_writable(target.fd(), give_up) {
          return false;
        }
      }
      _ => return false,
    }
  }
  true
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_stall_counts_from_the_last_byte_taken_not_from_the_start() {
    // A full pipe whose reader takes 8 KB every 100 ms for 600 ms, then stops: with a 300 ms stall the
    // write goes on while it reads and gives up about 300 ms after the last read. Counted per round of
    // 300 ms from the start instead, it gave up as much as 600 ms after the last read; at the start, before
    // the reader was done.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_end, write_end] = fds;
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(write_end, libc::F_SETFL, libc::O_NONBLOCK) };
    let filler = [b'x'; 4096];
    // SAFETY: writes from a live buffer to our own non-blocking descriptor, until it is full.
    while unsafe { libc::write(write_end, filler.as_ptr().cast(), filler.len()) } > 0 {}
    let reader = std::thread::spawn(move || {
      let mut buffer = [0u8; 8192];
      for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: reads into a live buffer from our own descriptor.
        unsafe { libc::read(read_end, buffer.as_mut_ptr().cast(), buffer.len()) };
      }
      MonoTime::now()
    });
    let started = MonoTime::now();
    let line = vec![b'y'; 1 << 20];
    let limit = started.saturating_add(Duration::from_secs(5));
    let written = write_within(
      &Target::Reopened(write_end),
      &line,
      limit,
      Some(Duration::from_millis(300)),
    );
    let gave_up = MonoTime::now();
    let last_read = reader.join().unwrap();
    // SAFETY: our own descriptor (the write end was closed by the target).
    unsafe { libc::close(read_end) };
    assert!(!written, "a megabyte cannot have gone into the pipe");
    let after_last_read = gave_up.saturating_since(last_read);
    assert!(
      after_last_read >= Duration::from_millis(200) && after_last_read < Duration::from_millis(450),
      "gave up {after_last_read:?} after the last read ({:?} after the start)",
      gave_up.saturating_since(started)
    );
  }

  #[test]
  fn chunks_end_at_a_line_end_when_one_fits() {
    // Short: all of it, line end or not.
    assert_eq!(chunk_len(b"one line\n"), 9);
    assert_eq!(chunk_len(b"no line end"), 11);
    assert_eq!(chunk_len(&[b'x'; CHUNK]), CHUNK);
    // Longer than a chunk: up to the last line end within the first CHUNK bytes.
    let mut report = Vec::new();
    while report.len() <= 3 * CHUNK {
      report.extend_from_slice(b"titan-lifecycle:   running: 'a task' for 300.2 ms\n");
    }
    let mut rest = &report[..];
    while !rest.is_empty() {
      let len = chunk_len(rest);
      assert!(len <= CHUNK && len > 0);
      assert!(
        len == rest.len() || rest[len - 1] == b'\n',
        "a chunk ends mid-line"
      );
      rest = &rest[len..];
    }
    // One line longer than a chunk: a whole chunk, nothing better to do.
    assert_eq!(chunk_len(&[b'x'; CHUNK + 10]), CHUNK);
  }
}
