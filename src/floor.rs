//! Floor control for push-to-talk voice groups: the focus is a BFCP floor control server
//! (RFC 8855, negotiated in SDP per RFC 8856).

pub mod bfcp;
