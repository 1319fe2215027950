//! A node's `.proto` read as text: its imports, its top-level messages and
//! enums (with the byte range each one spans, leading comments included)
//! and its rpcs (with the line each one is on).
//!
//! The platform's export reads rpcs line by line, so the exact text matters:
//! this is a small tokenizer and a top-level reader, not a full compiler.
//! What it cannot place (an `extend`, a stray token) is an error naming the line.

use anyhow::{bail, Result};
use std::ops::Range;

/// One top-level message or enum.
#[derive(Debug, Clone)]
pub struct Definition {
    /// Its name.
    pub name: String,
    /// Its text, from the first line of its leading comments to the end of
    /// the line of its closing brace (newline included).
    pub span: Range<usize>,
    /// The definition alone, from `message` or `enum` to its closing brace.
    pub statement: Range<usize>,
    /// Every identifier used in its body (field types among them).
    pub uses: Vec<String>,
}

impl Definition {
    /// Its own text in `text` (the file it was read from), newline ended:
    /// its leading comments and the definition when it starts its line,
    /// else the definition alone; never another statement sharing a line.
    pub fn source(&self, text: &str) -> String {
        format!("{}\n", &text[self.source_range(text)])
    }

    /// Where [`Definition::source`] is in `text` (its newline left out).
    pub fn source_range(&self, text: &str) -> Range<usize> {
        let starts_line = text[line_start(text, self.statement.start)..self.statement.start]
            .trim()
            .is_empty();
        let start = if starts_line {
            self.span.start
        } else {
            self.statement.start
        };
        start..self.statement.end
    }
}

/// One rpc of a service.
#[derive(Debug, Clone)]
pub struct RpcText {
    /// The rpc name.
    pub name: String,
    /// The input type as written.
    pub input: String,
    /// The output type as written.
    pub output: String,
    /// `stream` before the input type.
    pub input_stream: bool,
    /// `stream` before the output type.
    pub output_stream: bool,
    /// 1-based line of the `rpc` keyword.
    pub line: usize,
    /// Whether the statement is `rpc M(In) returns (Out);` on one line.
    pub one_line: bool,
    /// Whether it has an options block `{ ... }` instead of a `;`.
    pub has_body: bool,
    /// The whole line (or lines) of the statement, newline included.
    pub span: Range<usize>,
    /// The statement alone, from `rpc` to its `;` or closing brace.
    pub statement: Range<usize>,
}

/// One `import` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The imported path.
    pub path: String,
    /// Its whole line (or lines), newline included.
    pub span: Range<usize>,
    /// The statement alone, from `import` to its `;`.
    pub statement: Range<usize>,
}

/// A proto file's text and what was read from it.
#[derive(Debug, Clone)]
pub struct ProtoText {
    /// The file's text.
    pub text: String,
    /// `package`, if any.
    pub package: Option<String>,
    /// The `import` statements.
    pub imports: Vec<Import>,
    /// Every name written outside comments and strings (keywords, types,
    /// fields; dotted ones whole), with where it is.
    pub names: Vec<(Range<usize>, String)>,
    /// Top-level messages and enums, in file order.
    pub definitions: Vec<Definition>,
    /// Every rpc of every service, in file order.
    pub rpcs: Vec<RpcText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    start: usize,
    end: usize,
    line: usize,
}

impl ProtoText {
    /// Reads `text`; errors name the line.
    pub fn parse(text: &str) -> Result<ProtoText> {
        let tokens = tokenize(text)?;
        let mut reader = Reader {
            text,
            tokens: &tokens,
            at: 0,
        };
        let mut out = ProtoText {
            text: text.to_string(),
            package: None,
            imports: Vec::new(),
            names: tokens
                .iter()
                .filter(|t| is_type_name(&t.text))
                .map(|t| (t.start..t.end, t.text.clone()))
                .collect(),
            definitions: Vec::new(),
            rpcs: Vec::new(),
        };
        while let Some(token) = reader.peek() {
            match token.text.as_str() {
                "message" | "enum" => out.definitions.push(reader.definition()?),
                "service" => out.rpcs.extend(reader.service()?),
                "import" => out.imports.push(reader.import()?),
                "package" => out.package = Some(reader.package()?),
                "syntax" | "edition" | "option" => reader.skip_statement()?,
                ";" => reader.at += 1,
                other => bail!(
                    "line {}: unexpected `{other}` at the top level (expected message, enum, service, import, package, option or syntax)",
                    token.line
                ),
            }
        }
        Ok(out)
    }

    /// The definition named `name`, if top-level here.
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.name == name)
    }
}

struct Reader<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<&Token> {
        let line = self.tokens.last().map_or(1, |t| t.line);
        let token = self
            .tokens
            .get(self.at)
            .ok_or_else(|| anyhow::anyhow!("line {line}: the file ends too early"))?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, want: &str) -> Result<&Token> {
        let token = self.next()?;
        if token.text != want {
            bail!(
                "line {}: expected `{want}`, found `{}`",
                token.line,
                token.text
            );
        }
        Ok(token)
    }

    fn name(&mut self) -> Result<String> {
        let token = self.next()?;
        if !is_identifier(&token.text) {
            bail!(
                "line {}: expected a name, found `{}`",
                token.line,
                token.text
            );
        }
        Ok(token.text.clone())
    }

    fn skip_statement(&mut self) -> Result<()> {
        while self.next()?.text != ";" {}
        Ok(())
    }

    fn import(&mut self) -> Result<Import> {
        let start = self.expect("import")?.start;
        let mut path = self.next()?.text.clone();
        if path == "public" || path == "weak" {
            path = self.next()?.text.clone();
        }
        let end = self.expect(";")?.end;
        Ok(Import {
            path: path.trim_matches(['"', '\'']).to_string(),
            span: line_start(self.text, start)..line_end(self.text, end),
            statement: start..end,
        })
    }

    fn package(&mut self) -> Result<String> {
        self.expect("package")?;
        let name = self.next()?.text.clone();
        self.expect(";")?;
        Ok(name)
    }

    /// The tokens of a `{ ... }` block (the braces excluded); returns the
    /// index of the closing brace.
    fn block(&mut self) -> Result<usize> {
        let open = self.expect("{")?.line;
        let mut depth = 1;
        while depth > 0 {
            let token = self.next().map_err(|_| {
                anyhow::anyhow!("line {open}: the block opened here is never closed")
            })?;
            match token.text.as_str() {
                "{" => depth += 1,
                "}" => depth -= 1,
                _ => {}
            }
        }
        Ok(self.at - 1)
    }

    fn definition(&mut self) -> Result<Definition> {
        let first = self.at;
        self.next()?;
        let name = self.name()?;
        let body_start = self.at + 1;
        let close = self.block()?;
        let uses = self.tokens[body_start..close]
            .iter()
            .filter(|t| is_type_name(&t.text))
            .map(|t| t.text.clone())
            .collect();
        let start = line_start_with_comments(self.text, self.tokens[first].start);
        let end = line_end(self.text, self.tokens[close].end);
        Ok(Definition {
            name,
            span: start..end,
            statement: self.tokens[first].start..self.tokens[close].end,
            uses,
        })
    }

    fn service(&mut self) -> Result<Vec<RpcText>> {
        self.expect("service")?;
        self.name()?;
        self.expect("{")?;
        let mut rpcs = Vec::new();
        loop {
            let token = self.next()?.clone();
            match token.text.as_str() {
                "}" => return Ok(rpcs),
                "rpc" => rpcs.push(self.rpc(&token)?),
                "option" => self.skip_statement()?,
                ";" => {}
                other => bail!(
                    "line {}: unexpected `{other}` in a service (expected rpc or option)",
                    token.line
                ),
            }
        }
    }

    fn rpc(&mut self, keyword: &Token) -> Result<RpcText> {
        let name = self.name()?;
        let (input_stream, input) = self.rpc_type()?;
        self.expect("returns")?;
        let (output_stream, output) = self.rpc_type()?;
        let last = if self.peek().is_some_and(|t| t.text == "{") {
            self.block()?;
            self.tokens[self.at - 1].clone()
        } else {
            self.expect(";")?.clone()
        };
        let has_body = last.text == "}";
        let one_line = !has_body && last.line == keyword.line;
        let start = line_start(self.text, keyword.start);
        Ok(RpcText {
            name,
            input,
            output,
            input_stream,
            output_stream,
            line: keyword.line,
            one_line,
            has_body,
            span: start..line_end(self.text, last.end),
            statement: keyword.start..last.end,
        })
    }

    fn rpc_type(&mut self) -> Result<(bool, String)> {
        self.expect("(")?;
        let mut stream = false;
        let mut ty = self.next()?.text.clone();
        if ty == "stream" && self.peek().is_some_and(|t| t.text != ")") {
            stream = true;
            ty = self.next()?.text.clone();
        }
        self.expect(")")?;
        Ok((stream, ty))
    }
}

/// Whether `s` is a plain identifier.
pub fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` could name a type (an identifier, maybe dotted).
fn is_type_name(s: &str) -> bool {
    s.trim_start_matches('.').split('.').all(is_identifier)
}

/// Splits `text` into identifiers (dots kept inside), numbers, strings and
/// single punctuation characters, dropping whitespace and comments.
fn tokenize(text: &str) -> Result<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let start_line = line;
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        if text[i..].starts_with("/*") {
            let end = text[i + 2..]
                .find("*/")
                .ok_or_else(|| anyhow::anyhow!("line {line}: a /* comment is never closed"))?;
            line += text[i..i + 2 + end].matches('\n').count();
            i += end + 4;
            continue;
        }
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'\n') {
                    bail!("line {line}: a string is not closed on its line");
                }
                i += 1;
            }
            if i >= bytes.len() {
                bail!("line {line}: a string is never closed");
            }
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        tokens.push(Token {
            text: text[start..i].to_string(),
            start,
            end: i,
            line: start_line,
        });
    }
    Ok(tokens)
}

/// The offset where the line holding `at` starts.
pub fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |n| n + 1)
}

/// The offset just after the end of the line holding `at` (its newline included).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |n| at + n + 1)
}

/// [`line_start`], moved up over the `//` comment lines right above.
fn line_start_with_comments(text: &str, at: usize) -> usize {
    let mut start = line_start(text, at);
    while start > 0 {
        let above = line_start(text, start - 1);
        let line = text[above..start].trim();
        if line.starts_with("//") {
            start = above;
        } else if line.ends_with("*/") {
            match text[..start].rfind("/*") {
                Some(open) => start = line_start(text, open),
                None => break,
            }
        } else {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"syntax = "proto3";
package demo; // the package

/* A request,
   in a block. */
// Two lines.
message In { string a = 1; Nested n = 2; }

message Nested {
  map<string, Other> m = 1;
  /* a } in a comment */ string s = 2; // and "quotes"
}

enum Other { A = 0; }

service Demo {
  rpc One(In) returns (Nested); // trailing
  rpc Two(In)
      returns (Nested);
  rpc Three(stream In) returns (stream Nested);
  rpc Four(In) returns (Nested) { option deprecated = true; }
}
"#;

    #[test]
    fn reads_definitions_with_comments_and_uses() {
        let proto = ProtoText::parse(PROTO).unwrap();
        let names: Vec<_> = proto.definitions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["In", "Nested", "Other"]);
        let first = &proto.definitions[0];
        assert!(PROTO[first.span.clone()]
            .starts_with("/* A request,\n   in a block. */\n// Two lines.\nmessage In"));
        assert!(PROTO[first.span.clone()].ends_with("}\n"));
        assert!(first.uses.contains(&"Nested".to_string()));
        assert!(proto.definitions[1].uses.contains(&"Other".to_string()));
    }

    #[test]
    fn reads_rpcs_and_their_form() {
        let proto = ProtoText::parse(PROTO).unwrap();
        let rpcs: Vec<_> = proto
            .rpcs
            .iter()
            .map(|r| (r.name.as_str(), r.one_line, r.input_stream, r.line))
            .collect();
        assert_eq!(
            rpcs,
            [
                ("One", true, false, 17),
                ("Two", false, false, 18),
                ("Three", true, true, 20),
                ("Four", false, false, 21)
            ]
        );
        assert_eq!(proto.rpcs[0].input, "In");
        assert_eq!(proto.rpcs[0].output, "Nested");
        assert_eq!(
            &PROTO[proto.rpcs[0].statement.clone()],
            "rpc One(In) returns (Nested);"
        );
        assert_eq!(
            &PROTO[proto.rpcs[1].span.clone()],
            "  rpc Two(In)\n      returns (Nested);\n"
        );
    }

    #[test]
    fn any_truncation_is_an_error_or_a_parse_never_a_panic() {
        let text = format!(
            "{PROTO}message Ünïcode {{ string s = 1; // é\n}}\n/* \"x\" */ enum E {{ A = 0; }}\n"
        );
        for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            let _ = ProtoText::parse(&text[..end]);
        }
    }

    #[test]
    fn reads_imports_and_refuses_strays() {
        let text = "package x.y;\nimport public \"a/b.proto\";\nmessage M { a.N n = 1; }\n";
        let proto = ProtoText::parse(text).unwrap();
        assert_eq!(proto.package.as_deref(), Some("x.y"));
        assert_eq!(proto.imports.len(), 1);
        assert_eq!(proto.imports[0].path, "a/b.proto");
        assert_eq!(
            &text[proto.imports[0].span.clone()],
            "import public \"a/b.proto\";\n"
        );
        assert!(proto
            .names
            .iter()
            .any(|(r, n)| n == "a.N" && &text[r.clone()] == "a.N"));
        let err = ProtoText::parse("message M {}\nextend M {}\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 2: unexpected `extend`"),
            "{err}"
        );
        let err = ProtoText::parse("message M {\n").unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }
}
