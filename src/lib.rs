//! cpm-focus: the Controlling Function of OMA CPM, a SIP conference focus.
//!
//! (Module map is filled in as the modules land.)
#![forbid(unsafe_code)]

pub mod conference_info;
pub mod sdp;
pub mod transaction;
