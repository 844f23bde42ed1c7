//! What an [`Emf`](crate::metrics::Emf) sink wrote, kept in memory for tests to read back.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A writer whose clones share one buffer: hand one to `Emf::to`, read through another.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Every line written so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The sum of metric `name`'s values on the lines whose dimensions include `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> u64 {
        self.lines()
            .into_iter()
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == name)
            .filter(|l| with.iter().all(|(k, v)| l[*k] == *v))
            .filter_map(|l| l[name].as_u64())
            .sum()
    }
}
