//! The few libuv functions Node exports that signal ownership needs, looked up at run time.
//!
//! They are resolved with `dlsym(RTLD_DEFAULT, ..)` instead of being linked: the node binary exports them,
//! but a missing symbol then becomes a clear `ERR_NATIVE_UNAVAILABLE` instead of a load failure, and the
//! addon needs no link-time knowledge of the host.
//!
//! The pin: an unref'd `uv_signal_t` started on the main loop for each owned signal. libuv calls `sigaction`
//! only when the first handle of a signal starts or the last one stops, so while the pin lives, JavaScript
//! adding or removing `process.on('SIGTERM')` listeners never touches the slot. Unref'd, it does not keep
//! the process alive. The hook: an unref'd `uv_prepare_t` whose callback runs once per loop turn.
//!
//! The keeper: at the main environment's teardown the pins must close, and closing the last handle of a
//! signal makes libuv reset its slot to SIG_DFL. A handle of the same signal started first on a private loop
//! that is never run or closed keeps libuv from doing so (see `signals::on_env_teardown`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::LifecycleError;

/// `uv_signal_cb`: what libuv calls on the loop's thread when a pinned signal arrives.
pub type SignalCallback = unsafe extern "C" fn(handle: *mut c_void, signo: c_int);
/// `uv_prepare_cb`: what libuv calls on the loop's thread once per turn, before it waits for I/O.
pub type HookCallback = unsafe extern "C" fn(handle: *mut c_void);
type CloseCallback = unsafe extern "C" fn(handle: *mut c_void);
/// `uv_signal_init`, `uv_prepare_init`, `uv_timer_init`: (loop, handle) -> status.
type InitHandle = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

/// Resolved libuv entry points.
pub struct Uv {
  default_loop: unsafe extern "C" fn() -> *mut c_void,
  handle_size: unsafe extern "C" fn(c_int) -> usize,
  signal_init: InitHandle,
  signal_start: unsafe extern "C" fn(*mut c_void, SignalCallback, c_int) -> c_int,
  prepare_init: InitHandle,
  prepare_start: unsafe extern "C" fn(*mut c_void, HookCallback) -> c_int,
  timer_init: InitHandle,
  timer_start: unsafe extern "C" fn(*mut c_void, HookCallback, u64, u64) -> c_int,
  unref: unsafe extern "C" fn(*mut c_void),
  close: unsafe extern "C" fn(*mut c_void, Option<CloseCallback>),
  /// `UV_SIGNAL`, `UV_PREPARE` and `UV_TIMER` in `uv_handle_type`, found by name rather than assumed.
  signal_type: c_int,
  prepare_type: c_int,
  timer_type: c_int,
}

/// `uv_tty_reset_mode`, kept apart because the signal handler and the watchdog call it at exit.
static TTY_RESET: AtomicUsize = AtomicUsize::new(0);

/// Resolves libuv once; `Err` names the first missing symbol.
pub fn api() -> Result<&'static Uv, LifecycleError> {
  static API: OnceLock<Result<Uv, String>> = OnceLock::new();
  API
    .get_or_init(resolve)
    .as_ref()
    .map_err(|what| LifecycleError::NativeUnavailable { what: what.clone() })
}

pub(crate) fn symbol(name: &CStr) -> Result<*mut c_void, String> {
  // SAFETY: RTLD_DEFAULT searches the global scope, where the node binary exports libuv; `name` is a valid
  // C string.
  let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
  if found.is_null() {
    Err(format!(
      "{} is not exported by this process",
      name.to_string_lossy()
    ))
  } else {
    Ok(found)
  }
}

/// Looks up a function the node binary exports (libuv's, or V8's by its mangled name; see `v8`).
///
/// # Safety
/// `F` must be the function-pointer type of the libuv function called `name`, as declared in uv.h.
pub(crate) unsafe fn function<F: Copy>(name: &CStr) -> Result<F, String> {
  const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>()) };
  let address = symbol(name)?;
  // SAFETY: the caller guarantees `F` is the symbol's function type; the sizes match (checked above).
  Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

fn resolve() -> Result<Uv, String> {
  // SAFETY: in every `function` call, the field or local type is the uv.h signature of the named function.
  unsafe {
    if let Ok(reset) = symbol(c"uv_tty_reset_mode") {
      TTY_RESET.store(reset as usize, Ordering::Release);
    }
    let handle_type_name: unsafe extern "C" fn(c_int) -> *const c_char = function(c"uv_handle_type_name")?;
    let handle_type = |wanted: &[u8]| {
      (1..64).find(|&t| {
        let name = handle_type_name(t);
        !name.is_null() && CStr::from_ptr(name).to_bytes() == wanted
      })
    };
    Ok(Uv {
      default_loop: function(c"uv_default_loop")?,
      handle_size: function(c"uv_handle_size")?,
      signal_init: function(c"uv_signal_init")?,
      signal_start: function(c"uv_signal_start")?,
      prepare_init: function(c"uv_prepare_init")?,
      prepare_start: function(c"uv_prepare_start")?,
      timer_init: function(c"uv_timer_init")?,
      timer_start: function(c"uv_timer_start")?,
      unref: function(c"uv_unref")?,
      close: function(c"uv_close")?,
      signal_type: handle_type(b"signal").ok_or("libuv has no signal handle type")?,
      prepare_type: handle_type(b"prepare").ok_or("libuv has no prepare handle type")?,
      timer_type: handle_type(b"timer").ok_or("libuv has no timer handle type")?,
    })
  }
}

/// Restores the terminal's mode if libuv put it in raw mode, before an `_exit` that skips Node's own reset.
///
/// Async-signal-safe: libuv documents `uv_tty_reset_mode` as safe to call from a signal handler; reading the
/// pointer is one atomic load.
pub fn reset_tty() {
  let reset = TTY_RESET.load(Ordering::Acquire);
  if reset != 0 {
    // SAFETY: stored by `resolve` from dlsym("uv_tty_reset_mode"), whose signature is `int (void)`.
    let reset: unsafe extern "C" fn() -> c_int = unsafe { std::mem::transmute(reset) };
    // SAFETY: no preconditions.
    unsafe { reset() };
  }
}

/// The base addresses of the objects that hold Node's own code (the node executable, or libnode) and libuv
/// (the same object, or libuv.so in distribution builds with a shared libuv), each found from a symbol it
/// exports; `None` outside Node (the core's own tests).
fn node_objects() -> (Option<usize>, Option<usize>) {
  static BASES: OnceLock<(Option<usize>, Option<usize>)> = OnceLock::new();
  *BASES.get_or_init(|| {
    let base_of = |name: &CStr| symbol(name).ok().and_then(|f| object_base(f as usize));
    (base_of(c"napi_module_register"), base_of(c"uv_default_loop"))
  })
}

/// An identity of the loaded object (executable or shared library) that holds `address`, or `None`.
///
/// On Linux the loader's list of objects is walked for the segment holding the address: `dladdr` would
/// also look for the nearest symbol, a linear scan of the node binary's symbol table that costs about
/// 0.7 ms per call and was most of what `new ShutdownManager()` cost.
#[cfg(target_os = "linux")]
fn object_base(address: usize) -> Option<usize> {
  struct Search {
    address: usize,
    found: Option<usize>,
  }
  unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut c_void) -> c_int {
    // SAFETY: the loader passes a valid `info` for the duration of the call, whose `dlpi_phdr` points to
    // `dlpi_phnum` program headers; `data` is the `Search` that `object_base` lent for the walk.
    let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
    let headers = if info.dlpi_phdr.is_null() {
      &[][..]
    } else {
      // SAFETY: as above, `dlpi_phdr` points to `dlpi_phnum` headers.
      unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    let holds = headers.iter().any(|header| {
      let start = (info.dlpi_addr as usize).wrapping_add(header.p_vaddr as usize);
      header.p_type == libc::PT_LOAD
        && (start..start.saturating_add(header.p_memsz as usize)).contains(&search.address)
    });
    if holds {
      // The program headers' address identifies the object, even a non-PIE executable loaded at bias 0.
      search.found = Some(info.dlpi_phdr as usize);
      return 1;
    }
    0
  }
  let mut search = Search { address, found: None };
  // SAFETY: `visit` matches the callback type and only reads what the loader passes it; `search` outlives
  // the walk, which is synchronous.
  unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
  search.found
}

/// An identity of the loaded object that holds `address`, or `None` (elsewhere than Linux, by `dladdr`).
#[cfg(not(target_os = "linux"))]
fn object_base(address: usize) -> Option<usize> {
  // SAFETY: a zeroed Dl_info (pointers and integers) is a valid value.
  let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
  // SAFETY: dladdr only reads the loader's tables; `info` is a valid out-parameter.
  (unsafe { libc::dladdr(address as *const c_void, &mut info) } != 0 && !info.dli_fbase.is_null())
    .then_some(info.dli_fbase as usize)
}

/// Whether the function at `address` is Node's own code or libuv's. Not async-signal-safe (the loader's
/// lock); main or watchdog thread.
pub fn is_in_node(address: usize) -> bool {
  let (node, libuv) = node_objects();
  let object = object_base(address);
  object.is_some() && (object == node || object == libuv)
}

/// Whether the function at `address` is libuv's. Not async-signal-safe (the loader's lock).
pub fn is_in_libuv(address: usize) -> bool {
  let object = object_base(address);
  object.is_some() && object == node_objects().1
}

/// The symbol and file names of the code at `address`, as far as the loader knows them. Never on the
/// watchdog: glibc's `dladdr` takes the loader's lock, which a `dlopen` on another thread holds for as long
/// as the library's constructors run.
pub fn symbol_at(address: usize) -> (Option<String>, Option<String>) {
  // SAFETY: a zeroed Dl_info (pointers and integers) is a valid value.
  let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
  // SAFETY: dladdr reads the loader's tables (under its lock) and writes only `info`, a valid
  // out-parameter.
  if unsafe { libc::dladdr(address as *const c_void, &mut info) } == 0 {
    return (None, None);
  }
  let text = |p: *const c_char| {
    // SAFETY: dladdr fills these with null or NUL-terminated strings owned by the loader.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
  };
  (text(info.dli_sname), text(info.dli_fname))
}

/// A pinned `uv_signal_t`, owned by the main loop.
pub struct Pin(*mut c_void);

impl Pin {
  /// Leaves the handle started for the rest of the process: for a keeper, whose private loop is never run
  /// or closed, so nothing ever frees or stops it.
  pub fn keep_for_good(self) {}
}

/// An unref'd `uv_prepare_t` on the main loop: a callback once per loop turn, before libuv waits.
pub struct Hook(*mut c_void);

/// An unref'd `uv_timer_t` on the main loop, started on demand (`Uv::start_timer`).
pub struct Timer(*mut c_void);

unsafe extern "C" fn free_handle(handle: *mut c_void) {
  // SAFETY: the handle was allocated with calloc in `pin` and libuv is done with it once this runs.
  unsafe { libc::free(handle) };
}

impl Uv {
  /// Whether `event_loop` is the process's main loop: true in the main thread's environment, false in a
  /// worker's.
  pub fn is_main_loop(&self, event_loop: *mut c_void) -> bool {
    // SAFETY: uv_default_loop has no preconditions.
    !event_loop.is_null() && event_loop == unsafe { (self.default_loop)() }
  }

  /// Allocates a handle of `handle_type` (zeroed, as libuv's init functions expect nothing more) and
  /// initializes it on `event_loop`; on failure frees it and says which step failed (`names`: the handle
  /// type's and its init function's, in `fail`'s words).
  ///
  /// # Safety
  /// Must run on the thread that runs `event_loop`; `init` must be the init function of `handle_type`.
  unsafe fn new_handle(
    &self,
    event_loop: *mut c_void,
    handle_type: c_int,
    init: InitHandle,
    (type_name, init_name): (&str, &str),
    fail: impl Fn(&str) -> LifecycleError,
  ) -> Result<*mut c_void, LifecycleError> {
    // SAFETY: the size comes from libuv for its own handle type; `init` matches it (the caller's contract)
    // and runs on the loop's thread; a handle whose init failed was never registered and is freed here.
    unsafe {
      let handle = libc::calloc(1, (self.handle_size)(handle_type));
      if handle.is_null() {
        return Err(fail(&format!("allocating a {type_name}")));
      }
      if init(event_loop, handle) != 0 {
        libc::free(handle);
        return Err(fail(init_name));
      }
      Ok(handle)
    }
  }

  /// Starts an unref'd signal handle for `signo` on `event_loop`; libuv calls `on_signal` on that loop's
  /// thread each time the signal arrives.
  ///
  /// # Safety
  /// Must run on the thread that runs `event_loop`.
  pub unsafe fn pin(
    &self,
    event_loop: *mut c_void,
    signo: c_int,
    on_signal: SignalCallback,
  ) -> Result<Pin, LifecycleError> {
    let fail = |what: &str| LifecycleError::NativeUnavailable {
      what: format!("{what} failed for signal {signo}"),
    };
    // SAFETY: this function's contract; `signal_init` initializes `signal_type` handles.
    unsafe {
      let handle = self.new_handle(
        event_loop,
        self.signal_type,
        self.signal_init,
        ("uv_signal_t", "uv_signal_init"),
        fail,
      )?;
      if (self.signal_start)(handle, on_signal, signo) != 0 {
        (self.close)(handle, Some(free_handle));
        return Err(fail("uv_signal_start"));
      }
      (self.unref)(handle);
      Ok(Pin(handle))
    }
  }

  /// A libuv loop of our own that is never run or closed, for keepers (see the module docs); `None` if this
  /// libuv cannot make one. It is made once and lives until the process ends.
  ///
  /// # Safety
  /// Must run on the main thread (libuv's signal bookkeeping is set up by the first loop of the process
  /// there).
  pub unsafe fn private_loop(&self) -> Option<*mut c_void> {
    type LoopSize = unsafe extern "C" fn() -> usize;
    type LoopInit = unsafe extern "C" fn(*mut c_void) -> c_int;
    // SAFETY: the types are the uv.h signatures of `uv_loop_size` and `uv_loop_init`.
    let (size, init) = unsafe {
      (
        function::<LoopSize>(c"uv_loop_size").ok()?,
        function::<LoopInit>(c"uv_loop_init").ok()?,
      )
    };
    // SAFETY: the size comes from libuv for its own loop type; uv_loop_init takes zeroed memory of that
    // size. On failure nothing was started on it and it is freed.
    unsafe {
      let event_loop = libc::calloc(1, size());
      if event_loop.is_null() {
        return None;
      }
      if init(event_loop) != 0 {
        libc::free(event_loop);
        return None;
      }
      Some(event_loop)
    }
  }

  /// Closes a pin. libuv stops it at once (resetting the slot to SIG_DFL if it was the last handle of its
  /// signal) and frees it on a later loop turn.
  ///
  /// # Safety
  /// Must run on the thread that runs the loop the pin was made on.
  pub unsafe fn unpin(&self, pin: Pin) {
    // SAFETY: the handle is live (made by `pin`, closed only here, once, since `Pin` is consumed).
    unsafe { (self.close)(pin.0, Some(free_handle)) };
  }

  /// Starts an unref'd prepare handle on `event_loop`: libuv calls `on_turn` on that loop's thread once per
  /// turn, right before it waits for I/O (signals included). Unref'd, it never keeps the process alive,
  /// and a prepare handle does not shorten the wait.
  ///
  /// # Safety
  /// Must run on the thread that runs `event_loop`.
  pub unsafe fn hook(&self, event_loop: *mut c_void, on_turn: HookCallback) -> Result<Hook, LifecycleError> {
    let fail = |what: &str| LifecycleError::NativeUnavailable {
      what: format!("{what} failed for the per-turn check"),
    };
    // SAFETY: this function's contract; `prepare_init` initializes `prepare_type` handles.
    unsafe {
      let handle = self.new_handle(
        event_loop,
        self.prepare_type,
        self.prepare_init,
        ("uv_prepare_t", "uv_prepare_init"),
        fail,
      )?;
      if (self.prepare_start)(handle, on_turn) != 0 {
        (self.close)(handle, Some(free_handle));
        return Err(fail("uv_prepare_start"));
      }
      (self.unref)(handle);
      Ok(Hook(handle))
    }
  }

  /// Makes an unref'd timer on `event_loop`, not started. Unref'd, it never keeps the process alive.
  ///
  /// # Safety
  /// Must run on the thread that runs `event_loop`.
  pub unsafe fn timer(&self, event_loop: *mut c_void) -> Result<Timer, LifecycleError> {
    let fail = |what: &str| LifecycleError::NativeUnavailable {
      what: format!("{what} failed for a timer"),
    };
    // SAFETY: this function's contract; `timer_init` initializes `timer_type` handles.
    unsafe {
      let handle = self.new_handle(
        event_loop,
        self.timer_type,
        self.timer_init,
        ("uv_timer_t", "uv_timer_init"),
        fail,
      )?;
      (self.unref)(handle);
      Ok(Timer(handle))
    }
  }

  /// Starts (or restarts) `timer` to call `on_due` once, `after_ms` from now.
  ///
  /// # Safety
  /// Must run on the thread that runs the loop the timer was made on.
  pub unsafe fn start_timer(&self, timer: &Timer, on_due: HookCallback, after_ms: u64) -> bool {
    // SAFETY: the handle is live (made by `timer`, closed only by `close_timer`, which consumes it).
    unsafe { (self.timer_start)(timer.0, on_due, after_ms, 0) == 0 }
  }

  /// Starts `timer` to call `on_due` every `every_ms`, the first time `every_ms` from now.
  ///
  /// # Safety
  /// Must run on the thread that runs the loop the timer was made on.
  pub unsafe fn start_repeating(&self, timer: &Timer, on_due: HookCallback, every_ms: u64) -> bool {
    // SAFETY: the handle is live (made by `timer`, closed only by `close_timer`, which consumes it).
    unsafe { (self.timer_start)(timer.0, on_due, every_ms, every_ms) == 0 }
  }

  /// Closes a timer made by [`Uv::timer`] (stopping it); libuv frees it on a later loop turn.
  ///
  /// # Safety
  /// Must run on the thread that runs the loop the timer was made on.
  pub unsafe fn close_timer(&self, timer: Timer) {
    // SAFETY: the handle is live (made by `timer`, closed only here, once, since `Timer` is consumed).
    unsafe { (self.close)(timer.0, Some(free_handle)) };
  }

  /// Closes a hook made by [`Uv::hook`]; libuv frees it on a later loop turn.
  ///
  /// # Safety
  /// Must run on the thread that runs the loop the hook was made on.
  pub unsafe fn unhook(&self, hook: Hook) {
    // SAFETY: the handle is live (made by `hook`, closed only here, once, since `Hook` is consumed).
    unsafe { (self.close)(hook.0, Some(free_handle)) };
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn code_is_placed_in_the_object_that_holds_it() {
    let here = object_base(object_base as *const () as usize);
    assert!(here.is_some(), "this test binary's own code is in no object");
    assert_eq!(
      here,
      object_base(code_is_placed_in_the_object_that_holds_it as *const () as usize)
    );
    let libc_object = object_base(libc::getpid as *const () as usize);
    assert!(
      libc_object.is_some() && libc_object != here,
      "libc is its own object"
    );
    let on_the_stack = 0_u8;
    assert_eq!(object_base(&raw const on_the_stack as usize), None);
  }
}
