//! A bad network between the agents and the focus (issue 18, item 4): every agent talks to
//! the focus through its own UDP impairment relay (`support/impair.rs`) and behaves as an
//! RFC 3261 agent must on such a path (it retransmits, re-ACKs, answers repeats again).
//!
//! With 5 % loss, 10 % reordering and 1 % duplication a group session runs its whole life:
//! joins, conference-event NOTIFYs, pager-mode group messages, a REFER, session refreshes and
//! leaves all complete, every subscriber sees every change in version order, nothing is
//! delivered twice, and the focus keeps no dialog, subscription or transaction afterwards.
//! Then the classic bugs of a lossy path are provoked on purpose with rules that drop or
//! duplicate chosen datagrams: a lost ACK, a lost answer to a NOTIFY around the end of a
//! subscription, a duplicated and a retransmitted MESSAGE.
//!
//! Seeds are fixed (set `IMPAIR_SEED` to try others); a failure prints the seed. Timers are
//! short on both sides (T1 50 ms) so a run takes seconds; every wait is an event wait with the
//! generous [`GUARD`] against hanging, never an upper bound on how long things take.

mod support;

use cpm_focus::conference_info::{
    apply, ConferenceInfo, DisconnectionMethod, ElemState, EndpointStatus,
};
use cpm_focus::sip::Method;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::impair::{is_request, is_response, Counts, Dir, Impairment};
use support::{
    endpoint_state, metric, sipfrag, subscription_state, Call, Focus, Notify, Origin, Setup, Sink,
    Ua,
};

/// The agents' timer T1 (the focus gets the same, below).
const T1: Duration = Duration::from_millis(50);

/// Short RFC 3261 timers for the focus: a completed transaction lingers 64 x T1 = 3.2 s.
const TIMERS: &str = "[sip]\nt1_ms = 50\nt2_ms = 400\nt4_ms = 500\n";

/// A guard against hanging only: events come much sooner, however loaded the machine.
const GUARD: Duration = Duration::from_secs(30);

/// A window in which something must not happen.
const QUIET: Duration = Duration::from_millis(500);

/// Rounds of joins, messages, refreshes, a REFER and leaves in the lossy test.
const ROUNDS: u64 = 3;

const TEAM: &str = support::TEAM;

/// The team with alice as its moderator (she may REFER).
const MODERATED: &str = r#"
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "moderator"
"#;

/// The base seed: fixed, or `IMPAIR_SEED` to explore.
fn base_seed() -> u64 {
    std::env::var("IMPAIR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x18_04)
}

/// A focus with short timers and `extra` settings.
fn focus(extra: &str) -> Focus {
    Focus::start(&format!("{TIMERS}\n{extra}"))
}

fn agent(focus: &Focus, name: &str, imp: Impairment, seed: u64) -> Ua {
    Ua::udp_impaired(focus, name, imp, seed, T1)
}

/// Waits until the focus holds nothing: no participant, subscription, session or
/// transaction (lingering ones included).
fn assert_focus_empties(focus: &Focus) {
    for series in [
        "focus_participants_active",
        "focus_subscriptions_active",
        "focus_sessions_active",
        "focus_transactions_active",
        "focus_transactions_lingering",
    ] {
        focus.wait_metric(series, GUARD, |v| v == 0.0);
    }
}

/// A conference-event subscriber that checks RFC 4575 ordering on every NOTIFY: each one
/// arrives once (a new CSeq), and a partial document has the next version (a gap is allowed
/// only for a full document, which replaces the view).
struct Follower {
    ua: Ua,
    call: Call,
    view: ConferenceInfo,
    cseq: u32,
    seed: u64,
    /// NOTIFYs that came over UDP (through the relay) and over TCP (too large for UDP).
    over_udp: usize,
    over_tcp: usize,
}

impl Follower {
    fn new(mut ua: Ua, uri: &str, seed: u64) -> Follower {
        let (call, first) = ua.subscribe_to(uri);
        assert_eq!(first.doc.state, ElemState::Full, "the first NOTIFY is full");
        Follower {
            cseq: first.request.cseq.seq,
            view: first.doc,
            ua,
            call,
            seed,
            over_udp: 0,
            over_tcp: 0,
        }
    }

    /// Applies NOTIFYs until `done` holds.
    fn until(&mut self, what: &str, mut done: impl FnMut(&ConferenceInfo) -> bool) {
        let deadline = Instant::now() + GUARD;
        while !done(&self.view) {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = self.ua.next_notify(left).unwrap_or_else(|| {
                panic!(
                    "{} (seed {}): never saw {what}: {:#?}",
                    self.ua.name, self.seed, self.view
                )
            });
            assert!(!n.is_terminated(), "subscription ended early: {}", n.state);
            self.take(&n);
        }
    }

    fn take(&mut self, n: &Notify) {
        let (cseq, doc) = (&n.request.cseq.seq, &n.doc);
        match n.origin {
            Origin::Udp(_) => self.over_udp += 1,
            Origin::Tcp(_) => self.over_tcp += 1,
        }
        let name = &self.ua.name;
        assert!(
            *cseq > self.cseq,
            "{name}: NOTIFY CSeq {cseq} after {} (delivered twice or out of order)",
            self.cseq
        );
        self.cseq = *cseq;
        if doc.state == ElemState::Full {
            assert!(
                doc.version > self.view.version,
                "{name}: full state version {} after {}",
                doc.version,
                self.view.version
            );
        } else {
            assert_eq!(
                doc.version,
                self.view.version + 1,
                "{name}: partial NOTIFY out of version order"
            );
        }
        apply(&mut self.view, doc).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    /// Ends the subscription (Expires: 0) and takes NOTIFYs up to the terminating one.
    fn unsubscribe(&mut self) {
        let r = self.ua.subscribe(&mut self.call, Some(0));
        assert_eq!(r.status, 200, "{}: unsubscribe {}", self.ua.name, r.reason);
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = self
                .ua
                .next_notify(left)
                .unwrap_or_else(|| panic!("{}: no terminating NOTIFY", self.ua.name));
            self.take(&n);
            if n.is_terminated() {
                return;
            }
        }
    }
}

fn connected(entity: &str) -> impl Fn(&ConferenceInfo) -> bool + '_ {
    move |v| endpoint_state(v, entity).is_some_and(|(s, _)| s == EndpointStatus::Connected)
}

fn gone(entity: &str, how: DisconnectionMethod) -> impl Fn(&ConferenceInfo) -> bool + '_ {
    move |v| endpoint_state(v, entity) == Some((EndpointStatus::Disconnected, Some(how)))
}

/// Takes the MESSAGE with `body` that `ua` must get (answering it 200), and counts every
/// other copy of it already queued: a group message is delivered once.
fn take_message(ua: &mut Ua, body: &str) {
    let want = body.to_string();
    let m = ua
        .wait_for(GUARD, |m| {
            m.request()
                .is_some_and(|r| r.method == Method::Message && r.body[..] == *want.as_bytes())
        })
        .unwrap_or_else(|| panic!("{}: never got {body:?}", ua.name));
    ua.respond(&m, 200);
}

/// One round of a group's life with fresh agents `a{r}` (a moderator), `b{r}`, `c{r}`.
fn round(focus: &Focus, watchers: &mut [Follower], r: u64, seed: u64) -> Vec<Ua> {
    let lossy = Impairment::LOSSY;
    let [mut alice, mut bob, mut carol, mut dan] =
        [(0, "a"), (1, "b"), (2, "c"), (3, "d")].map(|(i, n)| {
            let ua = agent(focus, &format!("{n}{r}"), lossy, agent_seed(seed, r, i));
            ua.answer_refreshes();
            ua
        });
    let (ida, idb, idc) = (alice.aor(), bob.aor(), carol.aor());
    // dan is called in by the focus at his (relayed) address, under that identity.
    let idd = format!("sip:{}@127.0.0.1", dan.name);

    // Joins.
    let (mut a, _) = alice.join(TEAM);
    let (mut b, _) = bob.join(TEAM);
    let (c, _) = carol.join(TEAM);
    for w in watchers.iter_mut() {
        for id in [&ida, &idb, &idc] {
            w.until("all three connected", connected(id));
        }
    }

    // Pager-mode group messages: each reaches the two others once, none comes back.
    for k in 0..3 {
        let body = format!("pager {r}.{k}");
        let mut call = Call::new(TEAM);
        let br = alice.send_request(&mut call, "MESSAGE", "", Some(("text/plain", &body)));
        assert_eq!(alice.expect_final(&br).status, 202, "message {body}");
        take_message(&mut bob, &body);
        take_message(&mut carol, &body);
    }

    // Session refreshes: the focus's (answered by the agents' reader threads) in the first
    // round, and one of alice's own each round.
    if r == 0 {
        for ua in [&alice, &bob, &carol] {
            let deadline = Instant::now() + GUARD;
            while ua.lossy_stats().refreshes.load(Ordering::Relaxed) < 1 {
                assert!(Instant::now() < deadline, "{}: never refreshed", ua.name);
                // Answered on the agent's reader thread: nothing to wait on but the count.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let br = alice.send_request(
        &mut a,
        "UPDATE",
        "Supported: timer\r\nSession-Expires: 4;refresher=uas\r\n",
        None,
    );
    assert_eq!(alice.expect_final(&br).status, 200, "alice's refresh");

    // A REFER removes carol; its NOTIFYs come once each, in order.
    let mut refer = Call::new(TEAM);
    let br = alice.refer(&mut refer, &format!("<{idc};method=BYE>"), "");
    assert_eq!(alice.expect_final(&br).status, 202);
    carol.expect_bye(&c);
    assert_eq!(
        sipfrags(&mut alice),
        ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"],
        "each refer NOTIFY once, in order"
    );

    // A REFER adds dan: the focus calls him (its INVITE, his 2xx and the ACK all cross the
    // bad network), and the referrer hears the outcome.
    let mut refer = Call::new(TEAM);
    let target = format!("<sip:{}@{}>", dan.name, dan.local);
    let br = alice.refer(&mut refer, &target, "");
    assert_eq!(alice.expect_final(&br).status, 202);
    let inv = dan.expect_invite();
    let end = dan.chat_end(Setup::Active);
    let (mut d, _ack) = dan.accept(&inv, &end);
    assert_eq!(
        sipfrags(&mut alice),
        ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"],
        "each refer NOTIFY once, in order"
    );
    for w in watchers.iter_mut() {
        w.until("dan connected", connected(&idd));
    }

    // Leaves.
    assert_eq!(dan.bye(&mut d).status, 200);
    assert_eq!(bob.bye(&mut b).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
    for w in watchers.iter_mut() {
        w.until("carol removed", gone(&idc, DisconnectionMethod::Booted));
        for id in [&ida, &idb, &idd] {
            w.until(
                "the others departed",
                gone(id, DisconnectionMethod::Departed),
            );
        }
    }
    vec![alice, bob, carol, dan]
}

/// The seed of agent `i` of round `r`: distinct per agent, so no two share a pattern.
fn agent_seed(seed: u64, r: u64, i: u64) -> u64 {
    seed.wrapping_mul(1_000).wrapping_add(100 * (r + 1) + i)
}

/// The sipfrag status lines of the refer NOTIFYs up to the one that ends the implicit
/// subscription.
fn sipfrags(ua: &mut Ua) -> Vec<String> {
    let mut frags = Vec::new();
    loop {
        let n = ua
            .next_sipfrag(GUARD)
            .unwrap_or_else(|| panic!("{}: refer NOTIFYs up to the final one", ua.name));
        frags.push(sipfrag(&n, "refer"));
        if subscription_state(&n).starts_with("terminated") {
            return frags;
        }
    }
}

#[test]
fn a_group_session_lives_its_whole_life_over_a_lossy_network() {
    let seed = base_seed();
    // The focus refreshes each session every 2 s (interval 4 s, refresher the focus: the
    // agents do not support timers).
    let moderators: String = (0..ROUNDS)
        .map(|r| {
            format!("[[groups.members]]\nuri = \"sip:a{r}@example.com\"\nrole = \"moderator\"\n")
        })
        .collect();
    let focus = focus(&format!(
        "[session_timer]\nexpires_s = 4\nmin_se_s = 2\n\
         [[groups]]\nuri = \"{TEAM}\"\n{moderators}"
    ));
    let lossy = Impairment::LOSSY;
    let mut watchers = vec![
        Follower::new(
            agent(&focus, "w1", lossy, agent_seed(seed, 100, 1)),
            TEAM,
            seed,
        ),
        Follower::new(
            agent(&focus, "w2", lossy, agent_seed(seed, 100, 2)),
            TEAM,
            seed,
        ),
    ];
    let mut agents = Vec::new();
    for r in 0..ROUNDS {
        agents.extend(round(&focus, &mut watchers, r, seed));
    }
    focus.wait_metric(
        "focus_group_message_deliveries_total{outcome=\"delivered\"}",
        GUARD,
        |v| v == (ROUNDS * 6) as f64,
    );
    for w in &mut watchers {
        w.unsubscribe();
    }

    // Nothing left behind on either side, nothing delivered twice; the network really was bad.
    assert_focus_empties(&focus);
    std::thread::sleep(QUIET);
    for ua in &mut agents {
        let late: Vec<String> = ua
            .drain(Duration::ZERO)
            .iter()
            .filter(|m| m.request().is_some_and(|r| r.method == Method::Message))
            .map(|m| m.text())
            .collect();
        assert!(late.is_empty(), "{}: delivered again: {late:?}", ua.name);
    }
    let all: Vec<&Ua> = agents
        .iter()
        .chain(watchers.iter().map(|w| &w.ua))
        .collect();
    for ua in &all {
        assert_eq!(
            ua.retransmitting(),
            0,
            "{}: a transaction never ended",
            ua.name
        );
    }
    let total = all
        .iter()
        .map(|ua| ua.relay().counts())
        .fold(Counts::default(), |a, b| a + b);
    let resent: usize = all
        .iter()
        .map(|ua| ua.lossy_stats().retransmitted.load(Ordering::Relaxed))
        .sum();
    let (udp, tcp) = watchers
        .iter()
        .fold((0, 0), |(u, t), w| (u + w.over_udp, t + w.over_tcp));
    eprintln!(
        "seed {seed}: {total:?}, {resent} requests retransmitted by the agents; NOTIFYs over \
         UDP {udp} and TCP {tcp}"
    );
    assert!(total.dropped > 0 && total.reordered > 0, "{total:?}");
    assert!(resent > 0, "no agent ever had to retransmit");
    assert!(udp > 0, "no NOTIFY crossed the bad network");
}

#[test]
fn a_lost_ack_gets_the_200_again_until_an_ack_arrives() {
    let focus = focus("");
    let mut alice = agent(&focus, "alice", Impairment::NONE, base_seed());
    let lost = alice
        .relay()
        .drop_next(Dir::ToFocus, 2, |t| is_request(t, "ACK"));
    let oks = alice
        .relay()
        .tap(Dir::FromFocus, |t| is_response(t, 200, "INVITE"));
    let (mut a, _) = alice.join(TEAM);
    // Two ACKs lost: the focus sends the 200 again, each copy is ACKed again, the third ACK
    // gets through and the 200s stop (the server transaction ends, nothing lingers).
    focus.wait_metric("focus_transactions_active", GUARD, |v| v == 0.0);
    assert_eq!(lost.load(Ordering::Relaxed), 2);
    assert_eq!(
        oks.lock().unwrap().len(),
        3,
        "the 200 until the ACK, then no more"
    );
    assert_eq!(alice.lossy_stats().repeated_acks.load(Ordering::Relaxed), 2);
    // The dialog stands: no BYE for a missing ACK, and it ends normally.
    alice.assert_quiet(QUIET, "a confirmed dialog");
    assert_eq!(metric(&focus, "focus_participants_active"), 1.0);
    assert_eq!(alice.bye(&mut a).status, 200);
    assert_focus_empties(&focus);
}

#[test]
fn a_notify_is_retransmitted_until_answered_and_none_follows_the_end() {
    let seed = base_seed();
    let focus = focus("");
    let mut w = Follower::new(agent(&focus, "w", Impairment::NONE, seed), TEAM, seed);
    let notifies =
        w.ua.relay()
            .tap(Dir::FromFocus, |t| is_request(t, "NOTIFY"));
    let answers =
        w.ua.relay()
            .tap(Dir::ToFocus, |t| is_response(t, 200, "NOTIFY"));
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    w.until("alice connected", connected("sip:alice@example.com"));
    // The answers to the next two NOTIFYs (alice's departure) are lost, so the focus sends it
    // again while the subscriber ends the subscription: the retransmissions cross the end.
    let relay = w.ua.relay();
    let lost = relay.drop_next(Dir::ToFocus, 2, |t| is_response(t, 200, "NOTIFY"));
    assert_eq!(alice.bye(&mut a).status, 200);
    w.unsubscribe();
    let last = w.cseq;
    assert_focus_empties(&focus);
    assert_eq!(lost.load(Ordering::Relaxed), 2);
    assert!(
        w.ua.next_notify(QUIET).is_none(),
        "a NOTIFY after the terminating one"
    );

    // Per NOTIFY sent over UDP (CSeq): copies, and when its first answer got through. (A
    // NOTIFY too large for UDP goes over TCP, which the relay does not impair.)
    let cseq = |t: &str| -> u32 {
        t.lines()
            .find_map(|l| l.strip_prefix("CSeq: "))
            .and_then(|v| v.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no CSeq in {t}"))
    };
    let notifies = notifies.lock().unwrap().clone();
    let answers = answers.lock().unwrap().clone();
    for (at, t) in &notifies {
        let n = cseq(t);
        assert!(
            n <= last,
            "NOTIFY CSeq {n} after the terminating one ({last}):\n{t}"
        );
        // A copy sent after its answer got through may cross it in flight: at most one.
        let answered = answers.iter().find(|(_, a)| cseq(a) == n).map(|(a, _)| *a);
        let late = notifies
            .iter()
            .filter(|(b, u)| cseq(u) == n && answered.is_some_and(|a| *b > a))
            .count();
        assert!(
            late <= 1,
            "NOTIFY {n} sent {late} times after it was answered ({at:?})"
        );
    }
    let repeated = notifies.len() - {
        let mut s: Vec<u32> = notifies.iter().map(|(_, t)| cseq(t)).collect();
        s.dedup();
        s.len()
    };
    assert!(repeated >= 2, "the unanswered NOTIFYs were sent again");
}

#[test]
fn a_duplicated_or_retransmitted_message_is_delivered_once() {
    let seed = base_seed();
    // m1's path duplicates the MESSAGE the focus sends; m2's loses m2's first answer, so the
    // focus retransmits it.
    let m1 = Sink::impaired("m1", Impairment::NONE, seed);
    let m2 = Sink::impaired("m2", Impairment::NONE, seed + 1);
    let dup = m1
        .relay
        .as_ref()
        .unwrap()
        .duplicate_next(Dir::FromFocus, 1, |t| is_request(t, "MESSAGE"));
    let lost_answer = m2
        .relay
        .as_ref()
        .unwrap()
        .drop_next(Dir::ToFocus, 1, |t| is_response(t, 200, "MESSAGE"));
    let members = format!(
        "[[groups]]\nuri = \"sip:club@focus.example.com\"\njoin = \"members-only\"\n\
         [[groups.members]]\nuri = \"sip:alice@example.com\"\n\
         [[groups.members]]\nuri = \"{}\"\n[[groups.members]]\nuri = \"{}\"\n",
        m1.uri(),
        m2.uri()
    );
    let focus = focus(&members);
    // alice's own MESSAGE is duplicated on the way, and the 202s to both copies are lost:
    // alice retransmits it.
    let mut alice = agent(&focus, "alice", Impairment::NONE, seed + 2);
    let sent_twice = alice
        .relay()
        .duplicate_next(Dir::ToFocus, 1, |t| is_request(t, "MESSAGE"));
    let lost_202 = alice
        .relay()
        .drop_next(Dir::FromFocus, 2, |t| is_response(t, 202, "MESSAGE"));
    let mut call = Call::new("sip:club@focus.example.com");
    let br = alice.send_request(&mut call, "MESSAGE", "", Some(("text/plain", "once")));
    assert_eq!(alice.expect_final(&br).status, 202);
    assert!(alice.lossy_stats().retransmitted.load(Ordering::Relaxed) >= 1);
    for s in [&m1, &m2] {
        assert_eq!(s.wait_deliveries(1, GUARD)[0].body(), "once");
    }
    focus.wait_metric(
        "focus_group_message_deliveries_total{outcome=\"delivered\"}",
        GUARD,
        |v| v == 2.0,
    );
    assert_focus_empties(&focus);
    for (hits, what) in [
        (&dup, "m1's duplicate"),
        (&lost_answer, "m2's lost answer"),
        (&sent_twice, "alice's duplicate"),
    ] {
        assert_eq!(hits.load(Ordering::Relaxed), 1, "{what} happened");
    }
    assert_eq!(lost_202.load(Ordering::Relaxed), 2, "alice's lost 202s");
    for s in [&m1, &m2] {
        assert_eq!(s.deliveries().len(), 1, "{}: delivered once", s.name);
        assert!(
            s.retransmissions() >= 1,
            "{}: the copy came and was absorbed",
            s.name
        );
    }
    assert_eq!(
        metric(&focus, "focus_group_messages_total{mode=\"pager\"}"),
        1.0,
        "alice's copies are one message"
    );
    assert_eq!(
        metric(
            &focus,
            "focus_group_message_deliveries_total{outcome=\"failed\"}"
        ),
        0.0
    );
}

#[test]
fn refer_notifies_keep_their_order_when_one_is_lost() {
    // The first refer NOTIFY (100 Trying) is lost on its way to alice. The focus must not
    // send the final one (200 OK, terminating the implicit subscription) before the first is
    // answered: otherwise alice sees the end first and then a NOTIFY of a subscription that
    // already ended. (Before the fix the focus sent each sipfrag at once.)
    let focus = focus(MODERATED);
    let mut alice = agent(&focus, "alice", Impairment::NONE, base_seed());
    let mut carol = Ua::udp(&focus, "carol");
    let (mut a, _) = alice.join(TEAM);
    let (c, _) = carol.join(TEAM);
    let lost = alice.relay().drop_next(Dir::FromFocus, 1, |t| {
        is_request(t, "NOTIFY") && t.contains("Event: refer")
    });
    let mut refer = Call::new(TEAM);
    let br = alice.refer(&mut refer, "<sip:carol@example.com;method=BYE>", "");
    assert_eq!(alice.expect_final(&br).status, 202);
    carol.expect_bye(&c);
    let first = alice.expect_sipfrag();
    assert_eq!(
        sipfrag(&first, "refer"),
        "SIP/2.0 100 Trying",
        "the progress in order"
    );
    assert_eq!(subscription_state(&first), "active;expires=60");
    let last = alice.expect_sipfrag();
    assert_eq!(sipfrag(&last, "refer"), "SIP/2.0 200 OK");
    assert_eq!(subscription_state(&last), "terminated;reason=noresource");
    assert_eq!(lost.load(Ordering::Relaxed), 1);
    focus.wait_metric("focus_transactions_active", GUARD, |v| v == 0.0);
    assert!(
        alice.next_sipfrag(QUIET).is_none(),
        "a refer NOTIFY after the one that ended the subscription"
    );
    assert_eq!(alice.bye(&mut a).status, 200);
    assert_focus_empties(&focus);
}
