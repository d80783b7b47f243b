//! User text (task ids and names, reasons, paths, function names) as the library prints it: in the
//! hard-exit report, in stacks and in error messages.
//!
//! Control characters, line and paragraph separators and bidirectional overrides are escaped (`\n`,
//! `\x1b`, `\u{202e}`), and so is the backslash, so the text can neither drive an operator's terminal nor
//! forge a line, and reads back unambiguously. A task's id or name is also quoted, with the quote escaped
//! inside it, and cut when it is very long. The JavaScript side escapes the same way (`quoted` in
//! lib/validate.js). Nothing here allocates: the watchdog formats the report with it at the hard exit.

use std::fmt::{self, Write};

/// Text escaped as the module docs say; a quote is left as it is (it delimits nothing here).
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    self.0.chars().try_for_each(|c| write_escaped_char(f, c, false))
  }
}

/// How much of a task's id or name is printed (escaped, in bytes): a name as long as the report's buffer
/// must not crowd out every other task, so a longer one is cut, with `…`.
pub(crate) const MAX_TASK_TEXT: usize = 512;

/// A task's id in quotes (`'db'`): escaped, the quote too, and cut after [`MAX_TASK_TEXT`].
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_char('\'')?;
    write_cut(f, self.0, true)?;
    f.write_char('\'')
  }
}

/// A task's name as the report shows it beside its id, in parentheses: escaped, and cut after
/// [`MAX_TASK_TEXT`].
pub(crate) struct TaskName<'a>(pub(crate) &'a str);

impl fmt::Display for TaskName<'_> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write_cut(f, self.0, false)
  }
}

fn write_cut(f: &mut fmt::Formatter<'_>, text: &str, quote: bool) -> fmt::Result {
  let mut counted = CountingWriter { inner: f, written: 0 };
  for c in text.chars() {
    if counted.written >= MAX_TASK_TEXT {
      return counted.inner.write_str("…");
    }
    write_escaped_char(&mut counted, c, quote)?;
  }
  Ok(())
}

/// Counts what passes through to `inner`.
struct CountingWriter<'a, W: Write + ?Sized> {
  inner: &'a mut W,
  written: usize,
}

impl<W: Write + ?Sized> Write for CountingWriter<'_, W> {
  fn write_str(&mut self, s: &str) -> fmt::Result {
    self.written += s.len();
    self.inner.write_str(s)
  }
}

fn write_escaped_char(f: &mut (impl Write + ?Sized), c: char, quote: bool) -> fmt::Result {
  match c {
    '\\' => f.write_str("\\\\"),
    '\'' if quote => f.write_str("\\'"),
    '\n' => f.write_str("\\n"),
    '\r' => f.write_str("\\r"),
    '\t' => f.write_str("\\t"),
    c if (c as u32) < 0x80 && c.is_control() => write!(f, "\\x{:02x}", c as u32),
    c if c.is_control()
      || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
    {
      write!(f, "\\u{{{:x}}}", c as u32)
    }
    c => f.write_char(c),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn user_text_is_escaped_so_it_cannot_forge_lines_or_drive_the_terminal() {
    let hostile = "a\nb\r\x1b[2J\x07\x00\u{9b}\u{202e}\\ é日🦀 'q'";
    assert_eq!(
      Escaped(hostile).to_string(),
      "a\\nb\\r\\x1b[2J\\x07\\x00\\u{9b}\\u{202e}\\\\ é日🦀 'q'"
    );
    assert_eq!(
      Quoted(hostile).to_string(),
      "'a\\nb\\r\\x1b[2J\\x07\\x00\\u{9b}\\u{202e}\\\\ é日🦀 \\'q\\''"
    );
  }

  #[test]
  fn a_long_id_is_cut_on_a_character_boundary() {
    let long = "🦀".repeat(1000);
    let quoted = Quoted(&long).to_string();
    assert!(quoted.starts_with("'🦀") && quoted.ends_with("🦀…'"), "{quoted}");
    assert!(quoted.len() <= MAX_TASK_TEXT + "🦀…''".len(), "{}", quoted.len());
  }
}
