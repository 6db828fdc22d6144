//! The lexer: SQL text → tokens, each with its character offset.

use crate::error::SqlParseError;

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A bare word: a keyword, field or function name (case kept).
    Ident(String),
    /// A `backquoted` name: always a field name, never a keyword.
    QuotedIdent(String),
    /// A string literal in single or double quotes (escapes resolved).
    Str(String),
    /// A number's text and whether it is integral (no point, no exponent).
    Number(String, bool),
    /// `@name`.
    Var(String),
    /// Punctuation or an operator: `( ) [ ] { } , . : * + - / % = <> != < <= > >=`.
    Punct(&'static str),
    /// End of input.
    Eof,
}

/// A token and where it starts (a character offset into the statement).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Character offset of its first character.
    pub pos: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, SqlParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let s = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.push(Token { tok: Tok::Ident(chars[s..i].iter().collect()), pos });
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            let mut integral = true;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                integral = false;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    integral = false;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    return Err(SqlParseError::new(i, "malformed number: exponent has no digits"));
                }
            }
            if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                return Err(SqlParseError::new(i, format!("unexpected character '{}' after number", chars[i])));
            }
            out.push(Token { tok: Tok::Number(chars[s..i].iter().collect(), integral), pos });
            continue;
        }
        match c {
            '\'' | '"' => {
                let (s, next) = string(&chars, i, c)?;
                out.push(Token { tok: Tok::Str(s), pos });
                i = next;
            }
            '`' => {
                let s = i + 1;
                let mut j = s;
                while j < chars.len() && chars[j] != '`' {
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(SqlParseError::new(pos, "unterminated quoted identifier"));
                }
                if j == s {
                    return Err(SqlParseError::new(pos, "empty quoted identifier"));
                }
                out.push(Token { tok: Tok::QuotedIdent(chars[s..j].iter().collect()), pos });
                i = j + 1;
            }
            '@' => {
                let s = i + 1;
                let mut j = s;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j == s {
                    return Err(SqlParseError::new(pos, "expected a variable name after '@'"));
                }
                if j - s > 64 {
                    return Err(SqlParseError::new(pos, "variable name longer than 64 characters"));
                }
                out.push(Token { tok: Tok::Var(chars[s..j].iter().collect()), pos });
                i = j;
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let p: &'static str = match two.as_str() {
                    "<>" => "<>",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        '(' => "(",
                        ')' => ")",
                        '[' => "[",
                        ']' => "]",
                        '{' => "{",
                        '}' => "}",
                        ',' => ",",
                        '.' => ".",
                        ':' => ":",
                        '*' => "*",
                        '+' => "+",
                        '-' => "-",
                        '/' => "/",
                        '%' => "%",
                        '=' => "=",
                        '<' => "<",
                        '>' => ">",
                        _ => return Err(SqlParseError::new(pos, format!("unexpected character '{c}'"))),
                    },
                };
                i += p.chars().count();
                out.push(Token { tok: Tok::Punct(p), pos });
            }
        }
    }
    out.push(Token { tok: Tok::Eof, pos: chars.len() });
    Ok(out)
}

/// Reads a quoted string starting at `start` (the quote); returns its text and the index
/// after the closing quote. A doubled quote stands for itself; backslash escapes `\\ \' \"
/// \n \t \r \b \f \/ \uXXXX` are resolved and any other backslash is kept as written (so
/// regular expressions such as `'\d+'` need no doubling).
fn string(chars: &[char], start: usize, quote: char) -> Result<(String, usize), SqlParseError> {
    let mut i = start + 1;
    let mut s = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(SqlParseError::new(start, "unterminated string literal"));
        };
        if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                s.push(quote);
                i += 2;
                continue;
            }
            return Ok((s, i + 1));
        }
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err(SqlParseError::new(start, "unterminated string literal"));
            };
            i += 2;
            match n {
                '\\' => s.push('\\'),
                '\'' => s.push('\''),
                '"' => s.push('"'),
                '/' => s.push('/'),
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                'b' => s.push('\u{8}'),
                'f' => s.push('\u{c}'),
                'u' => {
                    let hex: String = chars.get(i..i + 4).map(|h| h.iter().collect()).unwrap_or_default();
                    let ch = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .and_then(char::from_u32)
                        .ok_or_else(|| SqlParseError::new(i - 2, "invalid \\u escape in string literal"))?;
                    s.push(ch);
                    i += 4;
                }
                other => {
                    s.push('\\');
                    s.push(other);
                }
            }
            continue;
        }
        s.push(c);
        i += 1;
    }
}
