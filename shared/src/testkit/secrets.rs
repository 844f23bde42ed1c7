//! The behaviour every `Secrets` adapter must have. The store under test holds [`KNOWN`]
//! (name, value) and nothing named [`MISSING`].

use crate::ports::Secrets;

/// A secret the store under test must hold: a name with the separators real names use.
pub const KNOWN: (&str, &str) = ("integrations/jira-token", "s3cr3t-value-7f2a");

/// A name the store under test must not hold.
pub const MISSING: &str = "integrations/no-such-secret";

pub async fn run(secrets: &dyn Secrets) {
    let (name, value) = KNOWN;
    let got = secrets
        .get(name)
        .await
        .unwrap()
        .expect("the known secret is found");
    assert_eq!(got.expose(), value);
    // The value only comes out when asked for by name.
    assert!(!format!("{got:?}").contains(value));
    assert!(!format!("{got}").contains(value));

    // A missing secret is not an error: callers decide what its absence means.
    assert!(secrets.get(MISSING).await.unwrap().is_none());

    // Asked again (from a cache or not), the same answers.
    assert_eq!(secrets.get(name).await.unwrap().unwrap().expose(), value);
    assert!(secrets.get(MISSING).await.unwrap().is_none());
}
