//! Watching a path for changes, with OS-level events (the `notify` crate).

use std::collections::HashMap;
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
/// one batch per window, in arrival order. A change that repeats the latest
/// change of its path is listed once, so the last change of each path in a
/// batch is its final state. A directory that appears below a recursively
/// watched one is walked, so what it already holds is reported too. A single
/// file is watched through its directory, so a save that replaces it (write a
/// temporary file, rename it over) keeps being seen. A path that does not
/// exist yet is watched, through its nearest existing ancestor, for its
/// appearance (reported as `Added`); one that is deleted is watched for its
/// return. The OS watch is released when the watcher is dropped.
pub struct FileWatcher {
    target: PathBuf,
    recursive: bool,
    debounce: Duration,
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    /// Where the OS watch is now.
    watched: Option<(PathBuf, RecursiveMode)>,
    target_exists: bool,
    /// A batch being collected (kept across a cancelled wait), with the latest
    /// kind of each path in it.
    batch: Vec<FileChange>,
    latest: HashMap<PathBuf, FileChangeKind>,
    window_end: Option<Instant>,
}

impl FileWatcher {
    /// Watch `path` (and, if `recursive`, everything below it).
    pub fn new(path: &Path, recursive: bool, debounce: Duration) -> Result<Self> {
        let target = resolve(path)
            .map_err(|e| Error::InvalidArgument(format!("cannot watch {path:?}: {e}")))?;
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only once the watcher is being dropped.
            let _ = tx.send(event);
        })
        .map_err(|e| Error::other(format!("cannot start a file watcher: {e}")))?;
        let mut this = Self {
            target_exists: target.exists(),
            target,
            recursive,
            debounce,
            watcher,
            events,
            watched: None,
            batch: Vec::new(),
            latest: HashMap::new(),
            window_end: None,
        };
        this.rewatch()?;
        Ok(this)
    }

    /// Where the OS watch belongs: a directory target itself; a file target's
    /// directory; a missing target's nearest existing ancestor.
    fn watch_point(&self) -> (PathBuf, RecursiveMode) {
        if self.target.is_dir() {
            let mode = if self.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            return (self.target.clone(), mode);
        }
        let holder = self
            .target
            .ancestors()
            .skip(1)
            .find(|p| p.is_dir())
            .unwrap_or(Path::new("/"));
        (holder.to_path_buf(), RecursiveMode::NonRecursive)
    }

    /// Move the OS watch to where it belongs, if it is not there already;
    /// whether it moved.
    fn rewatch(&mut self) -> Result<bool> {
        let point = self.watch_point();
        if self.watched.as_ref() == Some(&point) {
            return Ok(false);
        }
        if let Some((old, _)) = self.watched.take() {
            // It may be gone already, with the directory it was on.
            let _ = self.watcher.unwatch(&old);
        }
        self.watcher
            .watch(&point.0, point.1)
            .map_err(|e| Error::other(format!("cannot watch {:?}: {e}", point.0)))?;
        self.watched = Some(point);
        Ok(true)
    }

    fn is_relevant(&self, path: &Path) -> bool {
        path.starts_with(&self.target)
            && (self.recursive || path == self.target || path.parent() == Some(&self.target))
    }

    /// Add a change to the batch unless it repeats the path's latest change.
    fn push(&mut self, kind: FileChangeKind, path: PathBuf) {
        if !self.is_relevant(&path) || self.latest.get(&path) == Some(&kind) {
            return;
        }
        self.latest.insert(path.clone(), kind);
        self.batch.push(FileChange { kind, path });
    }

    /// Report what a directory that just appeared already holds: entries made
    /// before the OS watch reached it produce no events of their own.
    fn push_contents(&mut self, dir: &Path) {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(path.clone());
                }
                self.push(FileChangeKind::Added, path);
            }
        }
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
            let new_dir = kind == FileChangeKind::Added && self.recursive && path.is_dir();
            self.push(kind, path.clone());
            if new_dir && path.starts_with(&self.target) {
                self.push_contents(&path);
            }
        }
    }

    /// Follow the target: move the OS watch when the target (or a nearer
    /// ancestor) appears or goes away, and report the target's appearance.
    ///
    /// Looks again after each move: what appeared before the watch got to its
    /// new place made no event (`mkdir -p a/b` makes `b` while the watch is
    /// still moving to `a`). The target's contents are read once the watch is
    /// on it, so nothing made meanwhile is missed.
    fn follow_target(&mut self) {
        loop {
            let moved = match self.rewatch() {
                Ok(moved) => moved,
                Err(e) => {
                    warn!(target: LOG_TARGET, "{e}");
                    false
                }
            };
            let exists = self.target.exists();
            if exists && !self.target_exists {
                self.push(FileChangeKind::Added, self.target.clone());
                if self.recursive && self.target.is_dir() {
                    let target = self.target.clone();
                    self.push_contents(&target);
                }
            }
            self.target_exists = exists;
            if !moved {
                return;
            }
        }
    }
}

/// `path` made absolute, with the symlinks of its longest existing prefix
/// resolved: OS watchers report real paths (macOS's do), and matching events
/// against the target needs the same spelling.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Ok(rest.iter().rev().fold(real, |p, part| p.join(part)));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(absolute),
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
                        self.latest.clear();
                        return Some(Event::Changes(std::mem::take(&mut self.batch)));
                    }
                },
            };
            // The sender lives in the watcher we own: it cannot be closed.
            let event = received?;
            self.collect(event);
            self.follow_target();
            // The window opens with the first change (the batch is never empty
            // once it is open).
            if self.window_end.is_none() && !self.batch.is_empty() {
                self.window_end = Some(Instant::now() + self.debounce);
            }
        }
    }
}
