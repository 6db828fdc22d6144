//! Timestamps as Lambda writes them (`2024-05-01T12:34:56.789+0000`).

pub use awscore::clock::iso8601_millis;
