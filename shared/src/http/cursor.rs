//! Page cursors: opaque to callers, bound to the list and the filters of the page that
//! issued them. A cursor is the store's position (the last id of the page) and a digest
//! of the list's name, its filters and that position:
//! `<base64url position>.<base64url first 9 bytes of SHA-256>`. A cursor given with other
//! filters, or edited, or made up, does not match its digest and is refused with a
//! problem naming `cursor`, rather than silently paging a different list.
//!
//! The digest has no key: it tells a cursor that does not belong to the query apart, it
//! does not hide the position. A caller who recomputes it gains nothing, since a cursor
//! only says where in a list the caller may read anyway the page starts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::http::problem::Problem;

/// A list and its filters as a caller gave them: what a cursor is bound to.
pub struct PageFilter(String);

impl PageFilter {
    /// The list named `list` (`requests`, `resources`, `audit`).
    pub fn new(list: &str) -> Self {
        PageFilter(format!("{}:{list};", list.len()))
    }

    /// With filter `name` set to `value` (`None`: not given). Lengths keep every pair of
    /// names and values apart, whatever characters they hold.
    pub fn with(mut self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => {
                self.0
                    .push_str(&format!("{}:{name}={}:{value};", name.len(), value.len()))
            }
            None => self.0.push_str(&format!("{}:{name}-;", name.len())),
        }
        self
    }

    fn digest(&self, position: &str) -> String {
        let hash = Sha256::new()
            .chain_update(b"orchestrator-cursor\n")
            .chain_update(self.0.as_bytes())
            .chain_update(b"\n")
            .chain_update(position.as_bytes())
            .finalize();
        URL_SAFE_NO_PAD.encode(&hash[..9])
    }

    /// The cursor a page ending at `position` gives for the next one.
    pub fn issue(&self, position: Option<String>) -> Option<String> {
        position.map(|p| format!("{}.{}", URL_SAFE_NO_PAD.encode(&p), self.digest(&p)))
    }

    /// The store's position a `cursor` of this list and these filters names; none (the
    /// first page) when it is absent or empty.
    pub fn read(&self, cursor: Option<&str>) -> Result<Option<String>, Problem> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let position = cursor
            .split_once('.')
            .and_then(|(position, digest)| {
                let position = String::from_utf8(URL_SAFE_NO_PAD.decode(position).ok()?).ok()?;
                (self.digest(&position) == digest).then_some(position)
            })
            .ok_or_else(|| {
                Problem::invalid_parameter(
                    "cursor",
                    "not the `next` of a page of this list with these filters: page again \
                     from the first page, with the same filters on every page",
                )
            })?;
        Ok(Some(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(status: Option<&str>) -> PageFilter {
        PageFilter::new("requests")
            .with("status", status)
            .with("owner", None)
    }

    #[test]
    fn a_cursor_reads_back_only_with_its_list_and_filters() {
        let cursor = requests(Some("failed")).issue(Some("0193-a".to_owned()));
        let cursor = cursor.as_deref();
        assert_eq!(
            requests(Some("failed")).read(cursor).unwrap().as_deref(),
            Some("0193-a")
        );
        assert!(requests(None).read(cursor).is_err(), "other filters");
        assert!(requests(Some("ready")).read(cursor).is_err());
        assert!(
            PageFilter::new("audit").read(cursor).is_err(),
            "another list"
        );
        // Values cannot slide into names: `a=b;c` is not `a` then `c`.
        assert_ne!(
            PageFilter::new("x").with("a", Some("b;1:c-")).0,
            PageFilter::new("x").with("a", Some("b")).with("c", None).0
        );
    }

    #[test]
    fn edited_or_made_up_cursors_are_refused() {
        let filter = requests(None);
        let cursor = filter.issue(Some("0193-a".to_owned())).unwrap();
        let (_, digest) = cursor.split_once('.').unwrap();
        let moved = format!("{}.{digest}", URL_SAFE_NO_PAD.encode("0193-b"));
        for bad in [moved.as_str(), "0193-a", ".", "!!.??", "0193-a.x"] {
            let problem = filter.read(Some(bad)).unwrap_err();
            assert!(
                format!("{problem:?}").contains("cursor"),
                "{bad}: {problem:?}"
            );
        }
        assert_eq!(filter.read(None).unwrap(), None);
        assert_eq!(
            filter.read(Some("")).unwrap(),
            None,
            "empty: the first page"
        );
    }
}
