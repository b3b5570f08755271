//! The media plane of group chat: the focus acts as an MSRP switch (RFC 7701), so it speaks
//! MSRP (RFC 4975) to every participant and wraps what it fans out in `message/cpim`
//! (RFC 3862).
//!
//! Both are sans-IO codecs: bytes in, typed messages out, and back. Connections, timers and
//! the fan-out policy live with the session, not here.

pub mod cpim;
pub mod imdn;
pub mod msrp;
