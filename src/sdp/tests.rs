//! Tests of the SDP module: real-world offers, every error path, answers, properties.

mod answer;
mod parse;
mod prop;
