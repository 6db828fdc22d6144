//! The AWS IoT rules engine's SQL, pure: lexer, parser, values, operators, the function
//! library and substitution templates. No I/O and no async: the rules service runs
//! [`Query::evaluate`] on each message and supplies the message's context through [`Host`].
//!
//! ```
//! use iotsql::{Query, SqlVersion, TestHost};
//! let q = Query::parse("SELECT color AS rgb FROM 'topic/subtopic' WHERE temperature > 50", SqlVersion::V2016_03_23).unwrap();
//! assert_eq!(q.topic_filter(), Some("topic/subtopic"));
//! let out = q.evaluate(br#"{"color":"red","temperature":100}"#, &TestHost::default()).unwrap().unwrap();
//! assert_eq!(out.to_bytes(), br#"{"rgb":"red"}"#);
//! ```
//!
//! Choices where AWS's pages are silent or contradict themselves:
//! - Strings are single- *or* double-quoted (the function pages write `"base64"`);
//!   `` `backquoted` `` names are fields; keywords and function names ignore case; `!=` is
//!   `<>`; there is no `||`, `IN`, `LIKE` or comment syntax. Precedence, loosest first: `OR`,
//!   `AND`, `NOT`, comparisons, `+ -`, `* / %`, unary `-`, then `.name` and `[i]`.
//! - An unaliased SELECT item is named by its last field name, its function's name, or
//!   `_N` (its 1-based position) for any other expression. `AS a.b` builds nested objects.
//! - Numbers: Int is an `i128` (integers of up to 34 digits), Decimal keeps 34 significant
//!   digits and its scale and prints like Java's `BigDecimal` (`5E-12`, `1.0E+7`); payloads
//!   are read by [`json`], which keeps every digit. Int `/` and `%` truncate; division by
//!   zero is Undefined.
//! - `bitnot(13)` is -14 (two's complement; the page's "2" is not a bitwise NOT), `get("abc",
//!   1)` is "b" (the table's 0-based rule, not the example's "a"), `concat(1)` is `1`
//!   unchanged (the table, not the example's "1"), `regexp_substr` without a match is "".
//! - SQL version 2015-10-08 rejects, at parse time, literals, nested SELECTs, SET, the
//!   functions documented from 2016-03-23 and `cast(... AS Decimal|Bool|Boolean)`; an
//!   array from `SELECT VALUE` is an [`EvalError::TopLevelArray`].

pub mod ast;
pub mod decimal;
mod error;
mod eval;
mod functions;
mod host;
pub mod json;
mod lexer;
mod ops;
mod parser;
mod query;
mod template;
mod value;

pub use error::{EvalError, HostError, SqlParseError};
pub use eval::Variables;
pub use functions::Func;
pub use host::{Host, TestHost};
pub use query::{Evaluation, Message, Output, Query};
pub use template::{Template, TemplateContext, TemplateError, substitute_template};
pub use value::{Object, Type, Value};

/// The SQL version of a rule (`awsIotSqlVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SqlVersion {
    /// `2015-10-08`: the original version (no literals, nested queries or SET, fewer
    /// functions, no top-level array output).
    V2015_10_08,
    /// `2016-03-23`: the recommended version.
    #[default]
    V2016_03_23,
    /// `beta`: treated as 2016-03-23.
    Beta,
}

impl SqlVersion {
    /// Reads an `awsIotSqlVersion` value.
    pub fn parse(s: &str) -> Option<SqlVersion> {
        match s {
            "2015-10-08" => Some(SqlVersion::V2015_10_08),
            "2016-03-23" => Some(SqlVersion::V2016_03_23),
            "beta" => Some(SqlVersion::Beta),
            _ => None,
        }
    }

    /// The `awsIotSqlVersion` text.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlVersion::V2015_10_08 => "2015-10-08",
            SqlVersion::V2016_03_23 => "2016-03-23",
            SqlVersion::Beta => "beta",
        }
    }
}

/// Parses one expression (as written in a `${...}` template) for inspection or tests.
pub fn parse_expression(src: &str, version: SqlVersion) -> Result<ast::Expr, SqlParseError> {
    parser::parse_expression(src, version)
}
