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
