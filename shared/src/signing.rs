//! HMAC-SHA256 body signatures in GitHub's form, `sha256=<hex>`: the orchestrator signs
//! the webhooks it sends and verifies the ones it receives with the same code.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex of HMAC-SHA256(key, body)>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// Whether `signature` (`sha256=<hex>`) is `body`'s signature under `key`, compared in
/// constant time.
pub fn verify(key: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(bytes) = signature.strip_prefix("sha256=").and_then(decode_hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let digest = |s: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(b"orchestrator-compare")
            .expect("HMAC takes a key of any length");
        m.update(s);
        m.finalize().into_bytes()
    };
    digest(given) == digest(expected)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_documented_example() {
        // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to
        // Everybody", payload "Hello, World!".
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            expected
        );
        assert!(verify(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            expected
        ));
        assert!(!verify(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            expected
        ));
        assert!(!verify(b"other", b"Hello, World!", expected));
        assert!(!verify(b"k", b"b", "sha1=00"));
        assert!(!verify(b"k", b"b", "sha256=zz"));
        assert!(same_secret(b"a", b"a") && !same_secret(b"a", b"b"));
    }
}
