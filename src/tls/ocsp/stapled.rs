//! A server certificate with its OCSP response stapled while, and only
//! while, that response is valid. The check is made in each handshake
//! (`key`, a clock read and a lock held for two `Arc` clones), so a
//! response stops being stapled the second its nextUpdate passes, whether
//! or not anything else notices; `set` replaces the response (a rotated
//! file, a fetch) without touching the certificate.

use std::sync::{Arc, RwLock};

use rustls::sign::CertifiedKey;

use super::Staple;

/// A response without nextUpdate (RFC 6960: newer information may be
/// available at any time) is held for at most this long after thisUpdate.
pub const WITHOUT_NEXT_UPDATE: i64 = 7 * 86_400;
/// Clock skew allowed on thisUpdate (a responder's clock a little ahead).
pub const SKEW: i64 = 300;

/// The certificate, and the response being stapled to it if any.
#[derive(Debug)]
pub struct Stapled {
    bare: Arc<CertifiedKey>,
    current: RwLock<Option<(Arc<CertifiedKey>, Staple)>>,
    /// Why the last fetch (`ocsp = "auto"`) gave nothing, for the status
    /// page; `None` after a good one.
    note: RwLock<Option<String>>,
}

impl Staple {
    /// Until when (Unix seconds) the response may be stapled.
    pub fn valid_until(&self) -> i64 {
        self.next_update
            .unwrap_or(self.this_update.saturating_add(WITHOUT_NEXT_UPDATE))
    }

    /// May it be stapled at `now`?
    pub fn valid_at(&self, now: i64) -> bool {
        self.this_update <= now + SKEW && now < self.valid_until()
    }
}

impl Stapled {
    pub fn new(bare: Arc<CertifiedKey>) -> Stapled {
        Stapled {
            bare,
            current: RwLock::new(None),
            note: RwLock::new(None),
        }
    }

    /// The certificate chain served.
    pub fn chain(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.bare.cert
    }

    /// Records why the last fetch failed (`None`: it did not).
    pub fn note(&self, why: Option<String>) {
        *self.note.write().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Why the last fetch failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.note.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What a handshake at `now` serves: the certificate, with the
    /// response if it is valid then.
    pub fn key(&self, now: i64) -> Arc<CertifiedKey> {
        match &*self.read() {
            Some((with, staple)) if staple.valid_at(now) => with.clone(),
            _ => self.bare.clone(),
        }
    }

    /// Staples `staple` from now on (`None`: nothing).
    pub fn set(&self, staple: Option<Staple>) {
        let next = staple.map(|s| {
            let mut with = (*self.bare).clone();
            with.ocsp = Some(s.der.clone());
            (Arc::new(with), s)
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The response held, valid or not.
    pub fn held(&self) -> Option<Staple> {
        self.read().as_ref().map(|(_, s)| s.clone())
    }

    /// The response stapled at `now`, if any.
    pub fn stapled(&self, now: i64) -> Option<Staple> {
        self.held().filter(|s| s.valid_at(now))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<(Arc<CertifiedKey>, Staple)>> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn key() -> Arc<CertifiedKey> {
        use rustls::pki_types::pem::PemObject as _;
        let leaf = crate::pki::self_signed("t", &["t"]);
        let chain = vec![rustls::pki_types::CertificateDer::from(leaf.cert_der)];
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Arc::new(CertifiedKey::from_der(chain, key, &provider).unwrap())
    }

    fn staple(this_update: i64, next_update: Option<i64>) -> Staple {
        Staple {
            der: vec![1, 2, 3],
            status: Status::Good,
            this_update,
            next_update,
        }
    }

    #[test]
    fn the_response_is_stapled_only_inside_its_validity() {
        let s = Stapled::new(key());
        assert_eq!(s.key(1000).ocsp, None);
        s.set(Some(staple(1000, Some(2000))));
        assert_eq!(s.key(1000).ocsp.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(s.key(1999).ocsp.as_deref(), Some(&[1u8, 2, 3][..]));
        // Stale the second nextUpdate comes; not yet valid before thisUpdate.
        assert_eq!(s.key(2000).ocsp, None);
        assert_eq!(s.key(1000 - SKEW - 1).ocsp, None);
        assert_eq!(s.key(1000 - SKEW).ocsp.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(s.stapled(2000), None);
        assert!(s.held().is_some());
        s.set(None);
        assert_eq!(s.key(1500).ocsp, None);
    }

    #[test]
    fn a_response_without_next_update_is_held_a_week_at_most() {
        let s = Stapled::new(key());
        s.set(Some(staple(1000, None)));
        assert!(s.key(1000 + WITHOUT_NEXT_UPDATE - 1).ocsp.is_some());
        assert!(s.key(1000 + WITHOUT_NEXT_UPDATE).ocsp.is_none());
    }
}
