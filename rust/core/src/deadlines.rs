//! The precise timer thread's queue of deadlines: what is due next, kept
//! dense because it holds one entry for every armed trigger of the process.
//!
//! A binary heap in one vector: 32 bytes an entry and no node overhead (an
//! ordered map's B-tree nodes are about half full when entries arrive in
//! deadline order, as a periodic schedule's do — twice the memory).
//! Cancelling does not search the heap: the entry's id is remembered and the
//! entry dropped when it comes to the top, or when the cancelled ones make up
//! half the queue, at which point the heap is rebuilt without them — so a
//! stopped runner's entries (and what they hold) are let go of soon, not at
//! their deadlines. Entries let go of are handed back to the caller, to be
//! dropped outside its lock: dropping one may run code that arms or cancels
//! a deadline in turn.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::num::NonZeroU64;

use fnv::FnvBuildHasher;

// The cancelled ids are hashed with FNV: they are counters, not input an
// attacker chooses, and a runner's stop cancels one per trigger.

/// Below this many cancelled entries, the queue is not rebuilt (they go
/// when due): rebuilding a small queue often would cost more than it frees.
const REBUILD_AFTER: usize = 64;

/// A queue of items due at deadlines (`i64` stamps: the caller's unit).
pub(crate) struct Deadlines<T> {
    heap: BinaryHeap<Entry<T>>,
    /// Ids cancelled and (perhaps) still in the heap. An id cancelled after
    /// its entry left the heap stays here until the next rebuild.
    cancelled: HashSet<NonZeroU64, FnvBuildHasher>,
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
            last_id: 0,
        }
    }

    /// Queue `item` at `at`; returns its id and whether it is now the
    /// earliest entry (the thread waiting for the earliest must look again).
    pub(crate) fn push(&mut self, at: i64, item: T) -> (NonZeroU64, bool) {
        self.last_id += 1;
        let id = NonZeroU64::new(self.last_id).expect("ids start at 1 and never wrap");
        let earliest = self.heap.peek().is_none_or(|first| at < first.at);
        self.heap.push(Entry { at, id, item });
        (id, earliest)
    }

    /// Drop the entry `id` (if it is still queued: one that was popped is
    /// not affected). Returns the items of the entries taken out of the
    /// queue now, if any, for the caller to drop.
    #[must_use = "drop the items outside any lock"]
    pub(crate) fn cancel(&mut self, id: NonZeroU64) -> Vec<T> {
        if id.get() > self.last_id || !self.cancelled.insert(id) {
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
            if !self.cancelled.remove(&entry.id) {
                return Some((entry.at, entry.item));
            }
            cancelled.push(entry.item);
        }
        None
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
        if self.heap.capacity() > 4 * self.heap.len() {
            self.heap.shrink_to(2 * self.heap.len());
        }
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
        // An id never handed out is ignored.
        let _ = queue.cancel(NonZeroU64::new(1_000).unwrap());
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
