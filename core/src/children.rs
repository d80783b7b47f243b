//! The child processes a manager is responsible for, kept where every exit path can reach them.
//!
//! JavaScript's `trackChild` stops a child gracefully during a shutdown. But a process can also end without
//! JavaScript: the watchdog's hard exit while the loop is blocked, or a second signal that exits at once
//! from inside the signal handler. Both `_exit`, and a child nobody stops then outlives its parent (an
//! orphan holding a port or a CI job). So the tracked children live here, in a fixed table of atomics, and
//! [`kill_all`] sends each SIGKILL right before those `_exit`s.
//!
//! Each entry is a target as `kill(2)` takes it: a pid, or a process group as a negative number (a child
//! spawned `detached` leads its own group, and signalling the group reaches its grandchildren too).
//! JavaScript forgets a child when it has exited and been reaped, and the exits check a child is still
//! ours and running before they signal it, so no signal goes to a recycled pid.
//!
//! The exits that run JavaScript kill a thread's children from its `'exit'` event. But that event is per
//! thread: a worker thread's children would outlive a `process.exit()` of the main thread. So the first
//! [`track`] also registers [`kill_all`] with `atexit(3)`, which every exit that calls `exit(3)` runs (Node's
//! `process.exit()` and a natural end do), once it has pinned this library in memory: Node unloads the
//! addons a worker thread loaded when the thread ends.
//!
//! # Async-signal-safety
//!
//! [`kill_all`] runs in signal context (the second-signal exit), on the watchdog thread and from `atexit`:
//! it only loads atomics and calls `waitid(2)` (without waiting or reaping) and `kill(2)`, plain system
//! calls. [`track`] and [`forget`] run on JavaScript's
//! threads; their table entries are atomics too, so a handler interrupting them sees each entry either set
//! or not (the lock `forget` and [`group_alive`] take guards a memo that [`kill_all`] never reads).

use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::LifecycleError;

/// How many children and groups can be tracked at once. A fixed table, so the signal handler can walk it;
/// services that run more children than this are not what `trackChild` is for.
pub const CAPACITY: usize = 256;

/// Free entries hold 0, which is never a target (`kill(0, ..)` would signal our own group).
static TRACKED: [AtomicI32; CAPACITY] = [const { AtomicI32::new(0) }; CAPACITY];

/// A child or a group, as `kill(2)` addresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
  Process(i32),
  Group(i32),
}

impl Target {
  /// The target of a child's pid; `group` for the process group it leads.
  pub fn of(pid: i32, group: bool) -> Result<Self, LifecycleError> {
    // pid 1 and below are never our children; -1 would be "every process we may signal".
    if pid <= 1 {
      return Err(LifecycleError::InvalidChild { pid });
    }
    Ok(if group {
      Target::Group(pid)
    } else {
      Target::Process(pid)
    })
  }

  fn raw(self) -> i32 {
    match self {
      Target::Process(pid) => pid,
      Target::Group(pgid) => -pgid,
    }
  }
}

/// Tracks `target` in an entry of its own: a child tracked twice (two tasks, two managers, a cluster worker
/// also passed to `trackChild`) holds two entries, and each [`forget`] releases one, so the child stays
/// covered until its last tracker lets go. `Err` when the table is full.
pub fn track(target: Target) -> Result<(), LifecycleError> {
  static AT_EXIT: Once = Once::new();
  AT_EXIT.call_once(|| {
    // Node closes the addons a worker thread loaded when the thread ends: without the pin, a library
    // loaded only there could be gone by the time `exit(3)` calls into it.
    if pin_this_library() {
      // SAFETY: `kill_at_exit` is an `extern "C" fn()` that cannot unwind, in this library, which the pin
      // keeps mapped until the process ends. A failed registration (no memory for the list) leaves each
      // thread's 'exit' hook to kill its own children, as before.
      unsafe { libc::atexit(kill_at_exit) };
    }
  });
  let raw = target.raw();
  for entry in &TRACKED {
    if entry
      .compare_exchange(0, raw, Ordering::AcqRel, Ordering::Acquire)
      .is_ok()
    {
      return Ok(());
    }
  }
  Err(LifecycleError::TooManyChildren { capacity: CAPACITY })
}

/// Releases one entry of `target` (see [`track`]); returns whether it was tracked. JavaScript's threads
/// only (a group's remembered member goes with its last entry).
pub fn forget(target: Target) -> bool {
  let raw = target.raw();
  let released = TRACKED.iter().any(|entry| {
    entry
      .compare_exchange(raw, 0, Ordering::AcqRel, Ordering::Acquire)
      .is_ok()
  });
  if let Target::Group(pgid) = target
    && released
    && !TRACKED.iter().any(|entry| entry.load(Ordering::Acquire) == raw)
  {
    running_members().remove(&pgid);
  }
  released
}

/// Sends `signo` to every tracked child that still runs and every tracked group; returns how many it
/// reached. A target tracked twice (two tasks) holds two entries: it is signalled and counted once, as the
/// hard-exit report says how many it killed.
///
/// A child is signalled only while it is this process's child and has not exited (`is_running_child`):
/// its entry goes when JavaScript hears it exit, but an application that took the child's 'exit' listeners
/// off left it tracked after Node reaped it, and the system may have given its pid to another process
/// since. A group is signalled while any member is left: its id cannot be reused while it has one.
///
/// Signal context: atomic loads, a 1 KB array on the stack, `waitid(2)` (without waiting or reaping) and
/// `kill(2)`. Entries stay tracked (the process is about to end). What was signalled is remembered rather
/// than looked for again in the table: a target tracked again meanwhile, into a slot already passed, must
/// not make its later entry look like one already signalled.
pub fn kill_all(signo: i32) -> usize {
  let mut signalled = [0i32; CAPACITY];
  let mut count = 0;
  let mut reached = 0;
  for entry in &TRACKED {
    let raw = entry.load(Ordering::Acquire);
    if raw == 0 || signalled[..count].contains(&raw) {
      continue;
    }
    signalled[count] = raw;
    count += 1;
    if raw > 0 && !is_running_child(raw) {
      continue;
    }
    // SAFETY: kill(2) has no memory preconditions; `raw` is a pid or a negated pgid, never 0 or -1.
    if unsafe { libc::kill(raw, signo) } == 0 {
      reached += 1;
    }
  }
  reached
}

/// Keeps this library loaded for the rest of the process (`RTLD_NODELETE` on a reference that is never
/// closed); returns whether it could. JavaScript's thread (`dladdr` and `dlopen` take the loader's lock).
#[cfg(not(target_env = "musl"))]
fn pin_this_library() -> bool {
  // SAFETY: a zeroed Dl_info (pointers and integers) is a valid value.
  let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
  // SAFETY: dladdr writes only `info`; the address is a function of this library.
  let found = unsafe { libc::dladdr(kill_at_exit as *const libc::c_void, &mut info) } != 0;
  if !found || info.dli_fname.is_null() {
    return false;
  }
  // SAFETY: `dli_fname` is the loader's NUL-terminated path of a library that is loaded (this one);
  // RTLD_NOLOAD only takes another reference to it, which is never closed.
  let handle = unsafe {
    libc::dlopen(
      info.dli_fname,
      libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
    )
  };
  !handle.is_null()
}

/// musl never unloads a library. Nothing to pin, and musl's `RTLD_NOLOAD` finds a library by the file at
/// its path, which an install in place since the load may have replaced.
#[cfg(target_env = "musl")]
fn pin_this_library() -> bool {
  true
}

/// Run by `exit(3)`: whatever is still tracked when the process ends, by any thread, does not outlive it.
/// A child that was stopped has been forgotten already; one still tracked is sent SIGKILL.
extern "C" fn kill_at_exit() {
  kill_all(libc::SIGKILL);
}

/// Whether `pid` is a child of this process that has not exited. `waitid` neither waits (`WNOHANG`) nor
/// reaps (`WNOWAIT`: Node's own wait still finds the child): it fails with ECHILD for a pid that is no child
/// of ours (one already reaped, or a pid the system has given to another process since), and names the
/// child only once it has exited. Signal context: one system call; errno is the caller's to keep.
fn is_running_child(pid: i32) -> bool {
  // SAFETY: an all-zero siginfo_t is a valid value to be written into.
  let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
  // SAFETY: `info` is a valid, writable siginfo_t; with WNOHANG the call does not block.
  let status = unsafe {
    libc::waitid(
      libc::P_PID,
      pid as libc::id_t,
      &mut info,
      libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
    )
  };
  // SAFETY: waitid filled `info` (zeroed, so a child still running reads as pid 0).
  status == 0 && unsafe { info.si_pid() } == 0
}

/// Whether any process of group `pgid` is still running. A member that has exited but was not reaped yet
/// (a zombie) does not count: in a container whose PID 1 is the service itself, or one that reaps late,
/// orphaned grandchildren stay zombies, and `kill(-pgid, 0)` would call the group alive for ever.
///
/// On Linux it looks in `/proc`; elsewhere it asks `kill(-pgid, 0)`. It runs on JavaScript's thread, often:
/// once a second for a group whose leader exited, and every 100 ms while a shutdown waits for a group. A
/// walk of `/proc` reads every process's `stat` (18 ms on a host running 1 000 processes, 43 ms at 3 000),
/// so the member it finds running is remembered, and the next look reads that one's `stat` alone: the walk
/// happens again only once that member has gone (exited, or left the group).
pub fn group_alive(pgid: i32) -> bool {
  if pgid <= 1 {
    return false;
  }
  // SAFETY: kill(2) with signal 0 only checks; `-pgid` names a group, never "every process" (pgid > 1).
  // EPERM: a member exists that we may not signal.
  let any_member = unsafe { libc::kill(-pgid, 0) } == 0 || crate::errno::get() == libc::EPERM;
  if !cfg!(target_os = "linux") {
    return any_member;
  }
  let mut remembered = running_members();
  if !any_member {
    remembered.remove(&pgid);
    return false;
  }
  if let Some(&member) = remembered.get(&pgid)
    && runs_in_group(member, pgid)
  {
    return true;
  }
  remembered.remove(&pgid);
  let Some(member) = find_running_member(pgid) else {
    return false;
  };
  remembered.insert(pgid, member);
  true
}

/// The running member [`group_alive`] last found in each group it was asked about (pgid to pid), until the
/// group is forgotten or found empty.
static RUNNING_MEMBERS: std::sync::Mutex<std::collections::BTreeMap<i32, i32>> =
  std::sync::Mutex::new(std::collections::BTreeMap::new());

/// [`RUNNING_MEMBERS`], locked (a memo: one a panic left poisoned is still good).
fn running_members() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<i32, i32>> {
  RUNNING_MEMBERS
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether process `pid` runs (is no zombie) in group `pgid`, from its `/proc/<pid>/stat`. A pid the system
/// has given to a process of another group since is not taken for the member.
fn runs_in_group(pid: i32, pgid: i32) -> bool {
  std::fs::read(format!("/proc/{pid}/stat"))
    .is_ok_and(|stat| matches!(running_member_of(&stat), Some(group) if group == pgid))
}

/// A running member of group `pgid`, by a walk of `/proc`; `Some(pgid)` without a walk when `/proc` cannot
/// be read (the group has members, by `kill`, and is taken as alive).
fn find_running_member(pgid: i32) -> Option<i32> {
  #[cfg(test)]
  tests::WALKS.fetch_add(1, Ordering::Relaxed);
  let Ok(entries) = std::fs::read_dir("/proc") else {
    return Some(pgid);
  };
  entries
    .filter_map(Result::ok)
    .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
    .find(|&pid| runs_in_group(pid, pgid))
}

/// The process group of a running process from its `/proc/<pid>/stat` line, or `None` for a zombie (or
/// a line that cannot be read). The command name is in parentheses and may hold anything, so the fields
/// are counted from the last `)`: state, then ppid, then pgrp.
fn running_member_of(stat: &[u8]) -> Option<i32> {
  let close = stat.iter().rposition(|&b| b == b')')?;
  let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
  let mut fields = rest.split_ascii_whitespace();
  let state = fields.next()?;
  if state == "Z" || state == "X" {
    return None;
  }
  fields.nth(1)?.parse().ok()
}

/// How many children and groups are tracked.
pub fn count() -> usize {
  TRACKED
    .iter()
    .filter(|entry| entry.load(Ordering::Acquire) != 0)
    .count()
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::process::Command;

  // The table is process-wide: the tests take turns, use pids of their own and leave nothing behind.
  static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
  fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// Whether `done` holds within `polls` looks 5 ms apart (a signalled process takes a moment to exit).
  fn within_polls(polls: u32, mut done: impl FnMut() -> bool) -> bool {
    (0..polls).any(|_| {
      std::thread::sleep(std::time::Duration::from_millis(5));
      done()
    })
  }

  #[test]
  fn a_zombie_is_not_a_running_member_and_odd_command_names_do_not_confuse_the_parse() {
    assert_eq!(running_member_of(b"42 (node) S 1 42 42 0 -1 4194560"), Some(42));
    assert_eq!(running_member_of(b"43 (a) b (c) R 42 42 42 0"), Some(42));
    assert_eq!(running_member_of(b"44 (sleep) Z 1 42 42 0"), None);
    assert_eq!(running_member_of(b"garbage"), None);
  }

  /// How many times `group_alive` walked `/proc`.
  pub(super) static WALKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

  #[test]
  fn a_group_whose_leader_exited_is_alive_while_a_member_runs_and_is_walked_for_once() {
    use std::os::unix::process::CommandExt;
    let _turn = one_at_a_time();
    // The leader starts a member of its group and exits: the shape of a group after SIGTERM, when a
    // grandchild is slower than its leader.
    let mut leader = Command::new("sh")
      .args(["-c", "sleep 30 >/dev/null 2>&1 & echo started"])
      .stdout(std::process::Stdio::piped())
      .process_group(0)
      .spawn()
      .unwrap();
    let pgid = leader.id() as i32;
    let _ = leader.wait();
    assert!(group_alive(pgid), "its member runs");
    let walks = WALKS.load(Ordering::Relaxed);
    for _ in 0..20 {
      assert!(group_alive(pgid));
    }
    if cfg!(target_os = "linux") {
      assert_eq!(
        WALKS.load(Ordering::Relaxed),
        walks,
        "the running member was remembered, not looked for again"
      );
    }
    // SAFETY: kill(2) on the group our child led (its member, orphaned, is reaped by the system).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    assert!(
      within_polls(400, || !group_alive(pgid)),
      "empty once its member is gone"
    );
    assert!(
      !running_members().contains_key(&pgid),
      "an empty group is not remembered"
    );
  }

  #[test]
  fn a_group_is_alive_while_a_member_runs_and_not_once_it_is_a_zombie() {
    use std::os::unix::process::CommandExt;
    let _turn = one_at_a_time();
    let mut leader = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
    let pgid = leader.id() as i32;
    assert!(group_alive(pgid));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pgid, libc::SIGKILL) };
    // Not reaped yet: a zombie, which `kill(-pgid, 0)` still finds.
    let zombie = within_polls(200, || !group_alive(pgid));
    let _ = leader.wait();
    if cfg!(target_os = "linux") {
      assert!(zombie, "a group of zombies counts as empty");
    }
    assert!(!group_alive(pgid), "reaped: gone everywhere");
  }

  #[test]
  fn a_child_runs_until_it_exits_and_a_pid_that_is_no_child_of_ours_never_does() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    assert!(is_running_child(pid));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // Exited, not reaped yet: no longer running, and still there to be reaped (WNOWAIT took nothing).
    let exited = within_polls(400, || !is_running_child(pid));
    assert!(exited, "an exited child is not running");
    assert!(child.wait().is_ok(), "its exit is still there to be reaped");
    assert!(!is_running_child(pid), "reaped: no child of ours");
    // A process that is not our child (our parent, the first process) is never taken for one.
    // SAFETY: getppid has no preconditions.
    assert!(!is_running_child(unsafe { libc::getppid() }));
    assert!(!is_running_child(1));
  }

  #[test]
  fn targets_that_would_signal_more_than_a_child_are_refused() {
    for pid in [-5, -1, 0, 1] {
      assert_eq!(
        Target::of(pid, false).unwrap_err().code(),
        "ERR_INVALID_ARG_VALUE"
      );
    }
    assert_eq!(Target::of(42, true).unwrap().raw(), -42);
  }

  #[test]
  fn a_target_tracked_twice_stays_tracked_until_both_forget_it() {
    let _turn = one_at_a_time();
    let target = Target::of(2_100_000_000, false).unwrap();
    let before = count();
    track(target).unwrap();
    track(target).unwrap();
    assert_eq!(count(), before + 2);
    assert!(forget(target));
    assert_eq!(count(), before + 1, "the other tracker still covers it");
    assert!(forget(target));
    assert!(!forget(target), "already forgotten");
    assert_eq!(count(), before);
  }

  #[test]
  fn a_full_table_refuses_more_and_says_how_many_it_holds() {
    let _turn = one_at_a_time();
    // Pids far above any real pid_max: nothing is signalled by accident if the test fails midway.
    let targets: Vec<Target> = (0..=CAPACITY as i32)
      .map(|i| Target::of(2_000_000_000 + i, false).unwrap())
      .collect();
    let mut taken = Vec::new();
    let refused = targets.iter().find_map(|&target| match track(target) {
      Ok(()) => {
        taken.push(target);
        None
      }
      Err(err) => Some(err),
    });
    for target in taken {
      forget(target);
    }
    let err = refused.expect("the table filled up");
    assert_eq!(err.code(), "ERR_TOO_MANY_CHILDREN");
  }

  #[test]
  fn kill_all_reaches_a_live_child() {
    let _turn = one_at_a_time();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let target = Target::of(child.id() as i32, false).unwrap();
    track(target).unwrap();
    let reached = kill_all(0);
    assert!(reached >= 1, "signal 0 finds the live child");
    track(target).unwrap();
    assert_eq!(kill_all(0), reached, "tracked by two tasks, it is counted once");
    forget(target);
    kill_all(libc::SIGKILL);
    let status = child.wait().unwrap();
    forget(target);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
  }
}
