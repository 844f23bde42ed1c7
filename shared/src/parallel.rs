//! Data parallelism over slices with scoped threads: enough for the catalog's batch
//! work without a thread-pool dependency.

/// Maps `f` over `items` on up to the machine's number of cores, keeping the order.
/// Small inputs (under `min_chunk` items per thread) run on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], min_chunk: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let chunk = items.len().div_ceil(workers).max(min_chunk.max(1));
    if items.len() <= chunk {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(results) => results,
                // A panic in a worker is a bug; surface it on the caller's thread.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_input_order() {
        let input: Vec<u32> = (0..10_000).collect();
        let output = super::map(&input, 10, |x| x * 2);
        assert_eq!(output, input.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
