//! Printing results, progress and errors, as text or one JSON object per line.

use krypton_chain::Progress;
use serde_json::{Value, json};

/// Where results go: stdout (text or JSON lines); progress and logs go to stderr.
pub struct Output {
    json: bool,
}

impl Output {
    /// `json`: print JSON lines instead of text.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints one result.
    pub fn result(&self, v: Value) {
        if self.json {
            println!("{v}");
        } else {
            print_text(&v, 0);
        }
    }

    /// Prints a progress line on stderr.
    pub fn progress(&self, v: Value) {
        if self.json {
            eprintln!("{}", serde_json::json!({ "progress": v }));
        } else if let Some(o) = v.as_object() {
            let parts: Vec<String> = o.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
            eprintln!("… {}", parts.join(" "));
        }
    }

    /// Prints the progress of a transaction on stderr.
    pub fn tx_progress(&self, p: &Progress) {
        let gas = |v: i64| krypton_chain::nep17::format_amount(v as i128, 8);
        self.progress(match p {
            Progress::Signed {
                txid,
                system_fee,
                network_fee,
            } => json!({
                "state": "signed", "txid": txid,
                "system_fee": gas(*system_fee), "network_fee": gas(*network_fee),
            }),
            Progress::Submitted {
                txid,
                valid_until_block,
            } => {
                json!({"state": "submitted", "txid": txid, "valid_until_block": valid_until_block})
            }
            Progress::Included { txid, block } => {
                json!({"state": "included", "txid": txid, "block": block})
            }
            Progress::Executed { txid, vm_state } => {
                json!({"state": "executed", "txid": txid, "vm_state": vm_state})
            }
        });
    }

    /// Prints a human note on stderr (nothing in JSON mode).
    pub fn note(&self, s: &str) {
        if !self.json {
            eprintln!("{s}");
        }
    }

    /// Prints an error: JSON on stdout with `--json`, text on stderr otherwise.
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if self.json {
            println!("{}", serde_json::json!({ "error": msg }));
        } else {
            eprintln!("error: {msg}");
        }
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_text(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match v {
                    Value::Object(_) => {
                        println!("{pad}{k}:");
                        print_text(v, indent + 2);
                    }
                    Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                        println!("{pad}{k}:");
                        for x in a {
                            print_text(x, indent + 2);
                            println!();
                        }
                    }
                    _ => println!("{pad}{k}: {}", plain(v)),
                }
            }
        }
        other => println!("{pad}{}", plain(other)),
    }
}

/// Logs to stderr; `KRYPTON_LOG` sets the filter (default `warn`). Secrets are never logged.
///
/// rsipstack logs every SIP message whole at `info` (`rsipstack::transport`), and those carry
/// proofs (`Authorization: Bearer …`, digest responses). They stay out of the log unless the
/// filter names rsipstack itself, e.g. `KRYPTON_LOG=debug,rsipstack::transport=info` to trace
/// SIP traffic on a test machine.
pub fn init_tracing() {
    let spec = std::env::var("KRYPTON_LOG").unwrap_or_else(|_| "warn".to_string());
    let filter = log_filter(&spec);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The log filter for a `KRYPTON_LOG` value (see [`init_tracing`]).
fn log_filter(spec: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_new(spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if !spec.contains("rsipstack")
        && let Ok(quiet) = "rsipstack::transport=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn whole_sip_messages_stay_out_of_the_log_unless_asked_for() {
        for spec in ["debug", "info", "trace", "krypton_sip=debug"] {
            let f = log_filter(spec).to_string();
            assert!(f.contains("rsipstack::transport=warn"), "{spec}: {f}");
        }
        let f = log_filter("debug,rsipstack::transport=info").to_string();
        assert!(!f.contains("rsipstack::transport=warn"), "{f}");
    }
}
