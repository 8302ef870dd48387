//! A tiny work-sharing map over std threads: repositories hold thousands of small files and
//! CI machines have a few cores, so reading and parsing run on all of them. No thread pool
//! dependency is worth it for one loop.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    thread,
};

/// Most items claimed per step: small enough to balance, large enough to keep the counter cold.
const CHUNK: usize = 8;

/// `items.iter().map(f)`, on up to `max_threads` threads (and no more than the machine has),
/// results in input order.
pub fn parallel_map<T, R, F>(items: &[T], max_threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(max_threads).min(items.len()).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = (items.len() / (threads * 8)).clamp(1, CHUNK);
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = Vec::with_capacity(items.len());
    slots.resize_with(items.len(), || None);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(chunk, Ordering::Relaxed);
                        if start >= items.len() {
                            break;
                        }
                        let end = (start + chunk).min(items.len());
                        for (offset, item) in items[start..end].iter().enumerate() {
                            done.push((start + offset, f(item)));
                        }
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (index, result) in done {
                        slots[index] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order() {
        let items: Vec<usize> = (0..1000).collect();
        let out = parallel_map(&items, 8, |x| x * 2);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(parallel_map(&[] as &[usize], 8, |x| *x).is_empty());
    }
}
