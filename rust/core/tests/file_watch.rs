//! `FileWatcher` on real files in temporary directories (real time, bounded waits).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_triggers_core::{Event, EventSource, FileChange, FileChangeKind, FileWatcher};

const DEBOUNCE: Duration = Duration::from_millis(50);

async fn next_batch(watcher: &mut FileWatcher) -> Vec<FileChange> {
    match tokio::time::timeout(Duration::from_secs(10), watcher.next()).await {
        Ok(Some(Event::Changes(changes))) => changes,
        other => panic!("expected a batch of changes, got {other:?}"),
    }
}

/// Collect batches until `done` holds for everything seen (bounded).
async fn batches_until(
    watcher: &mut FileWatcher,
    mut done: impl FnMut(&[FileChange]) -> bool,
) -> (Vec<FileChange>, usize) {
    let mut seen = Vec::new();
    let mut batches = 0;
    while !done(&seen) {
        seen.extend(next_batch(watcher).await);
        batches += 1;
    }
    (seen, batches)
}

fn has(changes: &[FileChange], kind: FileChangeKind, path: &Path) -> bool {
    changes.iter().any(|c| c.kind == kind && c.path == path)
}

#[tokio::test]
async fn create_modify_delete_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = FileWatcher::new(dir.path(), true, DEBOUNCE).unwrap();
    let file = dir.path().join("notes.txt");

    std::fs::write(&file, "one").unwrap();
    let (seen, _) = batches_until(&mut watcher, |s| has(s, FileChangeKind::Added, &file)).await;
    assert!(seen.iter().all(|c| c.path == file), "{seen:?}");

    tokio::time::sleep(DEBOUNCE * 2).await;
    std::fs::write(&file, "two").unwrap();
    batches_until(&mut watcher, |s| has(s, FileChangeKind::Modified, &file)).await;

    std::fs::remove_file(&file).unwrap();
    batches_until(&mut watcher, |s| has(s, FileChangeKind::Deleted, &file)).await;
}

#[tokio::test]
async fn rename_is_a_delete_and_an_add() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.txt");
    let new = dir.path().join("new.txt");
    std::fs::write(&old, "x").unwrap();
    let mut watcher = FileWatcher::new(dir.path(), true, DEBOUNCE).unwrap();
    std::fs::rename(&old, &new).unwrap();
    let (seen, _) = batches_until(&mut watcher, |s| {
        has(s, FileChangeKind::Deleted, &old) && has(s, FileChangeKind::Added, &new)
    })
    .await;
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn nested_directories_are_watched_only_when_recursive() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a").join("b");
    std::fs::create_dir_all(&sub).unwrap();
    let deep = sub.join("deep.txt");
    let top = dir.path().join("top.txt");

    let mut recursive = FileWatcher::new(dir.path(), true, DEBOUNCE).unwrap();
    let mut flat = FileWatcher::new(dir.path(), false, DEBOUNCE).unwrap();
    std::fs::write(&deep, "x").unwrap();
    std::fs::write(&top, "x").unwrap();
    batches_until(&mut recursive, |s| {
        has(s, FileChangeKind::Added, &deep) && has(s, FileChangeKind::Added, &top)
    })
    .await;
    let (seen, _) = batches_until(&mut flat, |s| has(s, FileChangeKind::Added, &top)).await;
    assert!(!seen.iter().any(|c| c.path == deep), "{seen:?}");
}

#[tokio::test]
async fn a_path_created_after_start_is_reported_and_then_watched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("later").join("inbox");
    let mut watcher = FileWatcher::new(&target, true, DEBOUNCE).unwrap();

    std::fs::create_dir_all(&target).unwrap();
    batches_until(&mut watcher, |s| has(s, FileChangeKind::Added, &target)).await;

    let mail = target.join("mail.eml");
    std::fs::write(&mail, "hello").unwrap();
    batches_until(&mut watcher, |s| has(s, FileChangeKind::Added, &mail)).await;
}

#[tokio::test]
async fn a_burst_of_writes_is_coalesced_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = FileWatcher::new(dir.path(), true, Duration::from_millis(200)).unwrap();
    let paths: Vec<PathBuf> = (0..1000)
        .map(|i| dir.path().join(format!("f{i}.txt")))
        .collect();
    for path in &paths {
        std::fs::write(path, "x").unwrap();
    }
    let wanted: HashSet<&PathBuf> = paths.iter().collect();
    let (seen, batches) = batches_until(&mut watcher, |s| {
        let added: HashSet<&PathBuf> = s
            .iter()
            .filter(|c| c.kind == FileChangeKind::Added)
            .map(|c| &c.path)
            .collect();
        wanted.is_subset(&added)
    })
    .await;
    assert!(batches <= 20, "1000 writes came in {batches} batches");
    assert!(
        seen.iter().all(|c| wanted.contains(&c.path)),
        "only the files written"
    );
}

#[tokio::test]
async fn a_single_file_stays_watched_across_a_save_that_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.toml");
    let other = dir.path().join("other.txt");
    std::fs::write(&file, "v1").unwrap();
    let mut watcher = FileWatcher::new(&file, true, DEBOUNCE).unwrap();

    // What editors do: write a temporary file, rename it over the original.
    let temp = dir.path().join(".settings.toml.tmp");
    std::fs::write(&temp, "v2").unwrap();
    std::fs::rename(&temp, &file).unwrap();
    std::fs::write(&other, "not watched").unwrap();
    let (seen, _) = batches_until(&mut watcher, |s| s.iter().any(|c| c.path == file)).await;
    assert!(
        seen.iter().all(|c| c.path == file),
        "only the watched file: {seen:?}"
    );
    assert_ne!(
        seen.last().unwrap().kind,
        FileChangeKind::Deleted,
        "{seen:?}"
    );

    tokio::time::sleep(DEBOUNCE * 2).await;
    std::fs::write(&file, "v3").unwrap();
    batches_until(&mut watcher, |s| has(s, FileChangeKind::Modified, &file)).await;
}

#[tokio::test]
async fn the_last_change_of_a_path_in_a_batch_is_its_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g");
    let mut watcher = FileWatcher::new(dir.path(), true, Duration::from_millis(300)).unwrap();
    std::fs::write(&file, "1").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "2").unwrap();
    let (seen, _) = batches_until(&mut watcher, |s| {
        s.iter()
            .filter(|c| c.kind == FileChangeKind::Deleted)
            .count()
            == 1
            && s.last().is_some_and(|c| c.kind != FileChangeKind::Deleted)
    })
    .await;
    assert_eq!(
        seen.first().map(|c| c.kind),
        Some(FileChangeKind::Added),
        "{seen:?}"
    );
}

#[tokio::test]
async fn what_a_new_directory_already_holds_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = FileWatcher::new(dir.path(), true, DEBOUNCE).unwrap();
    let deep = dir.path().join("x").join("y").join("z");
    std::fs::create_dir_all(&deep).unwrap();
    let file = deep.join("f.txt");
    std::fs::write(&file, "x").unwrap();
    batches_until(&mut watcher, |s| {
        has(s, FileChangeKind::Added, &deep) && has(s, FileChangeKind::Added, &file)
    })
    .await;
}
