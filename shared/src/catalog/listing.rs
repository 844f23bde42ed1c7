//! The catalog's lists as the API pages them: the items (or the bundles) of a snapshot in
//! name order, each with the lower-cased text a query searches, built once when the
//! snapshot is made. A page starts after a name (found by binary search) and reads only
//! as far as it needs to fill itself, so a call costs the page, not the catalog.

use std::collections::{BTreeSet, HashMap};

use super::document::Metadata;

/// What a list is filtered by: each set filter must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub category: Option<String>,
    pub owner: Option<String>,
    pub tag: Option<String>,
    /// Free text, matched case-insensitively in name, title, description and tags.
    pub text: Option<String>,
}

struct Entry {
    /// Where the target is in the snapshot's list.
    position: usize,
    name: String,
    /// Name, title, description and tags, lower-cased, one per line.
    text: String,
}

/// One kind of target (items or bundles) in name order, and for each three-byte
/// sequence of their searched text, the entries that hold it (ascending): a text query
/// reads only the entries holding its rarest sequence, not the whole list.
#[derive(Default)]
pub struct Index {
    entries: Vec<Entry>,
    trigrams: HashMap<[u8; 3], Vec<u32>>,
}

/// A page of positions in the snapshot's list, and the name the next page starts after.
pub struct Page {
    pub positions: Vec<usize>,
    pub next: Option<String>,
}

/// The values the filters can take, across items and bundles, each sorted once.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Facets {
    pub categories: Vec<String>,
    pub owners: Vec<String>,
    pub tags: Vec<String>,
}

impl Facets {
    pub fn of<'a>(metadata: impl Iterator<Item = &'a Metadata>) -> Self {
        let (mut categories, mut owners, mut tags) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for m in metadata {
            categories.insert(m.category.clone());
            owners.insert(m.owner.clone());
            tags.extend(m.tags.iter().cloned());
        }
        Facets {
            categories: categories.into_iter().collect(),
            owners: owners.into_iter().collect(),
            tags: tags.into_iter().collect(),
        }
    }
}

impl Index {
    /// The index of the targets whose metadata `metadata` lists, in that list's order.
    pub fn new<'a>(metadata: impl Iterator<Item = &'a Metadata>) -> Self {
        let mut entries: Vec<Entry> = metadata
            .enumerate()
            .map(|(position, m)| {
                let mut text = [&m.name, &m.title, &m.description]
                    .map(|s| s.to_lowercase())
                    .join("\n");
                for tag in &m.tags {
                    text.push('\n');
                    text.push_str(&tag.to_lowercase());
                }
                Entry {
                    position,
                    name: m.name.clone(),
                    text,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut trigrams: HashMap<[u8; 3], Vec<u32>> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for window in entry.text.as_bytes().windows(3) {
                let holders = trigrams
                    .entry([window[0], window[1], window[2]])
                    .or_default();
                // An entry's sequences are all added before the next entry's.
                if holders.last() != Some(&i) {
                    holders.push(i);
                }
            }
        }
        Index { entries, trigrams }
    }

    /// The entries from `start` on that may hold `text`: those holding its rarest
    /// three-byte sequence, or every one when it is shorter than three bytes.
    fn candidates<'i>(
        &'i self,
        text: Option<&str>,
        start: usize,
    ) -> Box<dyn Iterator<Item = &'i Entry> + 'i> {
        let Some(text) = text.filter(|t| t.len() >= 3) else {
            return Box::new(self.entries[start..].iter());
        };
        let mut rarest: Option<&Vec<u32>> = None;
        for window in text.as_bytes().windows(3) {
            match self.trigrams.get(&[window[0], window[1], window[2]]) {
                // A sequence no entry holds: nothing matches.
                None => return Box::new(std::iter::empty()),
                Some(holders) if rarest.is_none_or(|r| holders.len() < r.len()) => {
                    rarest = Some(holders);
                }
                Some(_) => {}
            }
        }
        let holders = rarest.map_or(&[][..], Vec::as_slice);
        let from = holders.partition_point(|&i| (i as usize) < start);
        Box::new(holders[from..].iter().map(|&i| &self.entries[i as usize]))
    }

    /// Up to `limit` targets matching `filter` whose names sort after `after`;
    /// `metadata` gives a target's metadata by its position.
    pub fn page<'a>(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        metadata: impl Fn(usize) -> &'a Metadata,
    ) -> Page {
        // One searcher per call, not per entry: a text query scans many entries.
        let lowered = filter.text.as_deref().map(str::to_lowercase);
        let text = lowered.as_deref().map(memchr::memmem::Finder::new);
        let start = after.map_or(0, |after| {
            self.entries.partition_point(|e| e.name.as_str() <= after)
        });
        let mut matching = self.candidates(lowered.as_deref(), start).filter(|e| {
            let m = metadata(e.position);
            filter.category.as_ref().is_none_or(|c| *c == m.category)
                && filter.owner.as_ref().is_none_or(|o| *o == m.owner)
                && filter.tag.as_ref().is_none_or(|t| m.tags.contains(t))
                && text
                    .as_ref()
                    .is_none_or(|q| q.find(e.text.as_bytes()).is_some())
        });
        let page: Vec<&Entry> = matching.by_ref().take(limit).collect();
        let next = match (page.last(), matching.next()) {
            (Some(last), Some(_)) => Some(last.name.clone()),
            _ => None,
        };
        Page {
            positions: page.iter().map(|e| e.position).collect(),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, category: &str, tags: &[&str]) -> Metadata {
        Metadata {
            name: name.to_owned(),
            title: format!("The {name}"),
            description: "An Offering".to_owned(),
            owner: "data".to_owned(),
            category: category.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            lifecycle: Default::default(),
            replaced_by: None,
            access_groups: vec![],
            links: vec![],
        }
    }

    #[test]
    fn pages_in_name_order_after_a_name_with_filters() {
        let list = [
            meta("postgres", "database", &["SQL"]),
            meta("kafka", "messaging", &[]),
            meta("mysql", "database", &[]),
            meta("eks", "compute", &[]),
        ];
        let index = Index::new(list.iter());
        let all = Filter::default();
        let names = |page: &Page| -> Vec<&str> {
            page.positions
                .iter()
                .map(|&p| list[p].name.as_str())
                .collect()
        };
        let first = index.page(&all, None, 2, |p| &list[p]);
        assert_eq!(names(&first), ["eks", "kafka"]);
        assert_eq!(first.next.as_deref(), Some("kafka"));
        let rest = index.page(&all, first.next.as_deref(), 2, |p| &list[p]);
        assert_eq!(names(&rest), ["mysql", "postgres"]);
        assert_eq!(rest.next, None, "no page after the last");
        let databases = Filter {
            category: Some("database".to_owned()),
            ..Filter::default()
        };
        assert_eq!(
            names(&index.page(&databases, None, 10, |p| &list[p])),
            ["mysql", "postgres"]
        );
        let sql = Filter {
            text: Some("sql".to_owned()),
            ..Filter::default()
        };
        assert_eq!(
            names(&index.page(&sql, None, 10, |p| &list[p])),
            ["mysql", "postgres"],
            "case-insensitive, in names and tags"
        );
        assert!(
            index
                .page(&all, Some("zzz"), 10, |p| &list[p])
                .positions
                .is_empty()
        );
        let facets = Facets::of(list.iter());
        assert_eq!(facets.categories, ["compute", "database", "messaging"]);
        assert_eq!(facets.tags, ["SQL"]);
    }
}
