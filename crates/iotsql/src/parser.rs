//! The recursive-descent parser: tokens → [`Statement`], with the version rules of
//! 2015-10-08 (no literals, nested queries, SET or newer functions).
//!
//! Precedence, loosest first: `OR`; `AND`; `NOT`; comparisons (`= <> != < <= > >=`);
//! `+ -`; `* / %`; unary `-`; then `.name` and `[index]` after a primary.

use crate::SqlVersion;
use crate::ast::{BinOp, CastType, Expr, Select, SelectItem, Statement, Subquery};
use crate::error::SqlParseError;
use crate::functions::Func;
use crate::json;
use crate::lexer::{Tok, Token, lex};
use crate::value::Value;

/// Words that end an expression or start a clause; they cannot name a field unquoted.
const RESERVED: &[&str] =
    &["SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END", "SET"];

/// Deepest expression nesting accepted (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 64;

/// Longest statement or template accepted, in bytes (AWS IoT caps a rule's SQL statement; this
/// bound keeps parsing and the expression tree small whatever the caller sends).
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// A flat chain of one precedence level, or the operand alone.
fn chain(first: Expr, rest: Vec<(BinOp, Expr)>) -> Expr {
    if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) }
}

/// Parses a whole statement.
pub fn parse_statement(src: &str, version: SqlVersion) -> Result<Statement, SqlParseError> {
    let mut p = Parser::new(src, version, true)?;
    let st = p.statement()?;
    p.expect_eof()?;
    Ok(st)
}

/// Parses one expression (a substitution template's `${...}` body); variables are not
/// checked, since the statement that defines them is not known here.
pub fn parse_expression(src: &str, version: SqlVersion) -> Result<Expr, SqlParseError> {
    let mut p = Parser::new(src, version, false)?;
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    version: SqlVersion,
    check_vars: bool,
    vars: Vec<String>,
    depth: usize,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn new(src: &str, version: SqlVersion, check_vars: bool) -> Result<Parser, SqlParseError> {
        if src.len() > MAX_SOURCE_BYTES {
            return Err(SqlParseError::new(0, format!("the statement is {} bytes long; at most {MAX_SOURCE_BYTES} are accepted", src.len())));
        }
        Ok(Parser { toks: lex(src)?, i: 0, version, check_vars, vars: Vec::new(), depth: 0 })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, SqlParseError> {
        Err(SqlParseError::new(self.pos(), msg))
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::QuotedIdent(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Number(s, _) => format!("number {s}"),
            Tok::Var(s) => format!("@{s}"),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Eof => "end of statement".to_string(),
        }
    }

    fn at_kw(&self, kw: &str) -> bool {
        is_kw(self.peek(), kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlParseError> {
        if self.eat_kw(kw) { Ok(()) } else { self.err(format!("expected {kw} but found {}", self.describe())) }
    }

    fn at_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.at_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), SqlParseError> {
        if self.eat_punct(p) { Ok(()) } else { self.err(format!("expected '{p}' but found {}", self.describe())) }
    }

    fn expect_eof(&self) -> Result<(), SqlParseError> {
        if matches!(self.peek(), Tok::Eof) {
            Ok(())
        } else {
            self.err(format!("unexpected {} after the end of the statement", self.describe()))
        }
    }

    fn needs_2016(&self, what: &str) -> Result<(), SqlParseError> {
        if self.version == SqlVersion::V2015_10_08 {
            return self.err(format!("{what} requires SQL version 2016-03-23"));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Statement, SqlParseError> {
        let mut set = Vec::new();
        if self.at_kw("SET") {
            self.needs_2016("the SET clause")?;
            self.bump();
            loop {
                let pos = self.pos();
                let Tok::Var(name) = self.peek().clone() else {
                    return self.err(format!("expected a variable (@name) but found {}", self.describe()));
                };
                self.bump();
                if self.vars.contains(&name) {
                    return Err(SqlParseError::new(pos, format!("variable @{name} is assigned twice")));
                }
                self.expect_punct("=")?;
                let e = self.expr()?;
                self.vars.push(name.clone());
                set.push((name, e));
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        self.expect_kw("SELECT")?;
        let select = self.select_list()?;
        let from = if self.eat_kw("FROM") {
            let pos = self.pos();
            match self.bump().tok {
                Tok::Str(s) => {
                    validate_topic_filter(&s).map_err(|m| SqlParseError::new(pos, m))?;
                    Some(s)
                }
                _ => return Err(SqlParseError::new(pos, "expected a topic filter in single quotes after FROM")),
            }
        } else {
            None
        };
        let where_ = if self.eat_kw("WHERE") { Some(self.expr()?) } else { None };
        Ok(Statement { set, select, from, where_ })
    }

    fn select_list(&mut self) -> Result<Select, SqlParseError> {
        if self.at_kw("VALUE")
            && !matches!(self.peek_at(1), Tok::Eof | Tok::Punct(","))
            && !is_kw(self.peek_at(1), "FROM")
            && !is_kw(self.peek_at(1), "AS")
        {
            self.bump();
            let e = self.expr()?;
            if self.at_punct(",") {
                return self.err("SELECT VALUE takes exactly one expression");
            }
            return Ok(Select::Value(e));
        }
        let mut items = Vec::new();
        loop {
            let n = items.len() + 1;
            if self.at_punct("*") && matches!(self.peek_at(1), Tok::Punct(",") | Tok::Eof)
                || self.at_punct("*") && (is_kw(self.peek_at(1), "FROM") || is_kw(self.peek_at(1), "WHERE"))
            {
                self.bump();
                items.push(SelectItem::Star);
            } else {
                let expr = self.expr()?;
                let name = if self.eat_kw("AS") {
                    self.alias()?
                } else {
                    match expr.derived_name() {
                        Some(n) => vec![n],
                        None if matches!(expr, Expr::Star) => vec!["*".to_string()],
                        None => vec![format!("_{n}")],
                    }
                };
                items.push(SelectItem::Expr { expr, name });
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(Select::Items(items))
    }

    fn alias(&mut self) -> Result<Vec<String>, SqlParseError> {
        let mut path = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::Ident(s) if RESERVED.contains(&s.to_ascii_uppercase().as_str()) => {
                    return self.err(format!("expected a name after AS but found keyword {}", s.to_ascii_uppercase()));
                }
                Tok::Ident(s) | Tok::QuotedIdent(s) | Tok::Str(s) => {
                    self.bump();
                    path.push(s);
                }
                _ => return self.err(format!("expected a name after AS but found {}", self.describe())),
            }
            if !self.eat_punct(".") {
                return Ok(path);
            }
        }
    }

    fn enter(&mut self) -> Result<(), SqlParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        Ok(())
    }

    /// An expression (the loosest level, OR).
    fn expr(&mut self) -> Result<Expr, SqlParseError> {
        self.enter()?;
        let r = self.or_expr();
        self.depth -= 1;
        r
    }

    fn or_expr(&mut self) -> Result<Expr, SqlParseError> {
        let l = self.and_expr()?;
        let mut rest = Vec::new();
        while self.eat_kw("OR") {
            rest.push((BinOp::Or, self.and_expr()?));
        }
        Ok(chain(l, rest))
    }

    fn and_expr(&mut self) -> Result<Expr, SqlParseError> {
        let l = self.not_expr()?;
        let mut rest = Vec::new();
        while self.eat_kw("AND") {
            rest.push((BinOp::And, self.not_expr()?));
        }
        Ok(chain(l, rest))
    }

    fn not_expr(&mut self) -> Result<Expr, SqlParseError> {
        if self.eat_kw("NOT") {
            self.enter()?;
            let e = self.not_expr();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e?)));
        }
        self.cmp_expr()
    }

    fn cmp_expr(&mut self) -> Result<Expr, SqlParseError> {
        let l = self.add_expr()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::Punct("=") => BinOp::Eq,
                Tok::Punct("<>") | Tok::Punct("!=") => BinOp::Ne,
                Tok::Punct("<") => BinOp::Lt,
                Tok::Punct("<=") => BinOp::Le,
                Tok::Punct(">") => BinOp::Gt,
                Tok::Punct(">=") => BinOp::Ge,
                _ => return Ok(chain(l, rest)),
            };
            self.bump();
            rest.push((op, self.add_expr()?));
        }
    }

    fn add_expr(&mut self) -> Result<Expr, SqlParseError> {
        let l = self.mul_expr()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::Punct("+") => BinOp::Add,
                Tok::Punct("-") => BinOp::Sub,
                _ => return Ok(chain(l, rest)),
            };
            self.bump();
            rest.push((op, self.mul_expr()?));
        }
    }

    fn mul_expr(&mut self) -> Result<Expr, SqlParseError> {
        let l = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::Punct("*") => BinOp::Mul,
                Tok::Punct("/") => BinOp::Div,
                Tok::Punct("%") => BinOp::Rem,
                _ => return Ok(chain(l, rest)),
            };
            self.bump();
            rest.push((op, self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlParseError> {
        if self.at_punct("-") || self.at_punct("+") {
            let neg = self.at_punct("-");
            self.bump();
            self.enter()?;
            let e = self.unary();
            self.depth -= 1;
            let e = e?;
            if !neg {
                return Ok(e);
            }
            return Ok(match e {
                Expr::Literal(Value::Int(i)) => Expr::Literal(Value::Int(-i)),
                Expr::Literal(Value::Decimal(d)) => Expr::Literal(Value::Decimal(d.neg())),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SqlParseError> {
        let mut e = self.primary()?;
        // Each `.name` or `[i]` nests the expression one level deeper (evaluated recursively).
        let mut steps = 0;
        loop {
            if self.at_punct(".") || self.at_punct("[") {
                steps += 1;
                if self.depth + steps > MAX_DEPTH {
                    return self.err("expression nested too deeply");
                }
            }
            if self.eat_punct(".") {
                match self.peek().clone() {
                    Tok::Ident(s) if !RESERVED.contains(&s.to_ascii_uppercase().as_str()) => {
                        self.bump();
                        e = Expr::Member(Box::new(e), s);
                    }
                    Tok::QuotedIdent(s) => {
                        self.bump();
                        e = Expr::Member(Box::new(e), s);
                    }
                    _ => return self.err(format!("expected a field name after '.' but found {}", self.describe())),
                }
            } else if self.eat_punct("[") {
                let idx = self.expr()?;
                self.expect_punct("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, SqlParseError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Number(text, integral) => {
                self.bump();
                json::number_value(&text, integral)
                    .map(Expr::Literal)
                    .ok_or_else(|| SqlParseError::new(pos, format!("number {text} is out of range")))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Literal(Value::String(s)))
            }
            Tok::QuotedIdent(s) => {
                self.bump();
                Ok(Expr::Field(s))
            }
            Tok::Var(v) => {
                self.bump();
                if self.check_vars && !self.vars.contains(&v) {
                    return Err(SqlParseError::new(pos, format!("variable @{v} is not defined by SET")));
                }
                Ok(Expr::Var(v))
            }
            Tok::Punct("*") => {
                self.bump();
                Ok(Expr::Star)
            }
            Tok::Punct("(") => {
                self.bump();
                if self.at_kw("SELECT") {
                    self.needs_2016("a nested SELECT")?;
                    self.bump();
                    let select = self.select_list()?;
                    self.expect_kw("FROM")?;
                    let from = self.expr()?;
                    let where_ = if self.eat_kw("WHERE") { Some(self.expr()?) } else { None };
                    self.expect_punct(")")?;
                    return Ok(Expr::Subquery(Box::new(Subquery { select, from, where_ })));
                }
                let e = self.expr()?;
                self.expect_punct(")")?;
                Ok(e)
            }
            Tok::Punct("[") => {
                self.needs_2016("an array literal")?;
                self.bump();
                let mut items = Vec::new();
                if !self.eat_punct("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat_punct("]") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                Ok(Expr::Array(items))
            }
            Tok::Punct("{") => {
                self.needs_2016("an object literal")?;
                self.bump();
                let mut members = Vec::new();
                if !self.eat_punct("}") {
                    loop {
                        let key = match self.peek().clone() {
                            Tok::Str(s) | Tok::Ident(s) | Tok::QuotedIdent(s) => {
                                self.bump();
                                s
                            }
                            _ => return self.err(format!("expected an object key but found {}", self.describe())),
                        };
                        self.expect_punct(":")?;
                        members.push((key, self.expr()?));
                        if self.eat_punct("}") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                Ok(Expr::Object(members))
            }
            Tok::Ident(word) => self.word(word, pos),
            _ => self.err(format!("expected an expression but found {}", self.describe())),
        }
    }

    fn word(&mut self, word: String, pos: usize) -> Result<Expr, SqlParseError> {
        let upper = word.to_ascii_uppercase();
        match upper.as_str() {
            "TRUE" => {
                self.bump();
                return Ok(Expr::Literal(Value::Bool(true)));
            }
            "FALSE" => {
                self.bump();
                return Ok(Expr::Literal(Value::Bool(false)));
            }
            "NULL" => {
                self.bump();
                return Ok(Expr::Literal(Value::Null));
            }
            "CASE" => {
                self.bump();
                return self.case();
            }
            _ => {}
        }
        if RESERVED.contains(&upper.as_str()) {
            return self.err(format!("expected an expression but found keyword {upper}"));
        }
        self.bump();
        if !self.at_punct("(") {
            return Ok(Expr::Field(word));
        }
        self.bump();
        if upper == "CAST" {
            let e = self.expr()?;
            self.expect_kw("AS")?;
            let tpos = self.pos();
            let Tok::Ident(t) = self.bump().tok else {
                return Err(SqlParseError::new(tpos, "expected a type name after AS in cast"));
            };
            let ty = match t.to_ascii_lowercase().as_str() {
                "string" | "nvarchar" | "text" | "ntext" | "varchar" => CastType::String,
                "int" | "integer" => CastType::Int,
                "double" => CastType::Double,
                "decimal" | "bool" | "boolean" if self.version == SqlVersion::V2015_10_08 => {
                    return Err(SqlParseError::new(tpos, format!("cast to {t} requires SQL version 2016-03-23")));
                }
                "decimal" => CastType::Decimal,
                "bool" | "boolean" => CastType::Boolean,
                _ => return Err(SqlParseError::new(tpos, format!("unknown cast type {t}"))),
            };
            self.expect_punct(")")?;
            return Ok(Expr::Cast(Box::new(e), ty));
        }
        let Some(func) = Func::lookup(&word) else {
            return Err(SqlParseError::new(pos, format!("unknown function {word}")));
        };
        if func.since_2016() && self.version == SqlVersion::V2015_10_08 {
            return Err(SqlParseError::new(pos, format!("function {} requires SQL version 2016-03-23", func.name())));
        }
        let mut args = Vec::new();
        if !self.eat_punct(")") {
            loop {
                args.push(self.expr()?);
                if self.eat_punct(")") {
                    break;
                }
                self.expect_punct(",")?;
            }
        }
        Ok(Expr::Call(func, args))
    }

    fn case(&mut self) -> Result<Expr, SqlParseError> {
        let operand = if self.at_kw("WHEN") { None } else { Some(Box::new(self.expr()?)) };
        let mut arms = Vec::new();
        while self.eat_kw("WHEN") {
            let w = self.expr()?;
            self.expect_kw("THEN")?;
            let t = self.expr()?;
            arms.push((w, t));
        }
        if arms.is_empty() {
            return self.err(format!("CASE needs at least one WHEN clause, found {}", self.describe()));
        }
        let default = if self.eat_kw("ELSE") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_kw("END")?;
        Ok(Expr::Case { operand, arms, default })
    }
}

/// Checks an MQTT topic filter: not empty, `#` only as the whole last level, `+` only as a
/// whole level, no NUL.
pub fn validate_topic_filter(f: &str) -> Result<(), String> {
    if f.is_empty() {
        return Err("the topic filter is empty".to_string());
    }
    if f.contains('\0') {
        return Err("the topic filter contains a NUL character".to_string());
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i != levels.len() - 1) {
            return Err(format!("invalid topic filter '{f}': '#' must be the whole last level"));
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("invalid topic filter '{f}': '+' must be a whole level"));
        }
    }
    Ok(())
}
