//! Client and server machines driven against each other over a lossy simulated UDP link, in
//! virtual time (the idea of quinn's `Pair::drive()`): the end-to-end view of retransmission,
//! ACK and absorption rules that the per-machine tests check one side at a time.

use bytes::Bytes;

use super::test_util::{msg, Clock};
use super::{
    Event, InviteClient, InviteServer, NonInviteClient, NonInviteServer, ResponseDisposition,
    TimerConfig,
};

/// One-way delay of the simulated network, in ms.
const DELAY: u64 = 50;

/// The ACK the client TU sends for a 2xx: its own transaction, matched to the server
/// transaction by the driver (a different branch from the INVITE's).
const ACK_2XX: Bytes = Bytes::from_static(b"ACK-2xx");

/// A UDP path that loses chosen packets: the n-th message in each direction (from 0).
#[derive(Default)]
struct Link {
    lose_to_server: Vec<usize>,
    lose_to_client: Vec<usize>,
    sent_to_server: usize,
    sent_to_client: usize,
    /// (arrival ms, towards the server, payload), in send order.
    in_flight: Vec<(u64, bool, Bytes)>,
}

impl Link {
    fn send(&mut self, now: u64, to_server: bool, payload: Bytes) {
        let (count, lose) = if to_server {
            (&mut self.sent_to_server, &self.lose_to_server)
        } else {
            (&mut self.sent_to_client, &self.lose_to_client)
        };
        if !lose.contains(count) {
            self.in_flight.push((now + DELAY, to_server, payload));
        }
        *count += 1;
    }

    fn next_arrival(&self) -> Option<u64> {
        self.in_flight.iter().map(|(at, _, _)| *at).min()
    }

    fn take_arrived(&mut self, now: u64) -> Vec<(bool, Bytes)> {
        let (arrived, later) = self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
        self.in_flight = later;
        arrived.into_iter().map(|(_, dir, p)| (dir, p)).collect()
    }
}

/// The two ends of a simulation and their transaction users.
trait Ends {
    /// Moves every pending transmission onto the link and records events.
    fn flush(&mut self, now: u64, link: &mut Link);
    fn deliver(&mut self, now: u64, to_server: bool, payload: Bytes, link: &mut Link);
    fn next_timeout(&self) -> Option<u64>;
    fn fire_timers(&mut self, now: u64);
}

/// Runs the simulation until nothing is left to happen before `until` ms.
fn drive(ends: &mut impl Ends, link: &mut Link, until: u64) {
    let mut now = 0;
    loop {
        ends.flush(now, link);
        let next = [ends.next_timeout(), link.next_arrival()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= until => now = t,
            _ => return,
        }
        for (to_server, payload) in link.take_arrived(now) {
            ends.deliver(now, to_server, payload, link);
            ends.flush(now, link);
        }
        ends.fire_timers(now);
    }
}

fn status_of(payload: &[u8]) -> u16 {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("responses are encoded as their status code")
}

/// An INVITE client and server whose TU answers the INVITE at once with `answer`.
struct InviteEnds {
    clock: Clock,
    answer: (u16, Bytes),
    client: InviteClient,
    server: Option<InviteServer>,
    /// Responses passed to the client TU, with their arrival time.
    client_tu: Vec<(u64, u16)>,
    client_events: Vec<(u64, Event)>,
    server_events: Vec<(u64, Event)>,
}

impl InviteEnds {
    fn new(answer: (u16, Bytes)) -> Self {
        let clock = Clock::new();
        let client = InviteClient::new(clock.at(0), TimerConfig::default(), false, msg::INVITE);
        Self {
            clock,
            answer,
            client,
            server: None,
            client_tu: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }
}

impl Ends for InviteEnds {
    fn flush(&mut self, now: u64, link: &mut Link) {
        while let Some(p) = self.client.poll_transmit() {
            link.send(now, true, p);
        }
        while let Some(ev) = self.client.poll_event() {
            self.client_events.push((now, ev));
        }
        if let Some(server) = &mut self.server {
            while let Some(p) = server.poll_transmit() {
                link.send(now, false, p);
            }
            while let Some(ev) = server.poll_event() {
                self.server_events.push((now, ev));
            }
        }
    }

    fn deliver(&mut self, now: u64, to_server: bool, payload: Bytes, link: &mut Link) {
        let t = self.clock.at(now);
        if to_server {
            match (&mut self.server, payload.as_ref()) {
                (None, b"INVITE") => {
                    let mut server = InviteServer::new(t, TimerConfig::default(), false);
                    let (status, body) = self.answer.clone();
                    server.send_response(t, status, body).unwrap();
                    self.server = Some(server);
                }
                (Some(server), b"INVITE") => server.on_retransmission(t),
                (Some(server), b"ACK") => server.on_ack(t),
                (Some(server), b"ACK-2xx") => server.on_ack_2xx(t),
                (server, other) => panic!("{other:?} reached server {server:?}"),
            }
            return;
        }
        let status = status_of(&payload);
        let disposition = self.client.on_response(t, status);
        if disposition.pass_to_tu() {
            self.client_tu.push((now, status));
            if (200..300).contains(&status) {
                // The UAC core ACKs every 2xx it is given, outside the transaction.
                link.send(now, true, ACK_2XX);
            }
        }
        if disposition.needs_ack() {
            self.client.send_ack(t, msg::ACK).unwrap();
        }
    }

    fn next_timeout(&self) -> Option<u64> {
        let server = self.server.as_ref().and_then(InviteServer::poll_timeout);
        [self.client.poll_timeout(), server]
            .into_iter()
            .flatten()
            .min()
            .map(|t| self.clock.ms(t))
    }

    fn fire_timers(&mut self, now: u64) {
        let t = self.clock.at(now);
        self.client.handle_timeout(t);
        if let Some(server) = &mut self.server {
            server.handle_timeout(t);
        }
    }
}

#[test]
fn rejected_invite_survives_loss_of_two_invites_and_the_first_final() {
    let mut ends = InviteEnds::new((486, msg::BUSY));
    let mut link = Link {
        lose_to_server: vec![0, 1],
        lose_to_client: vec![0],
        ..Link::default()
    };
    // INVITE at 0 and 500 lost; the one at 1500 arrives at 1550 and is answered, but that 486
    // is lost; Timer G resends it at 2050; the client ACKs at 2100; the server has it at 2150.
    drive(&mut ends, &mut link, 7_149);
    assert_eq!(ends.client_tu, [(2_100, 486)]);
    let server = ends.server.as_ref().unwrap();
    assert!(!server.is_terminated());
    drive(&mut ends, &mut link, 7_150);
    assert!(ends.server.as_ref().unwrap().is_terminated(), "Timer I");

    drive(&mut ends, &mut link, 100_000);
    assert_eq!(ends.client_tu, [(2_100, 486)]);
    assert!(ends.client.is_terminated());
    assert!(ends.client_events.is_empty() && ends.server_events.is_empty());
    assert_eq!(link.sent_to_server, 4, "three INVITEs and one ACK");
}

#[test]
fn lost_ack_is_repeated_when_the_final_is_retransmitted() {
    let mut ends = InviteEnds::new((486, msg::BUSY));
    let mut link = Link {
        lose_to_server: vec![1],
        ..Link::default()
    };
    drive(&mut ends, &mut link, 100_000);
    // The 486 reaches the TU once, at 100; the repeat at 600 is absorbed but re-ACKed.
    assert_eq!(ends.client_tu, [(100, 486)]);
    assert_eq!(link.sent_to_server, 3, "INVITE, lost ACK, repeated ACK");
    assert_eq!(link.sent_to_client, 2, "486 and one Timer G copy");
    assert!(ends.client_events.is_empty() && ends.server_events.is_empty());
    assert!(ends.client.is_terminated() && ends.server.unwrap().is_terminated());
}

#[test]
fn lost_2xx_is_retransmitted_and_each_copy_reaches_the_tu_to_be_acked() {
    let mut ends = InviteEnds::new((200, msg::OK));
    let mut link = Link {
        lose_to_client: vec![0],
        ..Link::default()
    };
    drive(&mut ends, &mut link, 100_000);
    // The 200 sent at 50 is lost. At 550 the server sends it twice: once for the INVITE the
    // client retransmitted at 500, once on its own 2xx timer. Both pass to the TU (RFC 6026),
    // which ACKs both; the server reports the first ACK only.
    assert_eq!(ends.client_tu, [(600, 200), (600, 200)]);
    assert_eq!(ends.server_events, [(650, Event::AckReceived)]);
    assert!(ends.client_events.is_empty());
    assert!(ends.client.is_terminated() && ends.server.unwrap().is_terminated());
}

#[test]
fn unanswered_invite_times_out_on_timer_b() {
    let mut ends = InviteEnds::new((200, msg::OK));
    let mut link = Link {
        lose_to_server: (0..10).collect(),
        ..Link::default()
    };
    drive(&mut ends, &mut link, 100_000);
    assert_eq!(ends.client_events, [(32_000, Event::Timeout)]);
    assert!(ends.server.is_none());
    assert_eq!(link.sent_to_server, 7, "INVITE and six Timer A copies");
}

/// A non-INVITE client and server whose TU answers at once with 200.
struct NonInviteEnds {
    clock: Clock,
    client: NonInviteClient,
    server: Option<NonInviteServer>,
    client_tu: Vec<(u64, u16)>,
}

impl Ends for NonInviteEnds {
    fn flush(&mut self, now: u64, link: &mut Link) {
        while let Some(p) = self.client.poll_transmit() {
            link.send(now, true, p);
        }
        assert_eq!(self.client.poll_event(), None);
        if let Some(server) = &mut self.server {
            while let Some(p) = server.poll_transmit() {
                link.send(now, false, p);
            }
            assert_eq!(server.poll_event(), None);
        }
    }

    fn deliver(&mut self, now: u64, to_server: bool, payload: Bytes, _link: &mut Link) {
        let t = self.clock.at(now);
        if to_server {
            assert_eq!(payload, msg::BYE);
            match &mut self.server {
                Some(server) => server.on_retransmission(t),
                None => {
                    let mut server = NonInviteServer::new(t, TimerConfig::default(), false);
                    server.send_response(t, 200, msg::OK).unwrap();
                    self.server = Some(server);
                }
            }
            return;
        }
        let status = status_of(&payload);
        if self.client.on_response(t, status) == ResponseDisposition::PassToTu {
            self.client_tu.push((now, status));
        }
    }

    fn next_timeout(&self) -> Option<u64> {
        let server = self.server.as_ref().and_then(NonInviteServer::poll_timeout);
        [self.client.poll_timeout(), server]
            .into_iter()
            .flatten()
            .min()
            .map(|t| self.clock.ms(t))
    }

    fn fire_timers(&mut self, now: u64) {
        let t = self.clock.at(now);
        self.client.handle_timeout(t);
        if let Some(server) = &mut self.server {
            server.handle_timeout(t);
        }
    }
}

#[test]
fn bye_survives_loss_of_request_and_response() {
    let clock = Clock::new();
    let mut ends = NonInviteEnds {
        clock,
        client: NonInviteClient::new(clock.at(0), TimerConfig::default(), false, msg::BYE),
        server: None,
        client_tu: Vec::new(),
    };
    let mut link = Link {
        lose_to_server: vec![0],
        lose_to_client: vec![0],
        ..Link::default()
    };
    // BYE at 0 lost; the copy at 500 arrives at 550 and is answered, but the 200 is lost; the
    // copy at 1500 gets the 200 again from Completed, which arrives at 1600.
    drive(&mut ends, &mut link, 100_000);
    assert_eq!(ends.client_tu, [(1_600, 200)]);
    assert_eq!(link.sent_to_server, 3);
    assert!(ends.client.is_terminated() && ends.server.unwrap().is_terminated());
}
