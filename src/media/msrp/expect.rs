//! MSRP sessions the focus has offered and whose answer is on its way. With a delayed offer
//! (an INVITE without SDP) the focus's offer goes out in its 2xx and the participant's answer
//! comes back in the ACK; the participant may connect and bind its session the moment it has
//! sent that ACK, while the ACK still travels through the session actor that installs the
//! member in the switch. A connection naming an expected session therefore waits for the
//! member (bounded by the expectation's deadline) instead of answering `481`.

use dashmap::DashMap;
use std::time::Instant;
use tokio::sync::Notify;

/// Expectations kept before expired ones are swept (each costs a few dozen bytes).
const SWEEP_ABOVE: usize = 1024;

/// Expected session ids with the instant after which nobody waits for them any more.
#[derive(Default)]
pub struct Expected {
    until: DashMap<Box<str>, Instant>,
    /// Woken whenever an expectation settles (its member came, or it was given up).
    settled: Notify,
}

impl Expected {
    /// Expects a member for `session_id` until `until`.
    pub fn expect(&self, session_id: &str, until: Instant) {
        if self.until.len() >= SWEEP_ABOVE {
            let now = Instant::now();
            self.until.retain(|_, t| *t > now);
        }
        self.until.insert(session_id.into(), until);
    }

    /// Whether a member for `session_id` is still expected at `now`.
    pub fn is_expected(&self, session_id: &str, now: Instant) -> bool {
        self.until.get(session_id).is_some_and(|t| *t > now)
    }

    /// The member came, or will not: stop expecting it and wake whoever waits.
    pub fn settle(&self, session_id: &str) {
        if self.until.remove(session_id).is_some() {
            self.settled.notify_waiters();
        }
    }

    /// Waits until `lookup` finds the member, or `session_id` is no longer expected (settled
    /// without a member, or past its deadline): `None` then.
    pub async fn wait<T>(
        &self,
        session_id: &str,
        mut lookup: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        loop {
            // Registered before the checks: a settle between them still wakes us.
            let settled = self.settled.notified();
            if let Some(found) = lookup() {
                return Some(found);
            }
            let deadline = *self.until.get(session_id)?;
            if deadline <= Instant::now() {
                self.until.remove(session_id);
                return None;
            }
            let _ = tokio::time::timeout_at(deadline.into(), settled).await;
        }
    }

    /// Expectations held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_gets_the_member_once_it_is_installed() {
        let e = Arc::new(Expected::default());
        let installed = Arc::new(AtomicBool::new(false));
        e.expect("s1", Instant::now() + Duration::from_secs(5));
        assert!(e.is_expected("s1", Instant::now()));
        let (e2, i2) = (e.clone(), installed.clone());
        let waiter = tokio::spawn(async move {
            e2.wait("s1", || i2.load(Ordering::SeqCst).then_some(7))
                .await
        });
        tokio::task::yield_now().await;
        installed.store(true, Ordering::SeqCst);
        e.settle("s1");
        assert_eq!(waiter.await.unwrap(), Some(7));
        assert_eq!(e.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_when_the_session_is_dropped_or_expires() {
        let e = Arc::new(Expected::default());
        e.expect("s1", Instant::now() + Duration::from_secs(5));
        let e2 = e.clone();
        let waiter = tokio::spawn(async move { e2.wait("s1", || None::<u8>).await });
        tokio::task::yield_now().await;
        e.settle("s1");
        assert_eq!(waiter.await.unwrap(), None);
        // Unknown and expired sessions: no wait at all, or until the deadline.
        assert_eq!(e.wait("nope", || None::<u8>).await, None);
        e.expect("s2", Instant::now() + Duration::from_millis(20));
        assert_eq!(e.wait("s2", || None::<u8>).await, None);
        assert!(!e.is_expected("s2", Instant::now()));
    }
}
