//! Many operations at once: how a deploy starts nodes and wires links,
//! and how a teardown removes nodes.

use std::future::Future;

use futures_util::{stream, FutureExt, StreamExt};

/// How many nodes or links are set up, or removed, at the same time.
pub const DEFAULT_CONCURRENCY: usize = 12;

/// Runs `work` on every item, at most `concurrency` at a time, and
/// returns every output in the items' order. Every operation started runs
/// to its end: nothing is left in flight behind the caller's back (a
/// rollback after a failure must see all that was created).
pub async fn fan_out<I, F, Fut>(items: I, concurrency: usize, mut work: F) -> Vec<Fut::Output>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let mut done: Vec<(usize, Fut::Output)> = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| work(item).map(move |out| (i, out)))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, out)| out).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn outputs_keep_the_items_order_whatever_finishes_first() {
        let out = fan_out([30u64, 0, 10], 3, |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .await;
        assert_eq!(out, [30, 0, 10]);
    }

    #[tokio::test]
    async fn at_most_concurrency_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        fan_out(0..10, 3, |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        })
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
