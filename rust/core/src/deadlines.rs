//! The precise timer thread's queue of deadlines: what is due next, kept
//! dense because it holds one entry for every armed trigger of the process.
//!
//! A binary heap in one vector: 32 bytes an entry and no node overhead (an
//! ordered map's B-tree nodes are about half full when entries arrive in
//! deadline order, as a periodic schedule's do — twice the memory).
//! Cancelling does not search the heap: the entry's id is remembered and the
//! entry dropped when it comes to the top, or in a rebuild of the heap once
//! the ids remembered are at least half as many as the entries queued (and
//! at least [`REBUILD_AFTER`]) — so the entries of a stopped runner are let
//! go of soon, mostly not at their deadlines. Entries let go of are handed
//! back to the caller, to be dropped outside its lock (a precaution: an item
//! may own anything).
//!
//! Ids come from one counter for the whole process, which a child made by
//! `fork()` inherits already advanced: a key the parent handed out never
//! names an entry of the child's own queue (an inherited runner dropped in
//! the child cancels its keys there).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use fnv::FnvBuildHasher;

// The cancelled ids are hashed with FNV: they are counters, not input an
// attacker chooses, and a runner's stop cancels one per trigger.

/// Below this many cancelled entries, the queue is not rebuilt (they go
/// when due): rebuilding a small queue often would cost more than it frees.
const REBUILD_AFTER: usize = 64;

/// The next id of any queue of this process (see the module docs).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A queue of items due at deadlines (`i64` stamps: the caller's unit).
pub(crate) struct Deadlines<T> {
    heap: BinaryHeap<Entry<T>>,
    /// Ids cancelled and (perhaps) still in the heap. An id cancelled after
    /// its entry left the heap stays here until the next rebuild.
    cancelled: HashSet<NonZeroU64, FnvBuildHasher>,
    /// The ids this queue handed out are in `first_id..=last_id` (not all
    /// of them: other queues draw from the same counter).
    first_id: u64,
    last_id: u64,
}

struct Entry<T> {
    at: i64,
    /// Registration order: ties at one deadline pop first come, first served.
    id: NonZeroU64,
    item: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (i64, NonZeroU64) {
        (self.at, self.id)
    }
}

// `BinaryHeap` pops its greatest element: the earliest deadline is greatest.
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for Entry<T> {}

impl<T> Deadlines<T> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            cancelled: HashSet::default(),
            first_id: NEXT_ID.load(AtomicOrdering::Relaxed),
            last_id: 0,
        }
    }

    /// Queue `item` at `at`; returns its id and whether it is now the
    /// earliest entry (the thread waiting for the earliest must look again).
    pub(crate) fn push(&mut self, at: i64, item: T) -> (NonZeroU64, bool) {
        // Increasing within one queue too: pushes are serialised by its owner.
        let next = NEXT_ID.fetch_add(1, AtomicOrdering::Relaxed);
        self.last_id = next;
        let id = NonZeroU64::new(next).expect("ids start at 1 and never wrap");
        let earliest = self.heap.peek().is_none_or(|first| at < first.at);
        self.heap.push(Entry { at, id, item });
        (id, earliest)
    }

    /// Drop the entry `id` (if it is still queued: one that was popped is
    /// not affected). Returns the items of the entries taken out of the
    /// queue now, if any, for the caller to drop.
    #[must_use = "drop the items outside any lock"]
    pub(crate) fn cancel(&mut self, id: NonZeroU64) -> Vec<T> {
        let ours = (self.first_id..=self.last_id).contains(&id.get());
        if !ours || !self.cancelled.insert(id) {
            return Vec::new();
        }
        if self.cancelled.len() >= REBUILD_AFTER && self.cancelled.len() * 2 >= self.heap.len() {
            self.rebuild()
        } else {
            Vec::new()
        }
    }

    /// The earliest deadline still queued (a cancelled entry's included: it
    /// is dropped when it is popped).
    pub(crate) fn next_at(&self) -> Option<i64> {
        self.heap.peek().map(|first| first.at)
    }

    /// The earliest entry, if due by `now` and not cancelled: its deadline
    /// and item. The items of cancelled entries met on the way are pushed on
    /// `cancelled`, for the caller to drop.
    pub(crate) fn pop_due(&mut self, now: i64, cancelled: &mut Vec<T>) -> Option<(i64, T)> {
        while self.heap.peek().is_some_and(|first| first.at <= now) {
            let entry = self.heap.pop().expect("peeked");
            self.give_back_room();
            if !self.cancelled.remove(&entry.id) {
                return Some((entry.at, entry.item));
            }
            cancelled.push(entry.item);
        }
        None
    }

    /// A queue that shrank to a quarter of its room gives half of it back
    /// (amortised: the room is then twice what is queued).
    fn give_back_room(&mut self) {
        const SMALL: usize = 1024;
        if self.heap.capacity() > SMALL && self.heap.capacity() > 4 * self.heap.len() {
            self.heap.shrink_to(2 * self.heap.len());
        }
    }

    /// The number of entries queued, cancelled ones included.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.heap.len()
    }

    /// Take every cancelled entry out at once (linear time) and return their
    /// items; forget the ids of entries cancelled after they were popped.
    /// Memory the queue no longer needs is given back.
    fn rebuild(&mut self) -> Vec<T> {
        let cancelled = std::mem::take(&mut self.cancelled);
        let (entries, taken): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .partition(|entry| !cancelled.contains(&entry.id));
        self.heap = BinaryHeap::from(entries);
        self.give_back_room();
        taken.into_iter().map(|entry| entry.item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut Deadlines<&'static str>, now: i64) -> Vec<(i64, &'static str)> {
        let mut cancelled = Vec::new();
        std::iter::from_fn(|| queue.pop_due(now, &mut cancelled)).collect()
    }

    #[test]
    fn pops_in_deadline_order_then_registration_order() {
        let mut queue = Deadlines::new();
        queue.push(30, "c");
        queue.push(10, "a1");
        queue.push(20, "b");
        queue.push(10, "a2");
        assert_eq!(queue.next_at(), Some(10));
        assert_eq!(drain(&mut queue, 20), [(10, "a1"), (10, "a2"), (20, "b")]);
        assert_eq!(queue.next_at(), Some(30));
        assert_eq!(drain(&mut queue, 29), []);
        assert_eq!(drain(&mut queue, 30), [(30, "c")]);
        assert_eq!(queue.next_at(), None);
    }

    #[test]
    fn tells_when_an_entry_is_the_new_earliest() {
        let mut queue = Deadlines::new();
        assert!(queue.push(20, "first").1);
        assert!(!queue.push(30, "later").1);
        assert!(!queue.push(20, "same deadline").1);
        assert!(queue.push(10, "sooner").1);
    }

    #[test]
    fn a_cancelled_entry_never_pops() {
        let mut queue = Deadlines::new();
        let (a, _) = queue.push(10, "a");
        queue.push(20, "b");
        assert!(queue.cancel(a).is_empty(), "let go of when popped");
        let mut cancelled = Vec::new();
        assert_eq!(queue.pop_due(100, &mut cancelled), Some((20, "b")));
        assert_eq!(cancelled, ["a"]);
    }

    #[test]
    fn cancelling_a_popped_entry_changes_nothing_queued() {
        let mut queue = Deadlines::new();
        let (a, _) = queue.push(10, "a");
        assert_eq!(drain(&mut queue, 10), [(10, "a")]);
        let (b, _) = queue.push(20, "b");
        let _ = queue.cancel(a);
        let _ = queue.cancel(a);
        assert_eq!(drain(&mut queue, 20), [(20, "b")]);
        let _ = queue.cancel(b);
        // An id this queue never handed out is ignored.
        let _ = queue.cancel(NonZeroU64::new(u64::MAX - 1).unwrap());
        assert!(queue.cancelled.len() <= 2);
    }

    #[test]
    fn cancelling_most_entries_rebuilds_and_shrinks_the_queue() {
        let mut queue = Deadlines::new();
        let ids: Vec<_> = (0..10_000).map(|k| queue.push(k, "x").0).collect();
        let mut let_go = 0;
        for id in &ids[..9_000] {
            let_go += queue.cancel(*id).len();
        }
        assert!(
            let_go > 8_000,
            "{let_go} entries let go of before their deadlines"
        );
        // Rebuilt whenever half were cancelled: never more than half stay.
        assert!(
            queue.queued() < 2 * 1_000 + REBUILD_AFTER,
            "{}",
            queue.queued()
        );
        assert!(queue.heap.capacity() < 10_000);
        let left = drain(&mut queue, i64::MAX);
        assert_eq!(left.len(), 1_000);
        assert_eq!(left.first().map(|entry| entry.0), Some(9_000));
        assert!(queue.cancelled.is_empty());
    }

    #[test]
    fn a_key_of_another_queue_cancels_nothing() {
        let mut parent = Deadlines::new();
        let (old, _) = parent.push(10, "parent's");
        // As in a forked child: a new queue, the counter inherited as it was.
        let mut child = Deadlines::new();
        let (mine, _) = child.push(10, "child's");
        assert_ne!(old, mine);
        assert!(child.cancel(old).is_empty());
        assert_eq!(drain(&mut child, 10), [(10, "child's")]);
        assert!(child.cancelled.is_empty());
    }

    #[test]
    fn a_queue_drained_by_its_deadlines_gives_its_room_back() {
        let mut queue = Deadlines::new();
        for k in 0..100_000 {
            queue.push(k, "x");
        }
        assert_eq!(drain(&mut queue, 99_990).len(), 99_991);
        assert!(queue.heap.capacity() <= 2_048, "{}", queue.heap.capacity());
        assert_eq!(drain(&mut queue, i64::MAX).len(), 9);
    }

    #[test]
    fn stale_cancelled_ids_are_forgotten_by_a_rebuild() {
        let mut queue = Deadlines::new();
        let popped: Vec<_> = (0..REBUILD_AFTER as i64)
            .map(|k| queue.push(k, "old").0)
            .collect();
        assert_eq!(drain(&mut queue, i64::MAX).len(), REBUILD_AFTER);
        queue.push(1_000, "live");
        for id in popped {
            assert!(queue.cancel(id).is_empty());
        }
        assert!(
            queue.cancelled.is_empty(),
            "the rebuild dropped the stale ids"
        );
        assert_eq!(drain(&mut queue, i64::MAX), [(1_000, "live")]);
    }
}
