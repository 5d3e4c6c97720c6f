//! Watching a path for changes, with OS-level events (the `notify` crate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use crate::source::{Event, EventSource};
use crate::{Error, LOG_TARGET, Result};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change to one path (absolute).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileChange {
    pub kind: FileChangeKind,
    pub path: PathBuf,
}

/// Watches a file or directory and reports debounced batches of changes.
///
/// Events are batched over the debounce window that the first of them opens:
/// one batch per window, in arrival order, identical changes reported once. A
/// path that does not exist yet is watched for its appearance (reported as
/// `Added`), through its nearest existing ancestor; a watched path that is
/// deleted is watched for its return the same way. The OS watch is released
/// when the watcher is dropped.
pub struct FileWatcher {
    target: PathBuf,
    recursive: bool,
    debounce: Duration,
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    /// The path the OS watch is on: the target, or an ancestor waiting for it.
    watched: PathBuf,
    /// A batch being collected (kept across a cancelled wait).
    batch: Vec<FileChange>,
    window_end: Option<Instant>,
}

impl FileWatcher {
    /// Watch `path` (and, if `recursive`, everything below it).
    pub fn new(path: &Path, recursive: bool, debounce: Duration) -> Result<Self> {
        let target = std::path::absolute(path)
            .map_err(|e| Error::InvalidArgument(format!("cannot watch {path:?}: {e}")))?;
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only once the watcher is being dropped.
            let _ = tx.send(event);
        })
        .map_err(|e| Error::other(format!("cannot start a file watcher: {e}")))?;
        let mut this = Self {
            watched: target.clone(),
            target,
            recursive,
            debounce,
            watcher,
            events,
            batch: Vec::new(),
            window_end: None,
        };
        this.rewatch()?;
        Ok(this)
    }

    /// Put the OS watch on the target if it exists, else on its nearest
    /// existing ancestor. Returns whether the target is now watched itself.
    fn rewatch(&mut self) -> Result<bool> {
        let (path, mode) = if self.target.exists() {
            let mode = if self.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            (self.target.clone(), mode)
        } else {
            let ancestor = self
                .target
                .ancestors()
                .skip(1)
                .find(|p| p.exists())
                .unwrap_or(Path::new("/"))
                .to_path_buf();
            (ancestor, RecursiveMode::NonRecursive)
        };
        if path != self.watched || self.watched == self.target {
            let _ = self.watcher.unwatch(&self.watched);
        }
        self.watcher
            .watch(&path, mode)
            .map_err(|e| Error::other(format!("cannot watch {path:?}: {e}")))?;
        let on_target = path == self.target;
        self.watched = path;
        Ok(on_target)
    }

    fn watching_target(&self) -> bool {
        self.watched == self.target
    }

    /// Turn one OS event into changes of the target, appended to the batch.
    fn collect(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(target: LOG_TARGET, "file watcher error on {:?}: {e}", self.target);
                return;
            }
        };
        let mut changes: Vec<(FileChangeKind, PathBuf)> = Vec::new();
        match event.kind {
            EventKind::Access(_) => {}
            EventKind::Create(_) => {
                changes.extend(event.paths.into_iter().map(|p| (FileChangeKind::Added, p)));
            }
            EventKind::Remove(_) => {
                changes.extend(
                    event
                        .paths
                        .into_iter()
                        .map(|p| (FileChangeKind::Deleted, p)),
                );
            }
            EventKind::Modify(ModifyKind::Name(mode)) => {
                let mut paths = event.paths.into_iter();
                match mode {
                    RenameMode::From => {
                        changes.extend(paths.map(|p| (FileChangeKind::Deleted, p)));
                    }
                    RenameMode::To => changes.extend(paths.map(|p| (FileChangeKind::Added, p))),
                    RenameMode::Both => {
                        changes.extend(paths.next().map(|p| (FileChangeKind::Deleted, p)));
                        changes.extend(paths.next().map(|p| (FileChangeKind::Added, p)));
                    }
                    _ => changes.extend(paths.map(|p| {
                        let kind = if p.exists() {
                            FileChangeKind::Added
                        } else {
                            FileChangeKind::Deleted
                        };
                        (kind, p)
                    })),
                }
            }
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => {
                changes.extend(
                    event
                        .paths
                        .into_iter()
                        .map(|p| (FileChangeKind::Modified, p)),
                );
            }
        }
        for (kind, path) in changes {
            let relevant = path.starts_with(&self.target)
                && (self.recursive || path.parent() == Some(&self.target) || path == self.target);
            let change = FileChange { kind, path };
            if relevant && !self.batch.contains(&change) {
                self.batch.push(change);
            }
        }
    }

    /// While waiting for the target, follow it: once it (or a nearer ancestor)
    /// exists, move the watch; the target's own appearance is a change.
    fn follow_target(&mut self) {
        let appeared = !self.watching_target() && self.target.exists();
        let vanished = self.watching_target() && !self.target.exists();
        let nearer = !self.watching_target()
            && self
                .target
                .ancestors()
                .skip(1)
                .take_while(|p| *p != self.watched)
                .any(|p| p.exists());
        if appeared || vanished || nearer {
            match self.rewatch() {
                Ok(true) if appeared => {
                    let change = FileChange {
                        kind: FileChangeKind::Added,
                        path: self.target.clone(),
                    };
                    if !self.batch.contains(&change) {
                        self.batch.push(change);
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(target: LOG_TARGET, "{e}"),
            }
        }
    }
}

#[async_trait]
impl EventSource for FileWatcher {
    async fn next(&mut self) -> Option<Event> {
        loop {
            let received = match self.window_end {
                None => self.events.recv().await,
                Some(end) => match tokio::time::timeout_at(end, self.events.recv()).await {
                    Ok(received) => received,
                    Err(_) => {
                        self.window_end = None;
                        if self.batch.is_empty() {
                            continue;
                        }
                        return Some(Event::Changes(std::mem::take(&mut self.batch)));
                    }
                },
            };
            // The sender lives in the watcher we own: it cannot be closed.
            let event = received?;
            self.collect(event);
            self.follow_target();
            if self.window_end.is_none() && !self.batch.is_empty() {
                self.window_end = Some(Instant::now() + self.debounce);
            }
        }
    }
}
