//! Hand-written renderer for `application/conference-info+xml`.
//!
//! A focus re-renders the roster for every subscriber on every change, so this writes bytes
//! straight into one pre-sized buffer: no serde, no intermediate tree, no `format!`. Elements are
//! written in schema order (RFC 4575 §6 uses `xs:sequence`, so order matters to validating
//! receivers); absent (`None`/empty) elements are omitted. Output is compact (no indentation):
//! NOTIFY bodies often travel over UDP, where every byte counts.

use bytes::Bytes;

use super::datetime::format_rfc3339;
use super::escape::push_escaped;
use super::model::{
    AvailableMedia, ConferenceDescription, ConferenceInfo, ConferenceState, Endpoint, Execution,
    HostInfo, Media, SipDialogInfo, UriEntry, User, Users, FOCUS_NAMESPACE, NAMESPACE,
};

/// Appends the XML document for `doc` to `out`.
pub fn render(doc: &ConferenceInfo, out: &mut Vec<u8>) {
    out.reserve(estimate(doc));
    open_root(doc, out);
    Writer { out }.u32(doc.version);
    children(doc, out);
}

/// A document rendered once for many NOTIFYs: all of it but the root's `version`, which is
/// each subscriber's own (RFC 4575 §4.1), given when a copy is made.
#[derive(Debug, Clone)]
pub struct Unversioned {
    /// Up to the opening quote of `version`.
    head: Bytes,
    /// From its closing quote to the end.
    tail: Bytes,
}

impl Unversioned {
    /// Renders `doc` with its version left open (`doc.version` is not used).
    pub fn render(doc: &ConferenceInfo) -> Unversioned {
        let mut head = Vec::with_capacity(256 + doc.entity.len());
        open_root(doc, &mut head);
        let mut tail = Vec::with_capacity(estimate(doc));
        children(doc, &mut tail);
        Unversioned {
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        }
    }

    /// The document with `version` as the root's version.
    pub fn with_version(&self, version: u32) -> Bytes {
        let mut out = Vec::with_capacity(self.head.len() + self.tail.len() + 10);
        out.extend_from_slice(&self.head);
        Writer { out: &mut out }.u32(version);
        out.extend_from_slice(&self.tail);
        Bytes::from(out)
    }
}

/// The XML declaration and the root's start tag up to the value of its `version`.
fn open_root(doc: &ConferenceInfo, out: &mut Vec<u8>) {
    let mut w = Writer { out };
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info xmlns=\"");
    w.raw(NAMESPACE);
    w.raw("\"");
    w.attr("entity", &doc.entity);
    w.attr("state", doc.state.as_str());
    w.raw(" version=\"");
}

/// The rest of the document after the value of the root's `version`.
fn children(doc: &ConferenceInfo, out: &mut Vec<u8>) {
    let mut w = Writer { out };
    w.raw("\">");
    if let Some(d) = &doc.description {
        w.description(d);
    }
    if let Some(h) = &doc.host_info {
        w.host_info(h);
    }
    if let Some(s) = &doc.conference_state {
        w.conference_state(s);
    }
    if let Some(u) = &doc.users {
        w.users(u);
    }
    w.raw("</conference-info>");
}

/// Renders `doc` into a fresh buffer, ready to be shared by every NOTIFY that carries it.
pub fn to_bytes(doc: &ConferenceInfo) -> Bytes {
    let mut out = Vec::new();
    render(doc, &mut out);
    Bytes::from(out)
}

/// A cheap upper-ish guess of the output size, so rendering a large roster never reallocates.
fn estimate(doc: &ConferenceInfo) -> usize {
    let mut n = 256 + doc.entity.len();
    if doc.description.is_some() {
        n += 512;
    }
    if doc.host_info.is_some() {
        n += 256;
    }
    if let Some(users) = &doc.users {
        for u in &users.users {
            n += 160 + u.entity.len() + u.display_text.as_ref().map_or(0, String::len);
            n += 48 * (u.roles.len() + u.associated_aors.len());
            for e in &u.endpoints {
                n += 320 + e.entity.len() + 120 * e.media.len();
            }
        }
    }
    n
}

/// Thin wrapper so each element type gets a short method.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn open(&mut self, tag: &str) {
        self.out.push(b'<');
        self.raw(tag);
        self.out.push(b'>');
    }

    fn close(&mut self, tag: &str) {
        self.raw("</");
        self.raw(tag);
        self.out.push(b'>');
    }

    /// ` name="value"` with the value escaped.
    fn attr(&mut self, name: &str, value: &str) {
        self.out.push(b' ');
        self.raw(name);
        self.raw("=\"");
        push_escaped(self.out, value, true);
        self.out.push(b'"');
    }

    fn text(&mut self, tag: &str, value: &str) {
        self.open(tag);
        push_escaped(self.out, value, false);
        self.close(tag);
    }

    fn opt_text(&mut self, tag: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.text(tag, v);
        }
    }

    fn token(&mut self, tag: &str, token: Option<&'static str>) {
        if let Some(t) = token {
            self.open(tag);
            self.raw(t);
            self.close(tag);
        }
    }

    /// An `xs:list`: items joined by single spaces.
    fn list(&mut self, tag: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        self.open(tag);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b' ');
            }
            push_escaped(self.out, item, false);
        }
        self.close(tag);
    }

    fn u32(&mut self, v: u32) {
        let mut buf = [0u8; 10];
        let mut i = buf.len();
        let mut v = v;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&buf[i..]);
    }

    fn opt_u32(&mut self, tag: &str, v: Option<u32>) {
        if let Some(v) = v {
            self.open(tag);
            self.u32(v);
            self.close(tag);
        }
    }

    fn opt_bool(&mut self, tag: &str, v: Option<bool>) {
        if let Some(v) = v {
            self.token(tag, Some(if v { "true" } else { "false" }));
        }
    }

    fn description(&mut self, d: &ConferenceDescription) {
        self.open("conference-description");
        self.opt_text("display-text", &d.display_text);
        self.opt_text("subject", &d.subject);
        self.opt_text("free-text", &d.free_text);
        self.list("keywords", &d.keywords);
        self.uris("conf-uris", &d.conf_uris);
        self.uris("service-uris", &d.service_uris);
        self.opt_u32("maximum-user-count", d.maximum_user_count);
        if !d.available_media.is_empty() {
            self.open("available-media");
            for m in &d.available_media {
                self.available_media(m);
            }
            self.close("available-media");
        }
        self.close("conference-description");
    }

    fn available_media(&mut self, m: &AvailableMedia) {
        self.raw("<entry");
        self.attr("label", &m.label);
        self.out.push(b'>');
        self.opt_text("display-text", &m.display_text);
        self.text("type", &m.media_type);
        self.token("status", m.status.map(|s| s.as_str()));
        self.close("entry");
    }

    /// A `uris-type` list; the schema requires at least one entry, so empty means absent.
    fn uris(&mut self, tag: &str, entries: &[UriEntry]) {
        if entries.is_empty() {
            return;
        }
        self.open(tag);
        for e in entries {
            self.open("entry");
            self.text("uri", &e.uri);
            self.opt_text("display-text", &e.display_text);
            self.opt_text("purpose", &e.purpose);
            self.close("entry");
        }
        self.close(tag);
    }

    fn host_info(&mut self, h: &HostInfo) {
        self.open("host-info");
        self.opt_text("display-text", &h.display_text);
        self.opt_text("web-page", &h.web_page);
        self.uris("uris", &h.uris);
        self.close("host-info");
    }

    fn conference_state(&mut self, s: &ConferenceState) {
        self.open("conference-state");
        self.opt_u32("user-count", s.user_count);
        self.opt_bool("active", s.active);
        self.opt_bool("locked", s.locked);
        self.close("conference-state");
    }

    fn users(&mut self, u: &Users) {
        self.raw("<users");
        self.attr("state", u.state.as_str());
        self.out.push(b'>');
        for user in &u.users {
            self.user(user);
        }
        self.close("users");
    }

    fn user(&mut self, u: &User) {
        self.raw("<user");
        self.attr("entity", &u.entity);
        self.attr("state", u.state.as_str());
        self.out.push(b'>');
        self.opt_text("display-text", &u.display_text);
        self.uris("associated-aors", &u.associated_aors);
        if !u.roles.is_empty() {
            self.open("roles");
            for r in &u.roles {
                self.text("entry", r);
            }
            self.close("roles");
        }
        self.list("languages", &u.languages);
        self.opt_text("cascaded-focus", &u.cascaded_focus);
        for e in &u.endpoints {
            self.endpoint(e);
        }
        self.close("user");
    }

    fn endpoint(&mut self, e: &Endpoint) {
        self.raw("<endpoint");
        self.attr("entity", &e.entity);
        self.attr("state", e.state.as_str());
        if e.unverified {
            self.raw(" xmlns:cpmf=\"");
            self.raw(FOCUS_NAMESPACE);
            self.raw("\" cpmf:verified=\"false\"");
        }
        self.out.push(b'>');
        self.opt_text("display-text", &e.display_text);
        self.execution("referred", &e.referred);
        self.token("status", e.status.map(|s| s.as_str()));
        self.token("joining-method", e.joining_method.map(|s| s.as_str()));
        self.execution("joining-info", &e.joining_info);
        self.token(
            "disconnection-method",
            e.disconnection_method.map(|s| s.as_str()),
        );
        self.execution("disconnection-info", &e.disconnection_info);
        for m in &e.media {
            self.media(m);
        }
        if let Some(c) = &e.call_info {
            self.call_info(c);
        }
        self.close("endpoint");
    }

    fn execution(&mut self, tag: &str, x: &Option<Execution>) {
        let Some(x) = x else { return };
        self.open(tag);
        if let Some(when) = x.when {
            self.open("when");
            format_rfc3339(when, self.out);
            self.close("when");
        }
        self.opt_text("reason", &x.reason);
        self.opt_text("by", &x.by);
        self.close(tag);
    }

    fn media(&mut self, m: &Media) {
        self.raw("<media");
        self.attr("id", &m.id);
        self.out.push(b'>');
        self.opt_text("display-text", &m.display_text);
        self.opt_text("type", &m.media_type);
        self.opt_text("label", &m.label);
        self.opt_text("src-id", &m.src_id);
        self.token("status", m.status.map(|s| s.as_str()));
        self.close("media");
    }

    fn call_info(&mut self, c: &SipDialogInfo) {
        self.open("call-info");
        self.open("sip");
        self.opt_text("display-text", &c.display_text);
        self.text("call-id", &c.call_id);
        self.text("from-tag", &c.from_tag);
        self.text("to-tag", &c.to_tag);
        self.close("sip");
        self.close("call-info");
    }
}
