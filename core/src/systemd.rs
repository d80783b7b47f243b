//! systemd's readiness and watchdog protocol (`Type=notify`, `WatchdogSec=`), spoken natively: datagrams
//! on the Unix socket that `NOTIFY_SOCKET` names. Node has no Unix datagram sockets, and libsystemd would
//! be a dependency for one `sendto`.
//!
//! What is sent, and from where:
//! - `READY=1` when JavaScript calls `manager.ready()`;
//! - `STOPPING=1` and a `STATUS=` line when the first shutdown begins (by the watchdog for a signal, or by
//!   JavaScript): once per process, which stops once (a later shutdown, after a `stop()` that did not exit,
//!   is extended on from the first one's schedule);
//! - `EXTEND_TIMEOUT_USEC=` from the watchdog thread, at the start and every [`EXTEND_EVERY`] while a
//!   shutdown runs within its deadline: what remains of it plus a margin, so a `TimeoutStopSec=` shorter
//!   than the deadline does not SIGKILL a healthy drain, while a shutdown past it is still cut;
//! - `WATCHDOG=1` from an unref'd timer on the main loop, every half `WATCHDOG_USEC`, started when a manager
//!   takes the signals or, for a service whose manager owns none, at `ready()`: it only fires while
//!   the event loop turns, so a blocked loop stops the pings and systemd's watchdog catches it, in normal
//!   operation and not only at shutdown.
//!
//! Nothing is sent, and no socket is made, unless `NOTIFY_SOCKET` is set. Sends never block
//! (`MSG_DONTWAIT`): neither thread may wait on systemd (libsystemd's `sd_notify` would). A datagram the
//! receiver has no room for is dropped, except `READY=1`, which systemd waits for to finish starting the
//! unit: [`deliver`] says the queue was full, and JavaScript sends it again a little later.
//!
//! Not for signal context: it reads the environment once and sends from the main and watchdog threads.

use std::ffi::c_int;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::MonoTime;
use crate::uv;

/// How often a running shutdown re-extends systemd's stop timeout.
pub const EXTEND_EVERY: Duration = Duration::from_secs(2);
/// Added to what remains of the deadline: the hard exit's own grace and the report's write.
const EXTEND_MARGIN: Duration = Duration::from_secs(1);

/// The socket and address to send to, made on first use from `NOTIFY_SOCKET`.
struct Channel {
  fd: c_int,
  address: libc::sockaddr_un,
  length: libc::socklen_t,
}

/// Set by the process that speaks to systemd for the service (its pid), once it does: its children inherit
/// it with `NOTIFY_SOCKET`, which stays in the environment for the service's own code (an `sd-notify` it
/// already used), and a manager in any of them (a cluster worker, a child service) then keeps quiet rather
/// than say READY=1 or STOPPING=1 for the whole unit. The facade sets it, through `process.env`.
pub const SPEAKER_VARIABLE: &str = "TITAN_LIFECYCLE_NOTIFY_PID";

fn channel() -> Option<&'static Channel> {
  static CHANNEL: OnceLock<Option<Channel>> = OnceLock::new();
  CHANNEL
    .get_or_init(|| {
      let socket = std::env::var_os("NOTIFY_SOCKET")?;
      let speaker = std::env::var(SPEAKER_VARIABLE).ok();
      speaks_for_service(speaker.as_deref(), std::process::id()).then(|| open(&socket))?
    })
    .as_ref()
}

/// Whether this process (`pid`) may speak for the service, given [`SPEAKER_VARIABLE`]'s value: when none
/// has yet, or it is the one that does (a value that is no pid is taken as none).
fn speaks_for_service(speaker: Option<&str>, pid: u32) -> bool {
  speaker
    .and_then(|value| value.parse::<u32>().ok())
    .is_none_or(|speaker| speaker == pid)
}

/// The address `NOTIFY_SOCKET` names: a path (`/run/systemd/notify`) or, after `@`, an abstract name.
fn address_of(value: &[u8]) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
  // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
  let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
  address.sun_family = libc::AF_UNIX as libc::sa_family_t;
  let (abstract_name, bytes) = match value {
    [b'@', name @ ..] => (true, name),
    [b'/', ..] => (false, value),
    _ => return None,
  };
  // A path needs its terminating NUL; an abstract name starts with one and has none.
  let offset = usize::from(abstract_name);
  if bytes.is_empty() || bytes.len() + 1 > address.sun_path.len() || bytes.contains(&0) {
    return None;
  }
  for (slot, &byte) in address.sun_path[offset..].iter_mut().zip(bytes) {
    *slot = byte as libc::c_char;
  }
  let header = std::mem::size_of::<libc::sa_family_t>();
  let length = header + offset + bytes.len() + usize::from(!abstract_name);
  Some((address, length as libc::socklen_t))
}

fn open(value: &std::ffi::OsStr) -> Option<Channel> {
  use std::os::unix::ffi::OsStrExt;
  let (address, length) = address_of(value.as_bytes())?;
  // Not inherited by children: atomically where socket(2) can (Linux), else right after.
  #[cfg(target_os = "linux")]
  let kind = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
  #[cfg(not(target_os = "linux"))]
  let kind = libc::SOCK_DGRAM;
  // SAFETY: socket(2) has no memory preconditions.
  let fd = unsafe { libc::socket(libc::AF_UNIX, kind, 0) };
  if fd < 0 {
    return None;
  }
  #[cfg(not(target_os = "linux"))]
  // SAFETY: fcntl on the descriptor just made.
  unsafe {
    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC)
  };
  Some(Channel { fd, address, length })
}

/// Whether systemd listens (`NOTIFY_SOCKET` is set to an address we can use).
pub fn enabled() -> bool {
  channel().is_some()
}

/// What became of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
  Sent,
  /// `NOTIFY_SOCKET` is not set, or not to an address we can use.
  NotListening,
  /// The receiver's queue is full (`EAGAIN`, `ENOBUFS`): it may have room later.
  QueueFull,
  /// Anything else (no one listens at the address any more, say).
  Failed,
}

/// Sends one notification (newline-separated `KEY=value` lines); returns whether it went out.
pub fn send(message: &str) -> bool {
  deliver(message) == Delivery::Sent
}

/// Sends one notification and says what became of it.
pub fn deliver(message: &str) -> Delivery {
  let Some(channel) = channel() else {
    return Delivery::NotListening;
  };
  #[cfg(target_os = "linux")]
  let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
  #[cfg(not(target_os = "linux"))]
  let flags = libc::MSG_DONTWAIT;
  // SAFETY: the buffer and the address are live for the call; the length is the address's own.
  let sent = unsafe {
    libc::sendto(
      channel.fd,
      message.as_ptr().cast(),
      message.len(),
      flags,
      (&raw const channel.address).cast(),
      channel.length,
    )
  };
  if sent == message.len() as isize {
    return Delivery::Sent;
  }
  match crate::errno::get() {
    libc::EAGAIN | libc::ENOBUFS if sent < 0 => Delivery::QueueFull,
    _ => Delivery::Failed,
  }
}

/// Whether this shutdown's `STOPPING=1` went out (once per process: a process stops once).
static STOPPING_SENT: AtomicBool = AtomicBool::new(false);

/// `READY=1`, unless this process has told systemd it is stopping: a `listen` callback that comes after
/// an early SIGTERM, in any manager (one without signals too), must not take a unit still starting to
/// running while it stops. `NotListening` then, as nothing was said.
pub fn ready() -> Delivery {
  if STOPPING_SENT.load(Ordering::Acquire) {
    return Delivery::NotListening;
  }
  deliver("READY=1\nSTATUS=ready")
}

/// A shutdown began: `STOPPING=1`, the status, and the first extension. Once per process.
pub fn stopping(reason: &str, remaining: Duration) {
  if !enabled() || STOPPING_SENT.swap(true, Ordering::AcqRel) {
    return;
  }
  send(&format!(
    "STOPPING=1\nSTATUS=shutting down ({}): stop phase\nEXTEND_TIMEOUT_USEC={}",
    reason.replace('\n', " "),
    extension(remaining).as_micros()
  ));
  NEXT_EXTEND_NS.store(
    MonoTime::now().saturating_add(EXTEND_EVERY).as_nanos(),
    Ordering::Release,
  );
}

/// A status line, e.g. the phase a shutdown entered.
pub fn status(text: &str) {
  if enabled() {
    send(&format!("STATUS={}", text.replace('\n', " ")));
  }
}

fn extension(remaining: Duration) -> Duration {
  remaining.saturating_add(EXTEND_MARGIN)
}

/// When the watchdog next re-extends the stop timeout (0: not due, nothing began).
static NEXT_EXTEND_NS: AtomicU64 = AtomicU64::new(0);

/// When the watchdog should wake to re-extend, while a shutdown with `deadline` runs.
pub fn next_extend(deadline: MonoTime) -> Option<MonoTime> {
  let next = NEXT_EXTEND_NS.load(Ordering::Acquire);
  (next != 0 && next < deadline.as_nanos()).then(|| MonoTime::from_nanos(next))
}

/// Watchdog thread: re-extends the stop timeout if due, to what remains of `deadline` plus the margin.
pub fn extend_if_due(deadline: MonoTime, now: MonoTime) {
  match next_extend(deadline) {
    Some(due) if now >= due => {
      send(&format!(
        "EXTEND_TIMEOUT_USEC={}",
        extension(deadline.saturating_since(now)).as_micros()
      ));
      NEXT_EXTEND_NS.store(now.saturating_add(EXTEND_EVERY).as_nanos(), Ordering::Release);
    }
    _ => {}
  }
}

/// How often to ping systemd's watchdog: half of `WATCHDOG_USEC`, if it is set for this process
/// (`WATCHDOG_PID` unset or ours), as sd_watchdog_enabled advises.
pub fn watchdog_interval() -> Option<Duration> {
  if !enabled() {
    return None;
  }
  let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
  if let Ok(pid) = std::env::var("WATCHDOG_PID")
    && pid.parse::<u32>().ok() != Some(std::process::id())
  {
    return None;
  }
  (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The main loop's ping timer, while one runs.
struct Pinger(uv::Timer);
// SAFETY: the timer is only touched by libuv on the main thread (started and closed there); the struct
// merely sits in the mutex.
unsafe impl Send for Pinger {}
static PINGER: std::sync::Mutex<Option<Pinger>> = std::sync::Mutex::new(None);

unsafe extern "C" fn ping(_timer: *mut libc::c_void) {
  send("WATCHDOG=1");
}

/// Starts the `WATCHDOG=1` pings on the main loop if systemd asks for them; once per process.
///
/// # Safety
/// Must run on the main thread, and `main_loop` must be its live libuv loop.
pub unsafe fn start_pings(uv: &uv::Uv, main_loop: *mut libc::c_void) {
  let Some(every) = watchdog_interval() else {
    return;
  };
  let mut pinger = PINGER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
  if pinger.is_some() {
    return;
  }
  // SAFETY: this function's contract: main thread, live main loop.
  let Ok(timer) = (unsafe { uv.timer(main_loop) }) else {
    return;
  };
  let every_ms = (every.as_millis() as u64).max(1);
  // SAFETY: as above; the timer was just made on that loop.
  if unsafe { uv.start_repeating(&timer, ping, every_ms) } {
    send("WATCHDOG=1");
    *pinger = Some(Pinger(timer));
  } else {
    // SAFETY: as above.
    unsafe { uv.close_timer(timer) };
  }
}

/// At the main environment's teardown: closes the ping timer, as libuv requires of open handles.
pub fn on_env_teardown(uv: &uv::Uv) {
  let pinger = PINGER
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
    .take();
  if let Some(Pinger(timer)) = pinger {
    // SAFETY: the env cleanup hook runs on the main thread; the timer is closed once (taken out).
    unsafe { uv.close_timer(timer) };
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn path_of(address: &libc::sockaddr_un, length: libc::socklen_t) -> Vec<u8> {
    let header = std::mem::size_of::<libc::sa_family_t>();
    address.sun_path[..length as usize - header]
      .iter()
      .map(|&c| c as u8)
      .collect()
  }

  #[test]
  fn a_path_keeps_its_nul_and_an_abstract_name_starts_with_one() {
    let (address, length) = address_of(b"/run/systemd/notify").unwrap();
    assert_eq!(path_of(&address, length), b"/run/systemd/notify\0");
    let (address, length) = address_of(b"@titan/notify").unwrap();
    assert_eq!(path_of(&address, length), b"\0titan/notify");
  }

  #[test]
  fn a_child_of_the_process_that_speaks_for_the_service_keeps_quiet() {
    assert!(speaks_for_service(None, 42), "nobody speaks yet");
    assert!(speaks_for_service(Some("42"), 42), "this process does");
    assert!(!speaks_for_service(Some("41"), 42), "its parent does");
    assert!(speaks_for_service(Some("not a pid"), 42));
  }

  #[test]
  fn addresses_that_are_neither_are_refused() {
    for bad in [&b""[..], b"relative/path", b"@", b"/with\0nul"] {
      assert!(address_of(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(address_of(&[b'/'; 200]).is_none(), "longer than sun_path");
  }

  #[test]
  fn the_stop_timeout_is_extended_by_what_remains_plus_a_margin_until_the_deadline() {
    assert_eq!(extension(Duration::from_secs(3)), Duration::from_secs(4));
    let start = MonoTime::from_nanos(10_000_000_000);
    NEXT_EXTEND_NS.store(start.saturating_add(EXTEND_EVERY).as_nanos(), Ordering::Release);
    let deadline = start.saturating_add(Duration::from_secs(5));
    assert_eq!(next_extend(deadline), Some(start.saturating_add(EXTEND_EVERY)));
    let late = start.saturating_add(Duration::from_secs(1));
    assert_eq!(next_extend(late), None, "nothing to extend past the deadline");
    NEXT_EXTEND_NS.store(0, Ordering::Release);
  }
}
