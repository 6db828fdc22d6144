//! [`Query`]: a parsed rule statement and its evaluation against a message; [`Message`],
//! [`Output`] and [`Evaluation`].

use std::sync::Arc;

use crate::SqlVersion;
use crate::ast::{Select, SelectItem, Statement};
use crate::error::{EvalError, SqlParseError};
use crate::eval::{Env, Variables, eval, select};
use crate::host::Host;
use crate::json;
use crate::parser;
use crate::value::Value;

/// A parsed rule statement.
#[derive(Clone, Debug)]
pub struct Query {
    statement: Statement,
    version: SqlVersion,
}

/// An incoming payload, parsed once: a JSON document, or raw bytes when it is not JSON.
#[derive(Clone, Debug)]
pub struct Message {
    raw: Arc<[u8]>,
    doc: Value,
}

impl Message {
    /// Reads a payload: JSON when it parses as one JSON document, binary otherwise.
    pub fn new(payload: &[u8]) -> Message {
        let raw: Arc<[u8]> = Arc::from(payload);
        let doc = json::parse(payload).unwrap_or_else(|| Value::Binary(raw.clone()));
        Message { raw, doc }
    }

    /// The payload's bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The document (`Value::Binary` for a non-JSON payload).
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Whether the payload is not JSON.
    pub fn is_binary(&self) -> bool {
        matches!(self.doc, Value::Binary(_))
    }
}

/// What a rule's actions receive.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A value: the SELECT's object, or the value of `SELECT VALUE` (Undefined serializes
    /// as an empty payload).
    Value(Value),
    /// The raw payload (`SELECT *` of a non-JSON payload).
    Binary(Vec<u8>),
}

impl Output {
    /// The payload bytes: compact JSON for a value (exact digits), the raw bytes for binary.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Output::Value(v) => json::to_string(v).into_bytes(),
            Output::Binary(b) => b.clone(),
        }
    }

    /// The output as `serde_json` (numbers beyond `f64`/`i64` approximated); None for
    /// binary output and for Undefined.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Output::Value(v) => v.to_json(),
            Output::Binary(_) => None,
        }
    }

    /// The value, unless the output is binary.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Output::Value(v) => Some(v),
            Output::Binary(_) => None,
        }
    }
}

/// An evaluation that passed WHERE: the output and the SET variables (for the actions'
/// substitution templates).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// What the actions receive.
    pub output: Output,
    /// The values of the SET clause.
    pub variables: Variables,
}

impl Query {
    /// Parses a statement written for `version`.
    pub fn parse(sql: &str, version: SqlVersion) -> Result<Query, SqlParseError> {
        Ok(Query { statement: parser::parse_statement(sql, version)?, version })
    }

    /// The topic filter of FROM (None for a statement without FROM, as Basic Ingest rules
    /// may be).
    pub fn topic_filter(&self) -> Option<&str> {
        self.statement.from.as_deref()
    }

    /// The SQL version the statement was parsed for.
    pub fn version(&self) -> SqlVersion {
        self.version
    }

    /// The parsed statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// Evaluates the statement against a payload: None when WHERE is not true.
    pub fn evaluate(&self, payload: &[u8], host: &dyn Host) -> Result<Option<Output>, EvalError> {
        Ok(self.evaluate_message(&Message::new(payload), host)?.map(|e| e.output))
    }

    /// Evaluates against an already-read message, keeping the SET variables: SET first,
    /// then WHERE, then SELECT.
    pub fn evaluate_message(&self, msg: &Message, host: &dyn Host) -> Result<Option<Evaluation>, EvalError> {
        let st = &self.statement;
        let mut vars = Variables::new();
        for (name, e) in &st.set {
            let env = Env { host, version: self.version, vars: &vars, raw: Some(msg.raw()) };
            let v = eval(e, msg.document(), &env)?;
            vars.set(name.clone(), v);
        }
        let env = Env { host, version: self.version, vars: &vars, raw: Some(msg.raw()) };
        if let Some(w) = &st.where_
            && !matches!(eval(w, msg.document(), &env)?, Value::Bool(true)) {
                return Ok(None);
            }
        let output = if msg.is_binary() {
            self.binary_output(msg, &env)?
        } else {
            let v = select(&st.select, msg.document(), &env)?;
            if self.version == SqlVersion::V2015_10_08
                && matches!(st.select, Select::Value(_))
                && matches!(v, Value::Array(_))
            {
                return Err(EvalError::TopLevelArray);
            }
            Output::Value(v)
        };
        Ok(Some(Evaluation { output, variables: vars }))
    }

    /// SELECT over a binary payload: `*` alone gives the bytes; otherwise `*` may not be
    /// mixed with other items and no JSON name may be used (the evaluation reports it).
    fn binary_output(&self, msg: &Message, env: &Env) -> Result<Output, EvalError> {
        match &self.statement.select {
            Select::Items(items) if matches!(items.as_slice(), [SelectItem::Star]) => {
                Ok(Output::Binary(msg.raw().to_vec()))
            }
            Select::Value(crate::ast::Expr::Star) => Ok(Output::Binary(msg.raw().to_vec())),
            Select::Items(items)
                if items
                    .iter()
                    .any(|i| matches!(i, SelectItem::Star | SelectItem::Expr { expr: crate::ast::Expr::Star, .. })) =>
            {
                Err(EvalError::BinaryPayload("SELECT * must be the only item when the payload is not JSON".to_string()))
            }
            sel => Ok(Output::Value(select(sel, msg.document(), env)?)),
        }
    }
}
