//! Unit tests of charging, one file per part: the credit client, its HTTP exchange, the
//! records and the writer.

mod credit;
mod http;
mod record;
mod writer;
