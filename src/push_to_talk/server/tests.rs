//! The listener over real loopback TCP: binding by the first message, Error 1 for an unknown
//! conference, codec errors answered, replies written back, close reported, bind timeout.

use super::*;
use std::io::{Read, Write};
use std::sync::Mutex;

/// Records what the listener hands over, and echoes a HelloAck for every Hello.
struct Recorder(Mutex<std::sync::mpsc::Sender<(u64, u16, Option<Message>)>>);

impl FloorSink for Recorder {
    fn message(&self, conn: &Connection, user: u16, message: Message) -> Result<(), Busy> {
        if message.primitive == Primitive::Hello {
            conn.send(Message::new(
                1,
                Primitive::HelloAck,
                message.conference_id,
                message.transaction_id,
                user,
            ));
        }
        let _ = self
            .0
            .lock()
            .unwrap()
            .send((conn.id(), user, Some(message)));
        Ok(())
    }

    fn closed(&self, conn: &Connection, user: u16) {
        let _ = self.0.lock().unwrap().send((conn.id(), user, None));
    }
}

fn settings() -> ServerSettings {
    ServerSettings {
        max_connections: 8,
        bind_timeout: Duration::from_millis(300),
        max_message: 1024,
        write_queue: 16,
    }
}

fn bytes(msg: &Message) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode(msg, &mut b).unwrap();
    b.to_vec()
}

/// Reads one message (blocking, with the socket's timeout).
fn read_message(s: &mut std::net::TcpStream) -> Option<Message> {
    let mut decoder = StreamDecoder::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Ok(Some(m)) = decoder.decode(&mut buf) {
            return Some(m);
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn error_code(msg: &Message) -> Option<ErrorCode> {
    msg.attributes.iter().find_map(|a| match a {
        Attribute::ErrorCode { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn binds_by_the_first_message_and_writes_replies() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = CancellationToken::new();
    let (server, listener) = rt
        .block_on(async { FloorServer::bind("127.0.0.1:0".parse().unwrap(), settings()) })
        .unwrap();
    rt.spawn(server.clone().run(listener, cancel.clone()));
    let (tx, rx) = std::sync::mpsc::channel();
    let conf = server.register(Arc::new(Recorder(Mutex::new(tx))));
    assert_ne!(conf, 0);
    assert_eq!(server.conferences(), 1);
    let wait = Duration::from_secs(5);

    // An unknown conference: Error 1, then the connection closes.
    let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let hello = |conf: u32, user: u16| Message::new(1, Primitive::Hello, conf, 5, user);
    s.write_all(&bytes(&hello(conf.wrapping_add(1), 3)))
        .unwrap();
    let e = read_message(&mut s).expect("an Error");
    assert_eq!(e.primitive, Primitive::Error);
    assert_eq!(error_code(&e), Some(ErrorCode::ConferenceDoesNotExist));
    assert_eq!(e.transaction_id, 5);
    assert!(read_message(&mut s).is_none(), "closed");

    // A known one: bound to user 3; the session's reply comes back.
    let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(&bytes(&hello(conf, 3))).unwrap();
    let ack = read_message(&mut s).expect("HelloAck");
    assert_eq!((ack.primitive, ack.user_id), (Primitive::HelloAck, 3));
    let (id, user, msg) = rx.recv_timeout(wait).unwrap();
    assert_eq!((user, msg.unwrap().primitive), (3, Primitive::Hello));
    // Garbage that still frames: answered with the codec's Error, connection kept.
    let mut bad = bytes(&hello(conf, 3));
    bad.extend_from_slice(&[
        0x20, 0x01, 0x00, 0x01, 0, 0, 0, 1, 0, 9, 0, 3, 0xff, 0x04, 0, 0,
    ]);
    s.write_all(&bad[12..]).unwrap();
    let e = read_message(&mut s).expect("an Error");
    assert_eq!(error_code(&e), Some(ErrorCode::UnknownMandatoryAttribute));
    // Closing is reported once, for the bound user.
    drop(s);
    let (closed_id, user, msg) = rx.recv_timeout(wait).unwrap();
    assert_eq!((closed_id, user, msg), (id, 3, None));

    // A connection that never speaks is closed after the bind timeout.
    let mut quiet = std::net::TcpStream::connect(server.local_addr()).unwrap();
    quiet.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(quiet.read(&mut b).unwrap_or(0), 0);

    // A stream that cannot be framed (wrong version) is answered and closed.
    let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut v2 = bytes(&hello(conf, 3));
    v2[0] = 2 << 5;
    s.write_all(&v2).unwrap();
    let e = read_message(&mut s).expect("an Error");
    assert_eq!(error_code(&e), Some(ErrorCode::UnsupportedVersion));
    assert!(read_message(&mut s).is_none(), "closed");

    server.unregister(conf);
    assert_eq!(server.conferences(), 0);
    cancel.cancel();
}
