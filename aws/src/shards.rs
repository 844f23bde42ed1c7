//! Write sharding of the lists that would otherwise put every write of their kind in one
//! partition (docs/dynamodb.md): the audit log (`pk`) and the indexes of all requests and
//! all resources (`gsi3pk`). Each record goes to one of [`SHARDS`] partitions chosen from
//! its id, so writes spread over them; a list reads every shard and merges them newest
//! first ([`crate::pages::Listing`]).
//!
//! The number of shards is part of the stored format: readers look in exactly these
//! partitions, so it is a constant, not a setting. Records written before sharding stay in
//! the unsharded partition, which readers merge as one more shard.

/// How many partitions a sharded list spreads over: 16 partitions take about 16,000
/// writes a second (DynamoDB's 1,000 write units per partition, items under 1 KB).
pub(crate) const SHARDS: u32 = 16;

/// The shard of the record with `id`: FNV-1a of the id, so the choice is stable across
/// processes and releases (a retried write lands where the first one did).
pub(crate) fn shard_of(id: &str) -> u32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % SHARDS
}

/// The partition of `list` the record with `id` is written to: `<list>#<shard, 2 digits>`.
pub(crate) fn partition_of(list: &str, id: &str) -> String {
    format!("{list}#{:02}", shard_of(id))
}

/// Every partition a reader of `list` merges: its shards, and the unsharded partition
/// that holds what was written before sharding.
pub(crate) fn partitions(list: &str) -> Vec<String> {
    (0..SHARDS)
        .map(|shard| format!("{list}#{shard:02}"))
        .chain(std::iter::once(list.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_every_shard_and_keep_their_shard() {
        let mut counts = [0_u32; SHARDS as usize];
        for i in 0..16_000 {
            let id = format!("0193a1b2-{i:04x}-7000-8000-{:012x}", i * 7919);
            counts[shard_of(&id) as usize] += 1;
            assert_eq!(shard_of(&id), shard_of(&id.clone()));
        }
        // Each shard near its 1,000: no shard takes twice its share.
        assert!(
            counts.iter().all(|&c| (500..2000).contains(&c)),
            "{counts:?}"
        );
        // The choice is part of the stored format: it must never change.
        assert_eq!(shard_of("0193a1b2-0000-7000-8000-000000000000"), 11);
        assert_eq!(partition_of("audit", "x"), "audit#07");
        assert_eq!(partitions("audit").len(), SHARDS as usize + 1);
        assert!(partitions("audit").contains(&"audit".to_owned()));
    }
}
