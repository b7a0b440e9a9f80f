//! Logging for the front ends (`krypton`, the desktop app): one rule for both.

/// Logs to stderr; `KRYPTON_LOG` sets the filter (default `warn`). Secrets are never logged.
///
/// rsipstack logs every SIP message whole at `info` (`rsipstack::transport`), and those carry
/// proofs (`Authorization: Bearer …`, digest responses). They stay out of the log unless the
/// filter names rsipstack itself, e.g. `KRYPTON_LOG=debug,rsipstack::transport=info` to trace
/// SIP traffic on a test machine.
pub fn init() {
    let spec = std::env::var("KRYPTON_LOG").unwrap_or_else(|_| "warn".to_string());
    let filter = log_filter(&spec);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The log filter for a `KRYPTON_LOG` value (see [`init`]).
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
