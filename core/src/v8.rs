//! The few V8 and Node C++ functions that tell where a blocked event loop is (see `js_stack`), looked up at
//! run time by their mangled names, as `uv` looks up libuv. N-API has nothing that runs while JavaScript is
//! busy; a V8 interrupt does: V8 runs it on the main thread at its next interrupt check, which every loop
//! iteration and function entry performs, even inside `while (true) {}` or a backtracking regular expression.
//!
//! The functions used have the same mangled name (and so signature) in Node 20, 22, 24 and 26, checked
//! against each binary's dynamic symbols (x64 and arm64 builds, glibc and musl; for Node 26, x64 and arm64
//! glibc and x64 musl), except two that Node 26 replaced, which are looked for under both names:
//! `String::Write` (`WriteV2` since V8 13.5; Node 26 has only that) and `node::TriggerNodeReport` (its
//! strings became `std::string_view`s in Node 26). The handle scope is N-API's (`napi_open_handle_scope`,
//! a C function of every Node since 8): V8's `HandleScope` constructor and destructor are inline in Node
//! 26's headers and no longer exported.
//! Everything but the diagnostic report must resolve, or none of it is used and the report says which was
//! missing. `v8::Message::PrintCurrentStackTrace` and `String::Utf8Value` changed in Node 24 and are not used.
//!
//! How the Itanium C++ ABI (every Unix Node runs on) maps onto the declarations below:
//! - a non-virtual member function is a plain function whose first argument is `this`;
//! - `v8::Local<T>` is a class holding one pointer (the handle's slot), trivially copied and destroyed, so
//!   it travels in a register like a pointer; an empty one is null. `Local<T>::operator->` gives a method
//!   that same pointer as `this`;
//! - `v8::Location` is two `int`s, trivially copied: returned in one 64-bit register, the line in the low
//!   half (both targets are little-endian);
//! - `std::string` has a non-trivial destructor, so it is returned through a hidden pointer; a `repr(C)`
//!   struct of more than 16 bytes is returned the same way on x86-64 (in RDI) and AArch64 (in X8);
//! - `std::string_view` (libstdc++: the length, then the pointer) is trivially copyable and 16 bytes, so it
//!   is passed by value as a `repr(C)` struct of two words would be: in two registers while two are free,
//!   else on the stack;
//! - enums are `int`.
//!
//! Thread-safety: `Isolate::RequestInterrupt` is documented as callable from any thread; everything else
//! here runs on the main thread, inside the interrupt.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::uv::function;

/// `v8::Isolate`, only ever behind a pointer.
pub type Isolate = c_void;
/// A `v8::Local<T>`: the address of the handle's slot, null when empty.
pub type Local = *mut c_void;
/// `v8::InterruptCallback`.
pub type InterruptCallback = unsafe extern "C" fn(isolate: *mut Isolate, data: *mut c_void);

/// `napi_env` and `napi_handle_scope`: N-API's opaque pointers.
type NapiEnv = *mut c_void;
type NapiHandleScope = *mut c_void;
/// `napi_ok`.
const NAPI_OK: c_int = 0;

/// libstdc++'s `std::string` in its C++11 ABI (every glibc and musl build of Node): the data pointer, the
/// length, then the capacity or a 16-byte inline buffer. Only the first two are read or written here.
#[repr(C)]
pub struct StdString {
  data: *const u8,
  len: usize,
  capacity_or_inline: [usize; 2],
}

/// libstdc++'s `std::string_view`: the length, then the pointer.
#[repr(C)]
struct StringView {
  len: usize,
  data: *const u8,
}

impl StringView {
  fn of(bytes: &[u8]) -> Self {
    StringView {
      len: bytes.len(),
      data: bytes.as_ptr(),
    }
  }
}

/// `node::TriggerNodeReport(v8::Isolate*, message, trigger, name, v8::Local<v8::Value> error) ->
/// std::string` (the file it wrote): the strings are `const char*`, `const char*`, `const std::string&`
/// up to Node 24, and three `std::string_view`s in Node 26.
#[derive(Clone, Copy)]
// Resolved on Linux only (see `trigger_report`): elsewhere neither variant is ever made.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum TriggerReport {
  CStrings(
    unsafe extern "C" fn(*mut Isolate, *const c_char, *const c_char, *const StdString, Local) -> StdString,
  ),
  Views(unsafe extern "C" fn(*mut Isolate, StringView, StringView, StringView, Local) -> StdString),
}

/// `v8::String::Write(Isolate*, uint16_t* buffer, int start, int length, int options) -> int` (written),
/// up to Node 24; `v8::String::WriteV2(Isolate*, uint32_t offset, uint32_t length, uint16_t* buffer, int
/// flags)`, which writes exactly `length` units, from Node 24 on (the only one in Node 26).
#[derive(Clone, Copy)]
enum StringWrite {
  Write(unsafe extern "C" fn(Local, *mut Isolate, *mut u16, c_int, c_int, c_int) -> c_int),
  WriteV2(unsafe extern "C" fn(Local, *mut Isolate, u32, u32, *mut u16, c_int)),
}

/// `v8::StackTrace::StackTraceOptions`: every detail, in the numbering of the V8 versions that still read
/// these bits (newer ones ignore all but bit 8, which stays clear).
const STACK_TRACE_DETAILED: c_int = 0x7f;
/// `v8::String::WriteOptions::NO_NULL_TERMINATION`.
const NO_NULL_TERMINATION: c_int = 2;
/// `v8::String::WriteFlags::kNone`: no terminating null.
const WRITE_V2_NO_FLAGS: c_int = 0;

/// The resolved functions.
pub struct V8 {
  request_interrupt: unsafe extern "C" fn(*mut Isolate, InterruptCallback, *mut c_void),
  open_handle_scope: unsafe extern "C" fn(NapiEnv, *mut NapiHandleScope) -> c_int,
  close_handle_scope: unsafe extern "C" fn(NapiEnv, NapiHandleScope) -> c_int,
  current_stack_trace: unsafe extern "C" fn(*mut Isolate, c_int, c_int) -> Local,
  frame_count: unsafe extern "C" fn(Local) -> c_int,
  frame: unsafe extern "C" fn(Local, *mut Isolate, u32) -> Local,
  location: unsafe extern "C" fn(Local) -> u64,
  function_name: unsafe extern "C" fn(Local) -> Local,
  script_name: unsafe extern "C" fn(Local) -> Local,
  string_length: unsafe extern "C" fn(Local) -> c_int,
  string_write: StringWrite,
  /// Writing Node's diagnostic report: Linux only, where Node's `std::string` is libstdc++'s (macOS builds
  /// use libc++, whose layout has not been tried).
  trigger_report: Option<TriggerReport>,
}

/// The main thread's isolate while it lives (0: none), taken on that thread (`Isolate::GetCurrent` answers
/// for the calling thread) and given up when the main environment is torn down. A lock rather than an
/// atomic: [`V8::interrupt_main`] holds it through its one call, so the teardown cannot free the isolate
/// under a request in flight; it waits at most for that call, a few microseconds.
static MAIN_ISOLATE: Mutex<usize> = Mutex::new(0);

/// The addon's `napi_env` in the main thread's environment (0: none), for the handle scope the interrupt
/// opens. Set and cleared on the main thread, where the interrupt also reads it: an atomic, so that read
/// never waits.
static MAIN_ENV: AtomicUsize = AtomicUsize::new(0);

fn main_isolate_slot() -> MutexGuard<'static, usize> {
  MAIN_ISOLATE
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves the functions once; `Err` names the first one missing.
pub fn api() -> Result<&'static V8, &'static str> {
  static API: OnceLock<Result<V8, String>> = OnceLock::new();
  API.get_or_init(resolve).as_ref().map_err(String::as_str)
}

fn resolve() -> Result<V8, String> {
  // SAFETY: in every `function` call, the type is the signature of the mangled name, as the module docs
  // describe; a wrong one could only come from a Node whose symbol kept its name but not its meaning.
  unsafe {
    Ok(V8 {
      request_interrupt: function(c"_ZN2v87Isolate16RequestInterruptEPFvPS0_PvES2_")?,
      open_handle_scope: function(c"napi_open_handle_scope")?,
      close_handle_scope: function(c"napi_close_handle_scope")?,
      current_stack_trace: function(
        c"_ZN2v810StackTrace17CurrentStackTraceEPNS_7IsolateEiNS0_17StackTraceOptionsE",
      )?,
      frame_count: function(c"_ZNK2v810StackTrace13GetFrameCountEv")?,
      frame: function(c"_ZNK2v810StackTrace8GetFrameEPNS_7IsolateEj")?,
      location: function(c"_ZNK2v810StackFrame11GetLocationEv")?,
      function_name: function(c"_ZNK2v810StackFrame15GetFunctionNameEv")?,
      script_name: function(c"_ZNK2v810StackFrame13GetScriptNameEv")?,
      string_length: function(c"_ZNK2v86String6LengthEv")?,
      string_write: match function(c"_ZNK2v86String5WriteEPNS_7IsolateEPtiii") {
        Ok(write) => StringWrite::Write(write),
        Err(_) => StringWrite::WriteV2(function(c"_ZNK2v86String7WriteV2EPNS_7IsolateEjjPti")?),
      },
      trigger_report: trigger_report(),
    })
  }
}

#[cfg(target_os = "linux")]
fn trigger_report() -> Option<TriggerReport> {
  const C_STRINGS: &CStr = c"_ZN4node17TriggerNodeReportEPN2v87IsolateEPKcS4_RKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEENS0_5LocalINS0_5ValueEEE";
  const VIEWS: &CStr = c"_ZN4node17TriggerNodeReportB5cxx11EPN2v87IsolateESt17basic_string_viewIcSt11char_traitsIcEES6_S6_NS0_5LocalINS0_5ValueEEE";
  // SAFETY: each variant's type is the signature of its name (see the module docs for `std::string` and
  // `std::string_view`).
  unsafe {
    function(C_STRINGS)
      .map(TriggerReport::CStrings)
      .or_else(|_| function(VIEWS).map(TriggerReport::Views))
      .ok()
  }
}

#[cfg(not(target_os = "linux"))]
fn trigger_report() -> Option<TriggerReport> {
  None
}

/// Takes the calling thread's isolate as the main thread's, and `env` (the addon's `napi_env` there) for
/// the handle scope the interrupt opens. Main thread only (the binding calls it when the main thread's
/// environment loads the addon).
pub fn capture_main_isolate(env: *mut c_void) -> Result<(), &'static str> {
  // SAFETY: `Isolate::GetCurrent` has no preconditions; on a thread that runs JavaScript it is that
  // thread's isolate.
  let get_current: unsafe extern "C" fn() -> *mut Isolate =
    unsafe { function(c"_ZN2v87Isolate10GetCurrentEv") }
      .map_err(|_| "v8::Isolate::GetCurrent is not exported by this Node binary")?;
  // SAFETY: resolved above with its signature; called on the thread whose isolate is wanted.
  let isolate = unsafe { get_current() };
  if isolate.is_null() {
    return Err("no V8 isolate on the thread that loaded the addon");
  }
  MAIN_ENV.store(env as usize, Ordering::Release);
  *main_isolate_slot() = isolate as usize;
  Ok(())
}

/// Gives up the main isolate: the main environment is being torn down, and the isolate will be freed.
/// Main thread (an environment cleanup hook).
pub fn forget_main_isolate() {
  *main_isolate_slot() = 0;
  MAIN_ENV.store(0, Ordering::Release);
}

/// Whether the main thread's isolate is known (and alive).
pub fn main_isolate_known() -> bool {
  *main_isolate_slot() != 0
}

/// One frame as V8 gives it; the strings stay V8's until the handle scope ends.
pub struct RawFrame {
  pub function: Local,
  pub script: Local,
  /// One-based, as Node prints them.
  pub line: i32,
  pub column: i32,
}

impl V8 {
  /// Asks V8 to run `callback(isolate, data)` on the main thread at its next interrupt check, unless the
  /// main isolate is gone (or was never known): returns whether it asked. Any thread.
  ///
  /// # Safety
  /// `callback` may run at any interrupt check from now on, or never, and must cope with both.
  pub unsafe fn interrupt_main(&self, callback: InterruptCallback, data: *mut c_void) -> bool {
    let isolate = main_isolate_slot();
    if *isolate == 0 {
      return false;
    }
    // SAFETY: the isolate is alive while the lock is held (the teardown takes it to forget the isolate);
    // V8 documents RequestInterrupt as thread-safe.
    unsafe { (self.request_interrupt)(*isolate as *mut Isolate, callback, data) };
    true
  }

  /// Walks the current JavaScript stack, innermost frame first, at most `limit` frames, inside a handle
  /// scope of its own. Returns `false`, having walked nothing, if the main environment is gone or the
  /// scope cannot be opened.
  ///
  /// # Safety
  /// On `isolate`'s thread, the main thread, where V8 allows handles: inside an interrupt callback, or a
  /// call from JavaScript.
  pub unsafe fn walk_stack(
    &self,
    isolate: *mut Isolate,
    limit: usize,
    mut each: impl FnMut(&Self, RawFrame),
  ) -> bool {
    /// Closes the handle scope when dropped, also if `each` panics: a scope left open would corrupt
    /// V8's handle stack.
    struct Scope<'a> {
      api: &'a V8,
      env: NapiEnv,
      scope: NapiHandleScope,
    }
    impl Drop for Scope<'_> {
      fn drop(&mut self) {
        // SAFETY: opened in `walk_stack` on this thread with this env, and closed only here.
        unsafe { (self.api.close_handle_scope)(self.env, self.scope) };
      }
    }
    let env = MAIN_ENV.load(Ordering::Acquire) as NapiEnv;
    if env.is_null() {
      return false;
    }
    let mut opened: NapiHandleScope = std::ptr::null_mut();
    // SAFETY: the caller guarantees the main thread, whose environment `env` belongs to (it is cleared at
    // that environment's teardown, on this thread). N-API's handle scope is a V8 `HandleScope` that Node
    // allocates; opening one runs no JavaScript.
    if unsafe { (self.open_handle_scope)(env, &mut opened) } != NAPI_OK || opened.is_null() {
      return false;
    }
    let _scope = Scope {
      api: self,
      env,
      scope: opened,
    };
    // SAFETY: the caller guarantees the thread, and the handle scope is open until `_scope` drops.
    unsafe {
      let trace = (self.current_stack_trace)(
        isolate,
        limit.min(c_int::MAX as usize) as c_int,
        STACK_TRACE_DETAILED,
      );
      if !trace.is_null() {
        let count = (self.frame_count)(trace).max(0) as u32;
        for index in 0..count {
          let frame = (self.frame)(trace, isolate, index);
          if frame.is_null() {
            continue;
          }
          let location = (self.location)(frame);
          each(
            self,
            RawFrame {
              function: (self.function_name)(frame),
              script: (self.script_name)(frame),
              line: (location as u32 as i32).saturating_add(1),
              column: ((location >> 32) as u32 as i32).saturating_add(1),
            },
          );
        }
      }
    }
    true
  }

  /// Copies the UTF-16 code units of a string handle into `out`; returns how many were written (the string
  /// may be longer). An empty handle writes nothing.
  ///
  /// # Safety
  /// As for [`V8::walk_stack`], with `string` a live handle from its callback.
  pub unsafe fn read_string(&self, isolate: *mut Isolate, string: Local, out: &mut [u16]) -> usize {
    if string.is_null() {
      return 0;
    }
    // SAFETY: a live string handle; `out` has room for the `take` units written.
    unsafe {
      let take = (self.string_length)(string)
        .max(0)
        .min(out.len().min(c_int::MAX as usize) as c_int);
      match self.string_write {
        StringWrite::Write(write) => {
          write(string, isolate, out.as_mut_ptr(), 0, take, NO_NULL_TERMINATION).clamp(0, take) as usize
        }
        // `take` is at most the string's length, which WriteV2 requires.
        StringWrite::WriteV2(write) => {
          write(
            string,
            isolate,
            0,
            take as u32,
            out.as_mut_ptr(),
            WRITE_V2_NO_FLAGS,
          );
          take as usize
        }
      }
    }
  }

  /// Whether Node's diagnostic report can be written from here.
  pub fn can_write_diagnostic_report(&self) -> bool {
    self.trigger_report.is_some()
  }

  /// Writes Node's diagnostic report to `path` (which Node puts under `process.report.directory` when one is
  /// set) and copies the name of the file it wrote into `written`; returns its length, 0 if Node wrote
  /// nothing (it says why on stderr).
  ///
  /// # Safety
  /// On `isolate`'s thread where V8 allows handles (inside an interrupt callback).
  pub unsafe fn write_diagnostic_report(
    &self,
    isolate: *mut Isolate,
    path: &CStr,
    message: &CStr,
    written: &mut [u8],
  ) -> usize {
    let Some(trigger) = self.trigger_report else {
      return 0;
    };
    const TRIGGER: &CStr = c"titan-lifecycle";
    let bytes = path.to_bytes();
    // SAFETY: each variant is called with its signature; the strings live through the call. The trigger is
    // not "Signal" or "FatalError", so Node prints the current JavaScript stack into the report.
    let file = unsafe {
      match trigger {
        TriggerReport::CStrings(trigger) => {
          let name = StdString {
            data: bytes.as_ptr(),
            len: bytes.len(),
            // Only read through a const reference: Node copies the name, so the capacity is never consulted.
            capacity_or_inline: [bytes.len(), 0],
          };
          trigger(
            isolate,
            message.as_ptr(),
            TRIGGER.as_ptr(),
            &name,
            std::ptr::null_mut(),
          )
        }
        TriggerReport::Views(trigger) => trigger(
          isolate,
          StringView::of(message.to_bytes()),
          StringView::of(TRIGGER.to_bytes()),
          StringView::of(bytes),
          std::ptr::null_mut(),
        ),
      }
    };
    if file.data.is_null() || file.len == 0 || file.len > 64 * 1024 {
      return 0;
    }
    // SAFETY: a std::string Node returned: `len` bytes at `data`. Its heap buffer (if any) is left to the
    // process's imminent exit: freeing it would mean calling libstdc++'s operator delete by name too.
    let returned = unsafe { std::slice::from_raw_parts(file.data, file.len) };
    let take = returned.len().min(written.len());
    written[..take].copy_from_slice(&returned[..take]);
    take
  }
}
