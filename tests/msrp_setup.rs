//! MSRP session setup races end to end: a participant that joins with a delayed offer (an
//! INVITE without SDP) answers the focus's offer in its ACK and may bind its MSRP session at
//! once; the focus must know the session by then (never `481 Session not found`).

mod support;

use cpm_focus::media::msrp::MsrpUri;
use support::{Call, Endpoint, Focus, MsrpMedia, Setup, Ua, TEAM};

#[test]
fn a_delayed_offer_participant_binds_right_after_its_ack() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "frank");
    // Each round races the ACK (SIP, through the session actor) against the binding SEND
    // (MSRP, straight to the switch) on an already open connection.
    for round in 0..20 {
        let mut call = Call::new(TEAM);
        let b = ua.invite(&mut call, None);
        let ok = ua.expect_final(&b);
        assert_eq!(ok.status, 200, "{}", ok.reason);
        call.learn(&ok);
        let offer = String::from_utf8(ok.body.to_vec()).unwrap();
        let media = MsrpMedia::find(&offer).expect("the focus offers MSRP");
        assert_eq!(media.attr("setup"), Some("passive"), "{offer}");
        let focus_path = MsrpUri::parse(media.attr("path").unwrap()).unwrap();
        let mut end = Endpoint::new(&format!("frank{round}"), Setup::Active);
        let answer = end.offer();
        // Connecting is not binding: the connection may be open before the answer is sent.
        let mut msrp = end.connect(&focus_path);
        ua.ack_with(&call, Some(&answer));
        msrp.bind();
        assert_eq!(msrp.say("hello").code, 200, "round {round}");
        assert_eq!(ua.bye(&mut call).status, 200);
    }
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}
