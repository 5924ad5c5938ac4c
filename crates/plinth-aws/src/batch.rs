//! One call for many concurrent single-resource reads, where the API takes several ids.
//!
//! Two hundred security groups created in parallel each wait until AWS shows them; asked one
//! by one that is two hundred DescribeSecurityGroups. A [`Coalescer`] gathers the ids asked
//! for while it lingers a moment (and while its previous call is in flight) and sends one
//! call for all of them, answering each asker from it. The call runs in its own task, so an
//! asker that stops waiting (Ctrl-C, a deadline) never strands the others.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plinth_core::resource::{ResourceError, ResourceResult};
use tokio::sync::oneshot;

/// A batched read: the ids asked for, to what was found of them by id (absent: not found).
pub type Fetch<T> = Arc<
    dyn Fn(Vec<String>) -> Pin<Box<dyn Future<Output = ResourceResult<HashMap<String, T>>> + Send>>
        + Send
        + Sync,
>;

type Answer<T> = ResourceResult<Option<T>>;

/// Gathers concurrent reads of one kind of resource in one region into batched calls.
pub struct Coalescer<T> {
    fetch: Fetch<T>,
    /// How many ids one call may carry.
    max: usize,
    /// How long the first asker's read waits for others to join it.
    linger: Duration,
    queue: Mutex<Queue<T>>,
}

struct Queue<T> {
    waiting: Vec<(String, oneshot::Sender<Answer<T>>)>,
    /// A task is sending (or about to send) calls for what is waiting.
    running: bool,
}

impl<T: Clone + Send + 'static> Coalescer<T> {
    pub fn new(fetch: Fetch<T>, max: usize, linger: Duration) -> Arc<Coalescer<T>> {
        Arc::new(Coalescer {
            fetch,
            max: max.max(1),
            linger,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                running: false,
            }),
        })
    }

    /// What one batched call says about `id`: `None` when it was not found.
    pub async fn get(self: &Arc<Self>, id: &str) -> ResourceResult<Option<T>> {
        let (send, receive) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiting.push((id.to_string(), send));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let coalescer = self.clone();
            tokio::spawn(async move { coalescer.drain().await });
        }
        receive
            .await
            .unwrap_or_else(|_| Err(ResourceError::other("a batched read was dropped")))
    }

    /// Sends calls until nobody is waiting: what arrives during a call goes in the next.
    async fn drain(self: Arc<Self>) {
        // However this task ends (a panic in a call, the runtime shutting down), the next
        // read starts a task of its own instead of waiting for this one.
        let mut restart = Restart {
            queue: &self.queue,
            armed: true,
        };
        tokio::time::sleep(self.linger).await;
        loop {
            let batch: Vec<(String, oneshot::Sender<Answer<T>>)> = {
                let mut queue = lock(&self.queue);
                if queue.waiting.is_empty() {
                    queue.running = false;
                    restart.armed = false;
                    return;
                }
                let take = queue.waiting.len().min(self.max);
                queue.waiting.drain(..take).collect()
            };
            let mut ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
            ids.sort();
            ids.dedup();
            let answer = (self.fetch)(ids).await;
            for (id, send) in batch {
                let own = match &answer {
                    Ok(found) => Ok(found.get(&id).cloned()),
                    Err(err) => Err(err.clone()),
                };
                // The asker may have stopped waiting; nothing to do then.
                let _ = send.send(own);
            }
        }
    }
}

/// Marks the queue as having no task when the task ends other than by running out of
/// work (a panic in a call, the runtime shutting down). The readers still queued then get
/// an error instead of waiting forever: their senders are dropped.
struct Restart<'a, T> {
    queue: &'a Mutex<Queue<T>>,
    armed: bool,
}

impl<T> Drop for Restart<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = lock(self.queue);
            queue.running = false;
            queue.waiting.clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes a region's [`Coalescer`].
type MakeCoalescer<T> = Box<dyn Fn(&str) -> Arc<Coalescer<T>> + Send + Sync>;

/// One [`Coalescer`] per region, made on first use.
pub struct PerRegion<T> {
    make: MakeCoalescer<T>,
    regions: Mutex<HashMap<String, Arc<Coalescer<T>>>>,
}

impl<T> PerRegion<T> {
    pub fn new(make: impl Fn(&str) -> Arc<Coalescer<T>> + Send + Sync + 'static) -> PerRegion<T> {
        PerRegion {
            make: Box::new(make),
            regions: Mutex::new(HashMap::new()),
        }
    }

    pub fn region(&self, region: &str) -> Arc<Coalescer<T>> {
        let mut regions = lock(&self.regions);
        regions
            .entry(region.to_string())
            .or_insert_with(|| (self.make)(region))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(calls: Arc<AtomicUsize>, sizes: Arc<Mutex<Vec<usize>>>) -> Fetch<String> {
        Arc::new(move |ids: Vec<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            lock(&sizes).push(ids.len());
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(ids
                    .into_iter()
                    .filter(|id| id != "gone")
                    .map(|id| (id.clone(), format!("found {id}")))
                    .collect())
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_share_one_call_and_each_gets_its_own_answer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let c = Coalescer::new(
            counting(calls.clone(), sizes.clone()),
            100,
            Duration::from_millis(10),
        );
        let ids = ["a", "b", "gone", "c"];
        let answers = futures::future::join_all(ids.iter().map(|id| {
            let c = c.clone();
            async move { c.get(id).await }
        }))
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let answers: Vec<Option<String>> = answers.into_iter().map(|a| a.unwrap()).collect();
        assert_eq!(
            answers,
            vec![
                Some("found a".into()),
                Some("found b".into()),
                None,
                Some("found c".into())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_never_carries_more_than_the_api_takes() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let c = Coalescer::new(
            counting(calls.clone(), sizes.clone()),
            2,
            Duration::from_millis(10),
        );
        let reads = (0..5).map(|i| {
            let c = c.clone();
            async move { c.get(&format!("id{i}")).await }
        });
        let answers = futures::future::join_all(reads).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));
        assert_eq!(*lock(&sizes), vec![2, 2, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_call_fails_every_read_in_it_and_the_next_read_calls_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let fetch: Fetch<String> = Arc::new(move |_ids| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match n {
                    0 => Err(ResourceError::other("throttled")),
                    _ => Ok(HashMap::from([("a".to_string(), "A".to_string())])),
                }
            })
        });
        let c = Coalescer::new(fetch, 10, Duration::from_millis(1));
        let (first, second) = tokio::join!(c.get("a"), c.get("a"));
        assert!(first.is_err() && second.is_err());
        assert_eq!(c.get("a").await.unwrap(), Some("A".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_panics_fails_its_readers_and_the_next_read_calls_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let fetch: Fetch<String> = Arc::new(move |_ids| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    panic!("a bug in a batched call");
                }
                Ok(HashMap::from([("a".to_string(), "A".to_string())]))
            })
        });
        let c = Coalescer::new(fetch, 10, Duration::from_millis(1));
        assert!(c.get("a").await.is_err());
        assert_eq!(c.get("a").await.unwrap(), Some("A".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_gives_up_does_not_strand_the_others() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let c = Coalescer::new(counting(calls, sizes), 10, Duration::from_millis(10));
        let quitter = c.clone();
        let gave_up =
            tokio::time::timeout(
                Duration::from_millis(1),
                async move { quitter.get("a").await },
            )
            .await;
        assert!(gave_up.is_err());
        assert_eq!(c.get("b").await.unwrap(), Some("found b".to_string()));
    }
}
