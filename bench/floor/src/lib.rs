//! The bench's floors: a napi-rs addon with one function, which starts a thread that sleeps until a
//! CLOCK_MONOTONIC instant and calls `_exit` there, whatever the event loop is doing; and a reading of the C
//! allocator, for native memory.

use napi_derive::napi;

/// Ends the process with `code` at `at_ms` on CLOCK_MONOTONIC (milliseconds, as `process.hrtime` counts).
#[napi]
pub fn exit_at(at_ms: f64, code: i32) {
  std::thread::spawn(move || {
    let deadline = libc::timespec {
      tv_sec: (at_ms / 1000.0).floor() as libc::time_t,
      tv_nsec: ((at_ms % 1000.0) * 1e6) as libc::c_long,
    };
    // SAFETY: `deadline` is a valid timespec; a null remainder is allowed with TIMER_ABSTIME. Interrupted
    // sleeps are resumed until the instant has passed.
    while unsafe {
      libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &deadline, std::ptr::null_mut())
    } == libc::EINTR
    {}
    // SAFETY: `_exit` ends the process at once; nothing is left to run.
    unsafe { libc::_exit(code) };
  });
}

/// Bytes the C allocator has handed out and not had back (glibc's `mallinfo2`: small chunks and mmapped
/// ones), for the bench's memory-per-task figure: native memory, which the V8 heap's figures do not show.
#[napi]
pub fn malloc_in_use() -> f64 {
  #[cfg(all(target_os = "linux", target_env = "gnu"))]
  {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as f64
  }
  #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
  {
    f64::NAN
  }
}
