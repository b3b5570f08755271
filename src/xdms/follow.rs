//! The driver of the xcap-diff subscription ([`Subscriber`]): sends its requests through the
//! endpoint's client transactions, feeds it their outcomes, the NOTIFYs the supervisor hands
//! over and the time, and wakes the poll loop when a notice names documents.

use super::subscriber::{Action, Subscriber};
use crate::endpoint::{Endpoint, IncomingRequest, OutgoingRequest, TransactionUser, TuEvent};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// NOTIFYs waiting for the driver; more are answered 503 (the notifier retries).
const NOTIFY_QUEUE: usize = 32;

/// Where the supervisor hands a NOTIFY: accepted only when its Call-ID and To tag are the
/// subscription's (the driver then checks the rest of the dialog).
pub struct SubscriptionHandle {
    ids: Mutex<(Box<str>, Box<str>)>,
    tx: mpsc::Sender<IncomingRequest>,
}

impl SubscriptionHandle {
    /// Takes `incoming` when it names the subscription's dialog; gives it back otherwise.
    #[allow(clippy::result_large_err)]
    pub fn offer(&self, incoming: IncomingRequest) -> Result<(), IncomingRequest> {
        let ours = {
            let ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
            !ids.0.is_empty()
                && incoming.request.call_id() == &*ids.0
                && incoming.request.to.tag() == Some(&*ids.1)
        };
        if !ours {
            return Err(incoming);
        }
        match self.tx.try_send(incoming) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(inc) | mpsc::error::TrySendError::Closed(inc)) => {
                inc.txn.shed(crate::overload::Shed::Mailbox);
                Ok(())
            }
        }
    }

    fn set_ids(&self, ids: (Box<str>, Box<str>)) {
        *self.ids.lock().unwrap_or_else(PoisonError::into_inner) = ids;
    }
}

/// Documents a notice asked to fetch, for the poll loop.
#[derive(Default)]
pub struct Kick {
    wanted: Mutex<Option<Wanted>>,
    notify: Notify,
}

/// What to fetch when kicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    All,
    Some(BTreeSet<String>),
}

impl Kick {
    fn push(&self, docs: Option<Vec<String>>) {
        let mut w = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        *w = match (w.take(), docs) {
            (Some(Wanted::All), _) | (_, None) => Some(Wanted::All),
            (Some(Wanted::Some(mut set)), Some(d)) => {
                set.extend(d);
                Some(Wanted::Some(set))
            }
            (None, Some(d)) => Some(Wanted::Some(d.into_iter().collect())),
        };
        drop(w);
        self.notify.notify_one();
    }

    /// Waits for a notice, then takes what it asked for.
    pub async fn wait(&self) -> Wanted {
        loop {
            if let Some(w) = self
                .wanted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                return w;
            }
            self.notify.notified().await;
        }
    }
}

/// The transaction user of the subscription's SUBSCRIBEs.
struct Tu(mpsc::UnboundedSender<TuEvent>);

impl TransactionUser for Tu {
    fn on_event(&self, event: TuEvent) {
        let _ = self.0.send(event);
    }
}

/// Starts the subscription; returns the handle the supervisor offers NOTIFYs to.
pub fn start(
    subscriber: Subscriber,
    endpoint: Endpoint,
    kick: Arc<Kick>,
    health: Arc<super::XdmsHealth>,
    cancel: CancellationToken,
) -> Arc<SubscriptionHandle> {
    let (tx, notifies) = mpsc::channel(NOTIFY_QUEUE);
    let handle = Arc::new(SubscriptionHandle {
        ids: Mutex::new(("".into(), "".into())),
        tx,
    });
    let (tu_tx, events) = mpsc::unbounded_channel();
    let driver = Driver {
        sub: subscriber,
        endpoint,
        tu: Arc::new(Tu(tu_tx)),
        kick,
        handle: handle.clone(),
        health,
    };
    tokio::spawn(driver.run(events, notifies, cancel));
    handle
}

struct Driver {
    sub: Subscriber,
    endpoint: Endpoint,
    tu: Arc<Tu>,
    kick: Arc<Kick>,
    handle: Arc<SubscriptionHandle>,
    health: Arc<super::XdmsHealth>,
}

impl Driver {
    fn act(&self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(o) => self.endpoint.send_request(OutgoingRequest {
                    method: o.method,
                    request_uri: o.request_uri,
                    rest: o.rest,
                    call_id: o.call_id,
                    destination: o.destination,
                    token: o.token,
                    tu: self.tu.clone(),
                    invite: None,
                }),
                Action::Fetch(docs) => self.kick.push(docs),
            }
        }
        self.handle.set_ids(self.sub.ids());
        let active = self.sub.is_active();
        self.health.update(|h| h.subscribed = active);
    }

    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<TuEvent>,
        mut notifies: mpsc::Receiver<IncomingRequest>,
        cancel: CancellationToken,
    ) {
        loop {
            let actions = self.sub.on_tick(Instant::now());
            self.act(actions);
            let deadline = self.sub.deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => {
                    let actions = self.sub.stop();
                    self.act(actions);
                    return;
                }
                Some(event) = events.recv() => {
                    let now = Instant::now();
                    let actions = match event {
                        TuEvent::Response { token, response, source } => {
                            self.sub.on_response(token, &response, source, now)
                        }
                        TuEvent::Failed { token, .. } => {
                            self.sub.on_failure(token, now);
                            Vec::new()
                        }
                        TuEvent::AckTimeout { .. } | TuEvent::ResponseRefused { .. } => Vec::new(),
                    };
                    self.act(actions);
                }
                Some(incoming) = notifies.recv() => {
                    let (status, actions) =
                        self.sub.on_notify(&incoming.request, incoming.source, Instant::now());
                    let req = incoming.request.clone();
                    incoming.txn.reply(&req, status);
                    self.act(actions);
                }
                _ = sleep => {}
            }
        }
    }
}
