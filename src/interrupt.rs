//! Ctrl-C (SIGINT) and SIGTERM while a command changes AWS. The command runs its work inside
//! [`until_interrupted`] and keeps a [`Phase`] up to date, so that when the signal comes it
//! knows what stopping means: before the stack changes, nothing to undo; with a change set
//! made and not executed, delete it; once CloudFormation executes, it goes on without us.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{signal, SignalKind};

/// The exit status after an interruption (128 + SIGINT, as shells report it).
pub const EXIT_STATUS: u8 = 130;

/// Where a command that changes the stack is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Building, smoke-testing, pushing: nothing in the stack has changed.
    #[default]
    Preparing,
    /// A change set is being made or waits for its "yes"; a create made the stack in
    /// REVIEW_IN_PROGRESS to hold it.
    ChangeSet { name: String, creates_stack: bool },
    /// CloudFormation is applying (or deleting) the stack.
    Applying,
}

/// The phase, shared between the work and whoever handles the interruption.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<Mutex<Phase>>);

impl Tracker {
    pub fn set(&self, phase: Phase) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    pub fn get(&self) -> Phase {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs synchronous work (tar, gzip, digests, reading a model or a binary) on the runtime's
/// blocking threads. Done inline, it would hold the task that [`until_interrupted`] races
/// against the signals, and a Ctrl-C would wait for it to finish; here the signal wins at once
/// and the work is abandoned (`main` does not wait for it).
pub async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(anyhow::anyhow!("blocking work was cancelled: {error}")),
    }
}

/// Runs `work` to its end, or until SIGINT, SIGTERM or SIGHUP (the terminal closed) arrives
/// (`None` then; `work` is dropped where it was, which stops the processes it started). Without a way to listen for signals, `work` simply runs.
pub async fn until_interrupted<T>(work: impl Future<Output = T>) -> Option<T> {
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return Some(work.await);
    };
    tokio::select! {
        value = work => Some(value),
        _ = interrupt.recv() => None,
        _ = terminate.recv() => None,
        _ = hangup.recv() => None,
    }
}
