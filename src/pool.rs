//! A small per-thread pool of reusable things (the relay's and the TLS
//! engine's buffers, kernel pipes): taken while bytes are in flight, given
//! back when a direction has nothing more for now, so an idle connection
//! holds none and a busy thread does not allocate per burst. Beyond `max`
//! items they are freed.

use std::cell::RefCell;
use std::thread::LocalKey;

pub(crate) struct Pool<T> {
    items: RefCell<Vec<T>>,
    max: usize,
}

impl<T> Pool<T> {
    pub(crate) const fn new(max: usize) -> Pool<T> {
        Pool {
            items: RefCell::new(Vec::new()),
            max,
        }
    }

    /// The most recently given item, if any.
    pub(crate) fn take(&self) -> Option<T> {
        self.items.borrow_mut().pop()
    }

    /// Keeps `item` for reuse, or drops it when the pool is full.
    pub(crate) fn give(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() < self.max {
            items.push(item);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether every item kept satisfies `f`.
    #[cfg(test)]
    pub(crate) fn all(&self, f: impl Fn(&T) -> bool) -> bool {
        self.items.borrow().iter().all(f)
    }
}

/// A thread's pool, as `thread_local!` declares it.
pub(crate) type Local<T> = LocalKey<Pool<T>>;

/// Takes from this thread's `pool`.
pub(crate) fn take<T: 'static>(pool: &'static Local<T>) -> Option<T> {
    pool.with(Pool::take)
}

/// Gives `item` back to this thread's `pool`.
pub(crate) fn give<T: 'static>(pool: &'static Local<T>, item: T) {
    pool.with(|p| p.give(item));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_keeps_at_most_its_max_and_gives_back_the_last_first() {
        let p = Pool::new(2);
        for i in 0..3 {
            p.give(i);
        }
        assert_eq!(p.len(), 2);
        assert_eq!(p.take(), Some(1));
        assert_eq!(p.take(), Some(0));
        assert_eq!(p.take(), None);
    }
}
