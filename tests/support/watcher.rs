//! A conference-info subscriber (RFC 4575) that tests follow until the view they expect.

use super::{endpoint_state, follow_each, Notify, Ua};
use cpm_focus::conference_info::{ConferenceInfo, DisconnectionMethod, EndpointStatus};

/// A subscriber with its current view and the raw text of every NOTIFY body it got (for
/// tests that check what a NOTIFY must never reveal).
pub struct Watcher {
    pub ua: Ua,
    pub view: ConferenceInfo,
    pub bodies: Vec<String>,
}

impl Watcher {
    /// `ua` subscribes to `uri`; the first NOTIFY is the view.
    pub fn new(mut ua: Ua, uri: &str) -> Watcher {
        let (_call, n) = ua.subscribe_to(uri);
        Watcher::from_first(ua, n)
    }

    /// A watcher for a subscription the test made itself, from its first NOTIFY.
    pub fn from_first(ua: Ua, first: Notify) -> Watcher {
        Watcher {
            bodies: vec![body(&first)],
            ua,
            view: first.doc,
        }
    }

    /// Follows NOTIFYs until `done` holds (as [`super::follow`]), keeping every body.
    pub fn until(&mut self, done: impl FnMut(&ConferenceInfo) -> bool) {
        let bodies = &mut self.bodies;
        follow_each(&mut self.ua, &mut self.view, done, |n| bodies.push(body(n)));
    }

    /// Follows NOTIFYs until `entity`'s single endpoint has `status`.
    pub fn until_status(&mut self, entity: &str, status: EndpointStatus) {
        self.until(|v| endpoint_state(v, entity).is_some_and(|s| s.0 == status));
    }

    /// Follows NOTIFYs until `entity`'s single endpoint is disconnected by `method`.
    pub fn until_gone(&mut self, entity: &str, method: DisconnectionMethod) {
        self.until(|v| {
            endpoint_state(v, entity) == Some((EndpointStatus::Disconnected, Some(method)))
        });
    }

    /// Asserts that no NOTIFY body so far contains any of `secrets` (case-insensitive).
    pub fn assert_never_saw(&self, secrets: &[&str]) {
        assert!(!self.bodies.is_empty(), "no NOTIFY to check");
        for b in &self.bodies {
            let lower = b.to_ascii_lowercase();
            for s in secrets {
                assert!(
                    !lower.contains(&s.to_ascii_lowercase()),
                    "{} saw {s:?} in:\n{b}",
                    self.ua.name
                );
            }
        }
    }
}

fn body(n: &Notify) -> String {
    String::from_utf8(n.request.body.to_vec()).expect("conference-info is text")
}
