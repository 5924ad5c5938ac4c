//! Polling and retrying until AWS says a resource is ready, gone or free, within a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use plinth_core::resource::{ErrorKind, OpContext, ResourceError, ResourceResult};

/// Polls start fast (emulators and quick operations answer at once) and back off to this.
const MAX_POLL: Duration = Duration::from_secs(10);
const FIRST_POLL: Duration = Duration::from_millis(100);

/// How long a resource just created may stay invisible to reads: AWS's reads are eventually
/// consistent (Terraform's AWS provider allows two minutes too).
pub const VISIBLE_LIMIT: Duration = Duration::from_secs(120);

/// What a poll right after a create makes of finding nothing: "not visible yet" while the
/// wait that began at `since` is younger than [`VISIBLE_LIMIT`], then `gone()`.
pub fn not_visible_yet<T>(
    since: Instant,
    gone: impl FnOnce() -> ResourceError,
) -> ResourceResult<Poll<T>> {
    if since.elapsed() < VISIBLE_LIMIT {
        Ok(Poll::Pending("not visible yet".into()))
    } else {
        Err(gone())
    }
}

/// What one poll found.
pub enum Poll<T> {
    Ready(T),
    /// Not yet; the string says what it is doing now ("CREATING").
    Pending(String),
}

/// Calls `poll` until it is ready, reporting progress, or fails with a timeout after
/// `default_limit` (or the stack's `lifecycle.timeouts`). A poll that fails with a transient
/// error (throttled still after the SDK's retries) is a poll that saw nothing new: a wait of
/// minutes does not end because one status read was refused.
pub async fn until<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default_limit: Duration,
    mut poll: F,
) -> ResourceResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<Poll<T>>>,
{
    let started = Instant::now();
    let deadline = ctx.deadline_or(default_limit);
    let mut delay = FIRST_POLL;
    loop {
        match poll().await {
            Ok(Poll::Ready(value)) => return Ok(value),
            Ok(Poll::Pending(status)) => {
                if Instant::now() >= deadline {
                    return Err(ResourceError::timeout(started.elapsed(), what));
                }
                ctx.progress
                    .status(&format!("waiting for {what} ({status})"));
            }
            Err(err) if err.kind == ErrorKind::Retryable && Instant::now() < deadline => {
                ctx.progress.status(&format!(
                    "waiting for {what} ({} — retrying)",
                    err.code.as_deref().unwrap_or("no answer")
                ));
            }
            Err(err) => return Err(err),
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(MAX_POLL);
    }
}

/// Runs `op` again while it fails with an error of kind `InUse` or `Retryable` (a table still
/// being created, a group still referenced), backing off, until the deadline.
pub async fn retry_while_busy<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default_limit: Duration,
    mut op: F,
) -> ResourceResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<T>>,
{
    let started = Instant::now();
    let deadline = ctx.deadline_or(default_limit);
    let mut delay = FIRST_POLL * 5;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if matches!(err.kind, ErrorKind::InUse | ErrorKind::Retryable) => {
                if Instant::now() >= deadline {
                    return Err(ResourceError {
                        message: format!(
                            "{} (still failing after {}s of retries while {what})",
                            err.message,
                            started.elapsed().as_secs()
                        ),
                        ..err
                    });
                }
                ctx.progress.status(&format!(
                    "{what}: {} — retrying",
                    err.code.as_deref().unwrap_or("busy")
                ));
                tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                delay = (delay * 2).min(MAX_POLL);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Under `destroy --no-wait`: how long a delete is retried while the thing is still in use
/// before it is left pending for the next run.
pub const NO_WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Runs a delete `attempt` again while AWS says the thing is still in use (held by
/// something it is still deleting: a cache cluster's network interfaces hold its security
/// group for minutes). Under `destroy --no-wait` a thing still in use after a short while is
/// recorded as pending deletion instead (the next run deletes it); otherwise the InUse
/// error comes back after `limit`.
pub async fn delete_when_free<F, Fut>(
    ctx: &OpContext,
    what: &str,
    limit: Duration,
    attempt: F,
) -> ResourceResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<()>>,
{
    let limit = if ctx.wait_for_deletion {
        limit
    } else {
        NO_WAIT_LIMIT
    };
    match retry_while_busy(ctx, what, limit, attempt).await {
        Err(err) if !ctx.wait_for_deletion && err.kind == ErrorKind::InUse => {
            ctx.deletion_pending(format!(
                "still in use ({}); the next run deletes it once what uses it is gone",
                err.message
            ));
            Ok(())
        }
        other => other,
    }
}

/// The rest of a deletion AWS carries out in the background, once it has accepted it: wait
/// (with progress) until `status` finds nothing left, or, under `destroy --no-wait`, record
/// it as pending deletion with `reason`. `status` answers what AWS says the thing is doing,
/// or `None` once it is gone.
pub async fn until_deleted<F, Fut>(
    ctx: &OpContext,
    what: &str,
    reason: &str,
    limit: Duration,
    mut status: F,
) -> ResourceResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<Option<String>>>,
{
    if !ctx.wait_for_deletion {
        ctx.deletion_pending(reason);
        return Ok(());
    }
    until(ctx, what, limit, || {
        let current = status();
        async move {
            Ok(match current.await? {
                None => Poll::Ready(()),
                Some(doing) => Poll::Pending(doing),
            })
        }
    })
    .await
}
