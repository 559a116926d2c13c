//! The admin endpoint's connections: every client is accepted at once and
//! none waits in the kernel's queue; the limits (a cap per client address
//! and one in all) are kept by closing the oldest connection that is not
//! being answered — one idle in keep-alive or still sending its request —
//! never by refusing the newcomer. A flood of slow or idle connections
//! therefore only closes its own older connections, and a health check
//! (one short request on a new connection, answered at once) always gets a
//! slot (issue 25: 32 slots taken by slow clients starved `/healthz`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Connections from one client address at once.
pub const PER_CLIENT: usize = 64;
/// Connections in all.
pub const TOTAL: usize = 256;

/// The connections open now, oldest first.
#[derive(Debug, Default)]
pub struct Slots {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    busy: Arc<AtomicBool>,
    evict: CancellationToken,
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    slots: Arc<Slots>,
    busy: Arc<AtomicBool>,
    /// Cancelled when a newer connection takes this one's place.
    pub evicted: CancellationToken,
}

/// Marks its connection as being answered while it lives.
pub struct Busy(Arc<AtomicBool>);

/// Where a connection's service says it is answering a request.
#[derive(Debug, Clone, Default)]
pub struct Marker(Arc<AtomicBool>);

impl Marker {
    /// The connection is answering a request: not to be closed for a
    /// newcomer until the returned guard drops.
    pub fn busy(&self) -> Busy {
        self.0.store(true, Ordering::Release);
        Busy(self.0.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Slot {
    /// Its connection's marker.
    pub fn marker(&self) -> Marker {
        Marker(self.busy.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().open.remove(&self.id);
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`, first closing the oldest idle one of
    /// the same client if that client is at [`PER_CLIENT`], and the oldest
    /// idle one of anybody's if all are at [`TOTAL`]. `None` only when
    /// every slot it could free is answering a request at this instant.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut g = self.lock();
        let same = g.open.values().filter(|e| e.ip == ip).count();
        if same >= PER_CLIENT && !g.evict_oldest(|e| e.ip == ip) {
            return None;
        }
        if g.open.len() >= TOTAL && !g.evict_oldest(|_| true) {
            return None;
        }
        let id = g.next;
        g.next += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let evicted = CancellationToken::new();
        g.open.insert(
            id,
            Entry {
                ip,
                busy: busy.clone(),
                evict: evicted.clone(),
            },
        );
        Some(Slot {
            id,
            slots: self.clone(),
            busy,
            evicted,
        })
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Closes the oldest idle connection that `which` picks.
    fn evict_oldest(&mut self, which: impl Fn(&Entry) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, e)| which(e) && !e.busy.load(Ordering::Acquire))
            .map(|(&id, _)| id);
        match victim.and_then(|id| self.open.remove(&id)) {
            Some(e) => {
                e.evict.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_at_its_cap_loses_its_oldest_idle_connection_not_the_new_one() {
        let slots = Arc::new(Slots::default());
        let held: Vec<Slot> = (0..PER_CLIENT)
            .map(|_| slots.admit(ip("10.0.0.1")).unwrap())
            .collect();
        let _answering = held[0].marker().busy();
        let other = slots.admit(ip("10.0.0.2")).unwrap();
        let new = slots.admit(ip("10.0.0.1")).unwrap();
        // The oldest is answering a request: the next oldest goes.
        assert!(!held[0].evicted.is_cancelled());
        assert!(held[1].evicted.is_cancelled());
        assert!(!held[2].evicted.is_cancelled());
        assert!(!other.evicted.is_cancelled() && !new.evicted.is_cancelled());
        assert_eq!(slots.len(), PER_CLIENT + 1);
        drop(new);
        assert_eq!(slots.len(), PER_CLIENT);
    }

    #[test]
    fn all_slots_taken_closes_the_oldest_idle_of_anyone() {
        let slots = Arc::new(Slots::default());
        let held: Vec<Slot> = (0..TOTAL)
            .map(|i| {
                slots
                    .admit(IpAddr::from([10, 0, (i / 32) as u8, 1]))
                    .unwrap()
            })
            .collect();
        let new = slots.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert!(held[0].evicted.is_cancelled());
        assert!(held[1..].iter().all(|s| !s.evicted.is_cancelled()));
        assert!(!new.evicted.is_cancelled());
        assert_eq!(slots.len(), TOTAL);
    }

    #[test]
    fn only_when_every_candidate_is_answering_is_the_newcomer_refused() {
        let slots = Arc::new(Slots::default());
        let held: Vec<Slot> = (0..PER_CLIENT)
            .map(|_| slots.admit(ip("127.0.0.1")).unwrap())
            .collect();
        let busy: Vec<Busy> = held.iter().map(|s| s.marker().busy()).collect();
        assert!(slots.admit(ip("127.0.0.1")).is_none());
        drop(busy);
        assert!(slots.admit(ip("::ffff:127.0.0.1")).is_some());
    }
}
