//! The syntax tree of a rule's SQL statement.

use crate::functions::Func;
use crate::value::Value;

/// A whole statement: `[SET ...] SELECT ... [FROM 'filter'] [WHERE ...]`.
#[derive(Clone, Debug)]
pub struct Statement {
    /// `SET @name = expr, ...` in order.
    pub set: Vec<(String, Expr)>,
    /// The SELECT clause.
    pub select: Select,
    /// The topic filter of FROM (None for Basic Ingest rules, which have none).
    pub from: Option<String>,
    /// The WHERE condition.
    pub where_: Option<Expr>,
}

/// What a SELECT produces.
#[derive(Clone, Debug)]
pub enum Select {
    /// `SELECT VALUE expr`: the value itself.
    Value(Expr),
    /// `SELECT item, ...`: an object.
    Items(Vec<SelectItem>),
}

/// One item of a SELECT list.
#[derive(Clone, Debug)]
pub enum SelectItem {
    /// `*`: every member of the current object.
    Star,
    /// `expr [AS a.b]`; `name` is the output path (the alias, or a derived name).
    Expr {
        /// The expression.
        expr: Expr,
        /// The output key path.
        name: Vec<String>,
    },
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `=`.
    Eq,
    /// `<>` or `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

/// The target type of `cast(x AS type)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastType {
    /// String, Nvarchar, Text, Ntext, varchar.
    String,
    /// Int, Integer.
    Int,
    /// Double: a Decimal of double precision.
    Double,
    /// Decimal (2016-03-23).
    Decimal,
    /// Bool, Boolean (2016-03-23).
    Boolean,
}

/// An expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A literal value.
    Literal(Value),
    /// `*`: the current document (the payload, or the element in a nested query).
    Star,
    /// A top-level field name.
    Field(String),
    /// `@name`: a SET variable.
    Var(String),
    /// `base.name`.
    Member(Box<Expr>, String),
    /// `base[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `[a, b]` (2016-03-23).
    Array(Vec<Expr>),
    /// `{'k': v}` (2016-03-23).
    Object(Vec<(String, Expr)>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op1 b op2 c ...` with operators of one precedence level, evaluated left to right
    /// (`((a op1 b) op2 c)`). Kept flat, never as a left-deep tree, so a long chain costs no
    /// recursion to evaluate or drop.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    /// `CASE [v] WHEN t THEN r ... [ELSE e] END`.
    Case {
        /// The operand of a simple CASE; None for a searched CASE.
        operand: Option<Box<Expr>>,
        /// `(when, then)` pairs.
        arms: Vec<(Expr, Expr)>,
        /// The ELSE result.
        default: Option<Box<Expr>>,
    },
    /// `cast(e AS type)`.
    Cast(Box<Expr>, CastType),
    /// A function call.
    Call(Func, Vec<Expr>),
    /// `(SELECT ... FROM expr [WHERE ...])` (2016-03-23).
    Subquery(Box<Subquery>),
}

/// A nested query over a part of the document.
#[derive(Clone, Debug)]
pub struct Subquery {
    /// Its SELECT clause.
    pub select: Select,
    /// What it ranges over: an array (one result per element) or an object (one result).
    pub from: Expr,
    /// Its condition, evaluated per element.
    pub where_: Option<Expr>,
}

impl Expr {
    /// The output key of an unaliased SELECT item, when the expression names one: a field
    /// (its last name), an index (its base's name) or a function call (its name).
    pub fn derived_name(&self) -> Option<String> {
        match self {
            Expr::Field(n) | Expr::Member(_, n) => Some(n.clone()),
            Expr::Var(n) => Some(n.clone()),
            Expr::Index(b, _) => b.derived_name(),
            Expr::Call(f, _) => Some(f.name().to_string()),
            Expr::Cast(..) => Some("cast".to_string()),
            _ => None,
        }
    }
}
