//! Substitution templates: `${expression}` in an action's parameters, each expression
//! evaluated against the original message (not the SELECT's output; AS aliases are not
//! visible, SET variables are).

use thiserror::Error;

use crate::SqlVersion;
use crate::ast::Expr;
use crate::error::{EvalError, SqlParseError};
use crate::eval::{Env, Variables, eval};
use crate::host::Host;
use crate::parser;
use crate::query::Message;
use crate::value::Value;

/// A template that failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `${...}` that does not parse (position: character offset in the template).
    #[error(transparent)]
    Parse(#[from] SqlParseError),
    /// An expression whose evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// What a template is evaluated against.
#[derive(Clone, Copy)]
pub struct TemplateContext<'a> {
    /// The message that triggered the rule.
    pub message: &'a Message,
    /// The context and services.
    pub host: &'a dyn Host,
    /// The rule's SQL version.
    pub version: SqlVersion,
    /// The rule's SET variables, if any.
    pub variables: Option<&'a Variables>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A parsed template, for rendering many messages.
#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses the `${...}` parts of `template`. A `$` not followed by `{` is text.
    pub fn parse(template: &str, version: SqlVersion) -> Result<Template, SqlParseError> {
        let chars: Vec<char> = template.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let start = i + 2;
                let end = closing_brace(&chars, start)
                    .ok_or_else(|| SqlParseError::new(i, "unterminated ${ in substitution template"))?;
                let src: String = chars[start..end].iter().collect();
                if src.trim().is_empty() {
                    return Err(SqlParseError::new(i, "empty ${} in substitution template"));
                }
                let e = parser::parse_expression(&src, version)
                    .map_err(|e| SqlParseError::new(e.position + start, e.message))?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Expr(e));
                i = end + 1;
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Renders the template: strings are inserted as they are, Undefined as nothing, other
    /// values in their JSON form.
    pub fn render(&self, ctx: &TemplateContext) -> Result<String, EvalError> {
        let empty = Variables::new();
        let env = Env {
            host: ctx.host,
            version: ctx.version,
            vars: ctx.variables.unwrap_or(&empty),
            raw: Some(ctx.message.raw()),
        };
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => match eval(e, ctx.message.document(), &env)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Undefined => {}
                    other => out.push_str(&crate::json::to_string(&other)),
                },
            }
        }
        Ok(out)
    }
}

/// Finds the `}` closing a `${` whose body starts at `start`, skipping braces inside
/// string literals and nested object literals.
fn closing_brace(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            q @ ('\'' | '"' | '`') => {
                i += 1;
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses and renders `template` in one step.
pub fn substitute_template(template: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    Ok(Template::parse(template, ctx.version)?.render(ctx)?)
}
