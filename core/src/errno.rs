//! `errno` access that works inside a signal handler: no TLS initialisation (errno's storage always exists
//! for a running thread), so it is async-signal-safe.

/// The calling thread's errno.
pub fn get() -> i32 {
  // SAFETY: the errno location of the calling thread is always valid.
  unsafe { *location() }
}

/// Sets the calling thread's errno (a signal handler restores it before returning).
pub fn set(value: i32) {
  // SAFETY: as above.
  unsafe { *location() = value };
}

#[cfg(target_os = "linux")]
fn location() -> *mut i32 {
  // SAFETY: no preconditions.
  unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn location() -> *mut i32 {
  // SAFETY: no preconditions.
  unsafe { libc::__error() }
}
