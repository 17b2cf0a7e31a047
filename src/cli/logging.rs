//! `--log-format json|text`: the controller's logs on standard error, through `tracing`.
//!
//! The filter is `$RUST_LOG` (default `info`). Log lines name objects, keys, reasons and
//! recipients, never a value: the library logs no value, and nothing here adds one.
// Wired into `gitops-seal controller` by flattening [`LogArgs`] into its arguments and calling
// [`init_logging`] in place of its own subscriber set-up.
#![allow(dead_code)]

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Args, ValueEnum};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log collectors.
    Json,
}

/// The logging flags, to flatten into a command's arguments.
#[derive(Args, Debug, Default, Clone)]
pub struct LogArgs {
    /// Log format on standard error (the level comes from $RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

/// Installs the process's log subscriber: `format` on standard error, filtered by `$RUST_LOG`
/// (default `info`). Fails when a subscriber is already installed.
pub fn init_logging(format: LogFormat) -> Result<()> {
    let ansi = std::io::stderr().is_terminal();
    tracing::subscriber::set_global_default(subscriber(format, std::io::stderr, ansi))
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

fn filter() -> EnvFilter {
    gitops_seal::adapters::kube::capped_log_filter(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    )
}

/// The subscriber for `format`, writing to `writer`.
fn subscriber<W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn logged(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let sub = subscriber(format, buffer.clone(), false);
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(
                object = "SealedSecret prod/db",
                reason = "KeyMissing",
                "unseal failed"
            );
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_is_one_object_per_line_with_the_fields() {
        let out = logged(LogFormat::Json);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "unseal failed");
        assert_eq!(v["object"], "SealedSecret prod/db");
        assert_eq!(v["reason"], "KeyMissing");
        assert!(v["timestamp"].is_string(), "{v}");
    }

    #[test]
    fn text_is_one_plain_line() {
        let out = logged(LogFormat::Text);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("WARN"), "{out}");
        assert!(out.contains("unseal failed"), "{out}");
        assert!(out.contains("reason=\"KeyMissing\""), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour codes: {out}");
    }
}
