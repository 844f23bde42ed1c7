//! `orchestrator serve` as a child process, for tests that signal or kill it: started on
//! a free port, its log lines kept, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Serve {
    pub child: Child,
    /// `http://<addr>` it listens on.
    pub base: String,
    /// Every line the server logged so far.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    // A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a prepared `serve` command and waits for its "listening" log line; every
/// line it writes, on standard output or error, is kept.
pub fn start(mut command: Command) -> Serve {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let kept = logs.clone();
    let kept_err = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept_err.lock().expect("logs").push(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            kept.lock().expect("logs").push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if log["fields"]["message"] == "orchestrator listening" {
            let addr = log["fields"]["addr"].as_str().expect("addr").to_owned();
            return Serve {
                child,
                base: format!("http://{addr}"),
                logs,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start");
}
