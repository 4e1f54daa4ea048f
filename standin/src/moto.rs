//! moto's Secrets Manager server, a real protocol peer, started from Python on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running moto server. It stops when this process exits (its stdin pipe closes).
pub struct Moto {
    endpoint: String,
    _child: Child,
}

impl Moto {
    /// Starts moto with `$MOTO_PYTHON` (default `python3`), which must have `moto[server]`.
    pub fn start() -> Result<Self, String> {
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_server.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {python} {script}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("moto: {e}"))?;
        let port: u16 = line.trim().parse().map_err(|_| {
            format!(
                "moto did not start with {python} (pip install 'moto[server]'); it printed {line:?}"
            )
        })?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
        })
    }

    /// `http://127.0.0.1:port`: the value for `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
