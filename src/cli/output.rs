//! Writing to stdout and stderr without panicking when they are closed.
//!
//! `print!` and `eprint!` panic when the write fails (exit 101 with a
//! backtrace), which is what `keelson status | head -1` met once `head` had
//! its line and closed the pipe. Rust ignores SIGPIPE, so a closed pipe is an
//! `EPIPE` error here; restoring SIGPIPE's default action instead would also
//! kill keelson when an API server closes a connection mid-write (hyper's
//! vectored writes carry no `MSG_NOSIGNAL`).
//!
//! So every subcommand prints through [`out!`], [`outln!`], [`errout!`] and
//! [`erroutln!`]: a closed pipe ends keelson quietly with exit code 141
//! ([`CLOSED_PIPE_EXIT`]), the status a shell reports for a process that
//! SIGPIPE ended (what `yes | head -1` gives); any other write error is said
//! on stderr and ends it with exit code 1. Errors returned with `?` from an
//! `io::Write` on stdout reach [`crate::cli::main`], which treats a closed
//! pipe in their chain the same way ([`is_closed_pipe`]).

use std::fmt;
use std::io::{self, Write};

/// The exit code after a write to a closed pipe: 128 + SIGPIPE (13), as a
/// shell reports a process the signal ended.
pub const CLOSED_PIPE_EXIT: u8 = 141;

/// Whether `err`'s chain holds an I/O error of kind `BrokenPipe` (`EPIPE`).
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Write `args` to stdout; see the module doc for what a failure does.
pub fn stdout(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        failed("stdout", &e);
    }
}

/// Write `args` to stderr; see the module doc for what a failure does.
pub fn stderr(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stderr().lock().write_fmt(args) {
        failed("stderr", &e);
    }
}

/// End the process after a failed write to `stream`.
fn failed(stream: &str, e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_PIPE_EXIT.into());
    }
    // stderr itself may be what failed: nothing more to do then.
    let _ = writeln!(io::stderr(), "error: cannot write to {stream}: {e}");
    std::process::exit(1);
}

/// `print!` that ends keelson quietly on a closed pipe (see the module doc).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(::std::format_args!($($arg)*))
    };
}

/// `println!` that ends keelson quietly on a closed pipe (see the module doc).
macro_rules! outln {
    () => {
        $crate::cli::output::stdout(::std::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(::std::format_args!("{}\n", ::std::format_args!($($arg)*)))
    };
}

/// `eprint!` that ends keelson quietly on a closed pipe (see the module doc).
macro_rules! errout {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(::std::format_args!($($arg)*))
    };
}

/// `eprintln!` that ends keelson quietly on a closed pipe (see the module doc).
macro_rules! erroutln {
    () => {
        $crate::cli::output::stderr(::std::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(::std::format_args!("{}\n", ::std::format_args!($($arg)*)))
    };
}

pub(crate) use {errout, erroutln, out, outln};
