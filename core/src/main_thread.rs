//! What the main thread is doing when it is not running JavaScript, as the kernel sees it: on Linux,
//! `/proc/self/task/<main tid>/syscall` (the system call it is blocked in, or "running") and `wchan` (the
//! kernel function it sleeps in). The hard-exit report prints it when a blocked loop did not service the
//! stack capture: the loop is stuck in native code (`execSync`, `pbkdf2Sync`, a native addon) or a system
//! call, where V8 cannot interrupt it.
//!
//! Watchdog thread only: it reads files (procfs answers at once; nothing here waits on the main thread).

use std::fmt;

/// What the kernel says the main thread is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MainThreadState {
  /// Running on a CPU (or ready to): native code in a loop, not a system call.
  Running,
  /// Blocked in a system call: its name where known (else its number), and the kernel function it waits in.
  InSystemCall {
    call: SystemCall,
    waits_in: Option<String>,
  },
  /// The kernel does not say (not Linux, or /proc is not readable).
  Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemCall {
  Named(&'static str),
  Number(u64),
}

impl fmt::Display for MainThreadState {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      MainThreadState::Running => f.write_str("the main thread is running native code"),
      MainThreadState::InSystemCall { call, waits_in } => {
        match call {
          SystemCall::Named(name) => write!(f, "the main thread is blocked in the system call {name}")?,
          SystemCall::Number(n) => write!(f, "the main thread is blocked in system call number {n}")?,
        }
        match waits_in {
          Some(function) => write!(f, " (kernel: {function})"),
          None => Ok(()),
        }
      }
      MainThreadState::Unknown => f.write_str("where the main thread waits is not known on this system"),
    }
  }
}

/// Reads the main thread's state.
pub fn main_thread_state() -> MainThreadState {
  #[cfg(target_os = "linux")]
  {
    // The main thread's id is the process id.
    let task = format!("/proc/self/task/{}", std::process::id());
    let Ok(syscall) = std::fs::read_to_string(format!("{task}/syscall")) else {
      return MainThreadState::Unknown;
    };
    let wchan = std::fs::read_to_string(format!("{task}/wchan")).ok();
    parse(&syscall, wchan.as_deref())
  }
  #[cfg(not(target_os = "linux"))]
  {
    MainThreadState::Unknown
  }
}

/// Reads `/proc/.../syscall` ("running", or the call's number and arguments) and `wchan` (a kernel function
/// name, or "0" when it does not say).
#[cfg(any(target_os = "linux", test))]
fn parse(syscall: &str, wchan: Option<&str>) -> MainThreadState {
  let first = syscall.split_whitespace().next().unwrap_or("");
  if first == "running" {
    return MainThreadState::Running;
  }
  let Ok(number) = first.parse::<u64>() else {
    return MainThreadState::Unknown;
  };
  let waits_in = wchan
    .map(str::trim)
    .filter(|w| !w.is_empty() && *w != "0")
    .map(|w| w.chars().filter(|c| c.is_ascii_graphic()).take(64).collect());
  let call = system_call_name(number).map_or(SystemCall::Number(number), SystemCall::Named);
  MainThreadState::InSystemCall { call, waits_in }
}

/// The names of the system calls a blocked main thread is commonly found in.
#[cfg(any(target_os = "linux", test))]
fn system_call_name(number: u64) -> Option<&'static str> {
  #[cfg(target_arch = "x86_64")]
  const NAMES: &[(u64, &str)] = &[
    (0, "read"),
    (1, "write"),
    (7, "poll"),
    (17, "pread64"),
    (18, "pwrite64"),
    (19, "readv"),
    (20, "writev"),
    (23, "select"),
    (34, "pause"),
    (35, "nanosleep"),
    (42, "connect"),
    (43, "accept"),
    (45, "recvfrom"),
    (47, "recvmsg"),
    (61, "wait4"),
    (72, "fcntl"),
    (73, "flock"),
    (74, "fsync"),
    (75, "fdatasync"),
    (130, "rt_sigsuspend"),
    (202, "futex"),
    (230, "clock_nanosleep"),
    (232, "epoll_wait"),
    (247, "waitid"),
    (257, "openat"),
    (270, "pselect6"),
    (271, "ppoll"),
    (281, "epoll_pwait"),
    (288, "accept4"),
    (426, "io_uring_enter"),
    (441, "epoll_pwait2"),
  ];
  #[cfg(target_arch = "aarch64")]
  const NAMES: &[(u64, &str)] = &[
    (22, "epoll_pwait"),
    (25, "fcntl"),
    (32, "flock"),
    (56, "openat"),
    (63, "read"),
    (64, "write"),
    (65, "readv"),
    (66, "writev"),
    (67, "pread64"),
    (68, "pwrite64"),
    (72, "pselect6"),
    (73, "ppoll"),
    (82, "fsync"),
    (83, "fdatasync"),
    (95, "waitid"),
    (98, "futex"),
    (101, "nanosleep"),
    (115, "clock_nanosleep"),
    (133, "rt_sigsuspend"),
    (202, "accept"),
    (203, "connect"),
    (207, "recvfrom"),
    (212, "recvmsg"),
    (242, "accept4"),
    (260, "wait4"),
    (426, "io_uring_enter"),
    (441, "epoll_pwait2"),
  ];
  #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
  const NAMES: &[(u64, &str)] = &[];
  NAMES.iter().find(|&&(n, _)| n == number).map(|&(_, name)| name)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_thread_in_a_system_call_is_named_with_its_kernel_function() {
    #[cfg(target_arch = "x86_64")]
    let line = "281 0x12 0x7fff0f041ac0 0x400 0xffffffff 0x0 0x8 0x7fff0f040d60 0x7f3454326cae\n";
    #[cfg(target_arch = "aarch64")]
    let line = "22 0x12 0x7fff0f041ac0 0x400 0xffffffff 0x0 0x8 0x7fff0f040d60 0x7f3454326cae\n";
    let state = parse(line, Some("do_epoll_wait\n"));
    assert_eq!(
      state.to_string(),
      "the main thread is blocked in the system call epoll_pwait (kernel: do_epoll_wait)"
    );
  }

  #[test]
  fn running_unknown_calls_and_silent_wchan() {
    assert_eq!(parse("running\n", Some("0")), MainThreadState::Running);
    assert_eq!(
      parse("9999 0x0\n", Some("0")).to_string(),
      "the main thread is blocked in system call number 9999"
    );
    assert_eq!(parse("", None), MainThreadState::Unknown);
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn this_test_thread_reads_the_main_thread_of_its_own_process() {
    // The test harness's main thread waits for the test threads: in a system call, or running.
    assert_ne!(main_thread_state(), MainThreadState::Unknown);
  }
}
