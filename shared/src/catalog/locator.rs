//! Findings about any located document, whatever its type: what the cross-document
//! checks (semantic, approvals, calendars) report through.

use serde_json::Value;

use super::finding::Finding;
use super::load::Located;
use super::yaml::Pos;

/// Object-safe access to a located document's findings, whatever its type.
pub(super) trait Locator {
    fn file_name(&self) -> &str;
    fn pos_of(&self, pointer: &str) -> Pos;
    fn error_at(&self, pointer: &str, message: String) -> Finding;
    fn warning_at(&self, pointer: &str, message: String) -> Finding;
    fn raw(&self) -> &Value;
}

impl<T> Locator for Located<T> {
    fn file_name(&self) -> &str {
        &self.file
    }
    fn pos_of(&self, pointer: &str) -> Pos {
        self.pos(pointer)
    }
    fn error_at(&self, pointer: &str, message: String) -> Finding {
        self.error(pointer, message)
    }
    fn warning_at(&self, pointer: &str, message: String) -> Finding {
        self.warning(pointer, message)
    }
    fn raw(&self) -> &Value {
        &self.value
    }
}
