//! RFC 4575 conference state: the `application/conference-info+xml` body of `Event: conference`
//! NOTIFYs.
//!
//! - [`model`]: the document as plain data (what the session layer builds).

pub mod model;

pub use model::{
    AvailableMedia, ConferenceDescription, ConferenceInfo, ConferenceState, DisconnectionMethod,
    DocState, ElemState, Endpoint, EndpointStatus, Execution, HostInfo, JoiningMethod, Media,
    MediaStatus, SipDialogInfo, UriEntry, User, Users, MIME_TYPE, NAMESPACE,
};
