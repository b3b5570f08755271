//! Cuts BFCP messages out of a TCP/TLS byte stream (RFC 8855 §6.1), mini-redis style: a
//! message is whole once its 12-octet COMMON-HEADER and Payload Length × 4 octets arrived, and
//! is cut without copying.

use super::error::{DecodeError, Fault};
use super::message::{Header, Message, HEADER_LEN, VERSION_RELIABLE};
use super::parse::{message, parse_payload};
use bytes::BytesMut;

/// Room for any sane floor message (a FloorStatus listing a long queue with display names)
/// while bounding what one connection makes us buffer.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// A stream decoder with a maximum message size. After an error that
/// [closes the stream](DecodeError::closes_stream) it returns that error forever.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    max_message: usize,
    failed: Option<DecodeError>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder::new(DEFAULT_MAX_MESSAGE)
    }
}

impl StreamDecoder {
    pub fn new(max_message: usize) -> StreamDecoder {
        StreamDecoder {
            max_message,
            failed: None,
        }
    }

    /// Takes the next message out of `buf`; `Ok(None)` when more bytes are needed. An error
    /// that does not close the stream has consumed its message: call again for the next.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(header) = Header::read(buf) else {
            return Ok(None);
        };
        if header.version != VERSION_RELIABLE {
            return Err(self.fail(DecodeError::UnsupportedVersion {
                header,
                supported: VERSION_RELIABLE,
            }));
        }
        let size = header.message_len();
        if size > self.max_message {
            return Err(self.fail(DecodeError::TooLarge {
                header,
                size,
                max: self.max_message,
            }));
        }
        if buf.len() < size {
            buf.reserve(size - buf.len());
            return Ok(None);
        }
        let frame = buf.split_to(size).freeze();
        if header.fragmented {
            return Err(DecodeError::Unparsable {
                header,
                fault: Fault::FragmentOverStream,
            });
        }
        let attributes = parse_payload(&header, frame.slice(HEADER_LEN..))?;
        Ok(Some(message(header, None, attributes)))
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e.clone());
        e
    }
}
