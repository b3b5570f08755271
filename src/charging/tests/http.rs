use crate::charging::*;

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
        (
            "https://credit.example.com/c",
            "https://credit.example.com/c",
        ),
        ("HTTPS://[::1]:8443", "https://[::1]:8443/"),
    ] {
        let url = HttpUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(url.to_string(), shown);
        assert_eq!(url.is_https(), shown.starts_with("https"));
        assert_eq!(url.uri().unwrap().to_string(), shown);
    }
}

#[test]
fn urls_that_are_refused_and_why() {
    for (text, why) in [
        ("ftps://cc.example.com/", UrlError::Scheme),
        ("https//cc.example.com/", UrlError::Scheme),
        ("ftp://cc/", UrlError::Scheme),
        ("http:/", UrlError::Scheme),
        ("", UrlError::Scheme),
        ("http://", UrlError::Host),
        ("http:///path", UrlError::Host),
        ("http://user:pw@cc/", UrlError::UserInfo),
        ("http://cc:0/", UrlError::Port),
        ("http://cc:65536/", UrlError::Port),
        ("http://cc:/", UrlError::Port),
        ("https://cc:99999/", UrlError::Port),
        ("http://[::1/", UrlError::Host),
        ("http://[nope]:80/", UrlError::Host),
        ("http://c c/", UrlError::Host),
        ("http://cc/a b", UrlError::Path),
        ("http://cc/a\r\nX-Injected: 1", UrlError::Path),
    ] {
        assert_eq!(HttpUrl::parse(text), Err(why), "{text:?}");
    }
}
