//! Secrets for local mode: a secret named NAME comes from the environment variable
//! `ORCHESTRATOR_SECRET_NAME` (upper-cased, `-` and `.` as `_`), else from a JSON file of
//! `{"name": "value"}` given in configuration.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;

use crate::ports::{Secrets, StoreError};
use crate::secret::SecretString;

pub struct LocalSecrets {
    file: HashMap<String, SecretString>,
    env: HashMap<String, SecretString>,
}

/// The environment variable that holds secret `name` in local mode.
pub fn env_var_name(name: &str) -> String {
    let mut out = String::from("ORCHESTRATOR_SECRET_");
    out.extend(name.chars().map(|c| match c {
        '-' | '.' | '/' => '_',
        c => c.to_ascii_uppercase(),
    }));
    out
}

impl LocalSecrets {
    /// Reads the secrets file (if any) and takes a snapshot of the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let file = match file {
            None => HashMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the secrets file {}: {e}", path.display()))?;
                // The message names the position only: a parse error must not echo a value.
                let map: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "the secrets file {} is not a JSON object of strings (line {}, column {})",
                        path.display(),
                        e.line(),
                        e.column()
                    )
                })?;
                map.into_iter()
                    .map(|(k, v)| (k, SecretString::new(v)))
                    .collect()
            }
        };
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("ORCHESTRATOR_SECRET_"))
            .map(|(k, v)| (k, SecretString::new(v)))
            .collect();
        Ok(LocalSecrets { file, env })
    }

    /// Sets a secret, over any of the same name (the sandbox's generated credentials).
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.remove(&env_var_name(name));
        self.file.insert(name.to_owned(), SecretString::new(value));
    }

    /// Secrets given directly (tests, the sandbox).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        LocalSecrets {
            file: pairs
                .into_iter()
                .map(|(k, v)| (k, SecretString::new(v)))
                .collect(),
            env: HashMap::new(),
        }
    }
}

#[async_trait]
impl Secrets for LocalSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, StoreError> {
        Ok(self
            .env
            .get(&env_var_name(name))
            .or_else(|| self.file.get(name))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_upper_cased_with_underscores() {
        assert_eq!(
            env_var_name("jira-api-token"),
            "ORCHESTRATOR_SECRET_JIRA_API_TOKEN"
        );
    }

    #[test]
    fn a_malformed_secrets_file_is_reported_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{\"token\": \"hunter2\", oops}").unwrap();
        let err = LocalSecrets::load(Some(&path)).err().unwrap();
        assert!(err.contains("line 1") && !err.contains("hunter2"), "{err}");
    }
}
