use super::http::{parse_response, HttpError, Response, MAX_RESPONSE};
use super::*;
use proptest::prelude::*;

#[test]
fn urls_that_are_accepted() {
    for (text, shown) in [
        (
            "http://127.0.0.1:8080/credit",
            "http://127.0.0.1:8080/credit",
        ),
        ("HTTP://credit.example.com", "http://credit.example.com/"),
        (
            "http://cc.example.com?op=check",
            "http://cc.example.com/?op=check",
        ),
        ("http://[::1]:9000/c/d", "http://[::1]:9000/c/d"),
    ] {
        let url = HttpUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(url.to_string(), shown);
    }
}

#[test]
fn urls_that_are_refused_and_why() {
    for (text, why) in [
        ("https://cc.example.com/", UrlError::Scheme),
        ("ftp://cc/", UrlError::Scheme),
        ("http:/", UrlError::Scheme),
        ("", UrlError::Scheme),
        ("http://", UrlError::Host),
        ("http:///path", UrlError::Host),
        ("http://user:pw@cc/", UrlError::UserInfo),
        ("http://cc:0/", UrlError::Port),
        ("http://cc:65536/", UrlError::Port),
        ("http://cc:/", UrlError::Port),
        ("http://[::1/", UrlError::Host),
        ("http://[nope]:80/", UrlError::Host),
        ("http://c c/", UrlError::Host),
        ("http://cc/a b", UrlError::Path),
        ("http://cc/a\r\nX-Injected: 1", UrlError::Path),
    ] {
        assert_eq!(HttpUrl::parse(text), Err(why), "{text:?}");
    }
}

fn ok(body: &[u8]) -> Response {
    Response {
        status: 200,
        reason: "OK".into(),
        body: body.to_vec(),
    }
}

#[test]
fn bodies_framed_by_length_chunks_or_close() {
    let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcdEXTRA";
    assert_eq!(parse_response(by_length, false), Ok(Some(ok(b"abcd"))));
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked, false), Ok(Some(ok(b"abcde"))));
    let by_close = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\nabc";
    assert_eq!(parse_response(by_close, false), Ok(None));
    assert_eq!(parse_response(by_close, true), Ok(Some(ok(b"abc"))));
    let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz";
    assert_eq!(parse_response(interim, false), Ok(Some(ok(b"z"))));
    let no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        parse_response(no_content, false).unwrap().unwrap().status,
        204
    );
}

#[test]
fn incomplete_responses_wait_for_more_and_fail_at_the_end() {
    let full = b"HTTP/1.1 402 Payment Required\r\nContent-Length: 10\r\n\r\n0123456789";
    for cut in 0..full.len() {
        assert_eq!(
            parse_response(&full[..cut], false),
            Ok(None),
            "cut at {cut}"
        );
        assert_eq!(
            parse_response(&full[..cut], true),
            Err(HttpError::Truncated),
            "cut at {cut}"
        );
    }
    let r = parse_response(full, true).unwrap().unwrap();
    assert_eq!((r.status, r.reason.as_str()), (402, "Payment Required"));
}

#[test]
fn malformed_responses_are_errors() {
    for text in [
        &b"garbage\r\n\r\n"[..],
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd",
        b"HTTP/1.1 200 \xff\r\n\r\n",
    ] {
        assert!(
            matches!(parse_response(text, true), Err(HttpError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    let huge = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_RESPONSE + 1
    );
    assert_eq!(
        parse_response(huge.as_bytes(), false),
        Err(HttpError::TooLarge)
    );
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), eof: bool) {
        let _ = parse_response(&bytes, eof);
    }

    #[test]
    fn head_like_noise_parses_without_panic(
        status in 0u16..1000,
        headers in proptest::collection::vec("[A-Za-z-]{1,16}: [ -~]{0,24}", 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        eof: bool,
    ) {
        let mut text = format!("HTTP/1.1 {status} X\r\n").into_bytes();
        for h in &headers {
            text.extend_from_slice(h.as_bytes());
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"\r\n");
        text.extend_from_slice(&body);
        let _ = parse_response(&text, eof);
    }

    #[test]
    fn a_response_split_anywhere_is_the_same_response(body in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..400) {
        let mut text = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        text.extend_from_slice(&body);
        let cut = cut.min(text.len());
        let whole = parse_response(&text, false).unwrap().unwrap();
        prop_assert_eq!(&whole.body, &body);
        if cut < text.len() {
            prop_assert_eq!(parse_response(&text[..cut], false), Ok(None));
        }
    }
}
