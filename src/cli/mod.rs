//! The command line: argument parsing and the thin glue from arguments to the library.
//! `main` calls `run`, prints the error chain once, and treats a broken pipe as success.

mod args;
mod commands;
mod edit;
mod hook;

use std::io::Write;

use clap::Parser;

pub use args::Cli;

/// Exit codes: 0 success, 1 `verify` found problems, 2 an error.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {e}");
            for cause in e.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            2
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
