//! The proto a node is exported with (`microservice/<node_dir>1.proto`): a
//! copy of its own proto made ready for the platform's portal. The
//! service's own proto is never changed.
//!
//! - It must be self-contained: imports are inlined ([`super::proto_inline`]).
//! - svcgen's internal rpcs (`GetLastResult`) are left out, and so are the
//!   messages only they used.
//! - For every connection, the downstream rpc's input message is named
//!   exactly like the upstream rpc's output: the upstream's definition (and
//!   the messages it uses) is copied in under a `// Mirrors` comment, the
//!   rpc takes it, and the replaced input message goes when nothing else
//!   uses it.
//!
//! The result is compiled (protox) before it is accepted.

use super::graph;
use super::proto_inline;
use super::proto_text::{Definition, ProtoText};
use super::usecase::{violation, Node, UseCase, INTERNAL_RPCS};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

/// A node's exported proto.
#[derive(Debug, Clone)]
pub struct ExportedProto {
    /// The file's text.
    pub text: String,
    /// Each operation's input message name in `text` (an upstream's output
    /// name where mirrored).
    pub inputs: BTreeMap<String, String>,
}

/// Every node's proto text, parsed, by folder name.
pub type Protos = BTreeMap<String, ProtoText>;

/// Reads every node's proto, with its imports inlined (found beside it or
/// in `includes`), and parses it.
pub fn read_all(usecase: &UseCase, includes: &[PathBuf]) -> Result<Protos> {
    let mut protos = Protos::new();
    for node in &usecase.nodes {
        let text = std::fs::read_to_string(&node.proto)
            .with_context(|| format!("cannot read {}", node.proto.display()))?;
        let flat = proto_inline::self_contained(&node.dir_name, &node.proto, &text, includes)?;
        let parsed = ProtoText::parse(&flat).map_err(|e| {
            violation(
                &node.dir_name,
                None,
                format!("{}: {e}", node.proto.display()),
            )
        })?;
        protos.insert(node.dir_name.clone(), parsed);
    }
    Ok(protos)
}

/// The exported proto of `node`.
pub fn export(usecase: &UseCase, node: &Node, protos: &Protos) -> Result<ExportedProto> {
    let own = &protos[&node.dir_name];
    let mut plan = Plan::default();
    for rpc in own
        .rpcs
        .iter()
        .filter(|r| INTERNAL_RPCS.contains(&r.name.as_str()))
    {
        plan.removed_rpcs.insert(rpc.span.start);
        plan.candidates
            .extend([rpc.input.clone(), rpc.output.clone()]);
    }
    let mut inputs = BTreeMap::new();
    for op in graph::operations(usecase, node) {
        let mirror = mirror_for(usecase, node, &op.rpc.name, protos)?;
        let input = match mirror {
            Some(m) if m.message != op.rpc.input => {
                plan.mirror(node, &op.rpc.name, own, &m)?;
                m.message
            }
            _ => op.rpc.input.clone(),
        };
        inputs.insert(op.rpc.name.clone(), input);
    }
    let text = plan.apply(node, own)?;
    compile(node, &text)?;
    Ok(ExportedProto { text, inputs })
}

/// What an operation's input must mirror: an upstream's output message.
struct Mirror<'a> {
    /// The upstream output message name.
    message: String,
    /// The upstream node.
    from: &'a str,
    /// Its definition and the messages it uses, from the upstream's proto.
    definitions: Vec<&'a Definition>,
    /// The upstream proto's text.
    text: &'a str,
}

/// The message every upstream of `node.op` sends, when it has upstreams;
/// refused when they send different messages.
fn mirror_for<'a>(
    usecase: &'a UseCase,
    node: &Node,
    op: &str,
    protos: &'a Protos,
) -> Result<Option<Mirror<'a>>> {
    let mut found: Option<(Mirror, String)> = None;
    for source in &usecase.nodes {
        for upstream in graph::operations(usecase, source) {
            if !upstream
                .connected_to
                .contains(&(node.dir_name.as_str(), op))
            {
                continue;
            }
            let proto = &protos[&source.dir_name];
            let mirror = Mirror {
                message: upstream.rpc.output.clone(),
                from: &source.dir_name,
                definitions: closure(proto, &upstream.rpc.output),
                text: &proto.text,
            };
            let origin = format!("{}.{}", source.dir_name, upstream.rpc.name);
            if let Some((first, first_origin)) = &found {
                same_message(node, op, (first, first_origin), (&mirror, &origin))?;
            } else {
                found = Some((mirror, origin));
            }
        }
    }
    Ok(found.map(|(m, _)| m))
}

fn same_message(node: &Node, op: &str, a: (&Mirror, &str), b: (&Mirror, &str)) -> Result<()> {
    let rule = if a.0.message != b.0.message {
        format!(
            "its upstreams send different messages (`{}` sends {}, `{}` sends {}); the portal needs every upstream output named like this rpc's one input",
            a.1, a.0.message, b.1, b.0.message
        )
    } else if normalised_all(a.0) != normalised_all(b.0) {
        format!(
            "its upstreams `{}` and `{}` both send {} but define it differently; the portal needs one definition",
            a.1, b.1, a.0.message
        )
    } else {
        return Ok(());
    };
    Err(violation(&node.dir_name, Some(op), rule))
}

fn normalised_all(m: &Mirror) -> Vec<String> {
    m.definitions
        .iter()
        .map(|d| normalised(&d.source(m.text)))
        .collect()
}

/// `name`'s definition and every top-level definition it uses, directly or
/// not, in file order.
fn closure<'a>(proto: &'a ProtoText, name: &str) -> Vec<&'a Definition> {
    let mut wanted = BTreeSet::from([name.to_string()]);
    let mut queue = vec![name.to_string()];
    while let Some(next) = queue.pop() {
        for used in proto
            .definition(&next)
            .map(|d| d.uses.as_slice())
            .unwrap_or(&[])
        {
            if proto.definition(used).is_some() && wanted.insert(used.clone()) {
                queue.push(used.clone());
            }
        }
    }
    proto
        .definitions
        .iter()
        .filter(|d| wanted.contains(&d.name))
        .collect()
}

/// A definition's text without comments and with whitespace collapsed.
fn normalised(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The changes to make to a node's proto text.
#[derive(Default)]
struct Plan {
    /// Rpcs left out (svcgen's internal ones), by the start of their line.
    removed_rpcs: BTreeSet<usize>,
    /// Messages that go unless something kept still uses them.
    candidates: BTreeSet<String>,
    /// Copied definitions to append: (name, text), in order.
    added: Vec<(String, String)>,
    /// New input type of a mirrored rpc, by the start of its line.
    inputs: BTreeMap<usize, String>,
}

impl Plan {
    /// Makes `op` take `mirror.message` as input, copying its definitions in.
    fn mirror(&mut self, node: &Node, op: &str, own: &ProtoText, mirror: &Mirror) -> Result<()> {
        let rpc = own
            .rpcs
            .iter()
            .find(|r| r.name == op)
            .with_context(|| format!("internal error: no rpc {op} in {}", node.dir_name))?;
        self.candidates.insert(rpc.input.clone());
        self.inputs.insert(rpc.span.start, mirror.message.clone());
        for definition in &mirror.definitions {
            self.copy(node, op, own, mirror, definition)?;
        }
        Ok(())
    }

    fn copy(
        &mut self,
        node: &Node,
        op: &str,
        own: &ProtoText,
        mirror: &Mirror,
        definition: &Definition,
    ) -> Result<()> {
        let text = &definition.source(mirror.text);
        let clash = || {
            violation(
                &node.dir_name,
                Some(op),
                format!(
                    "its input must be named `{}` like the output of `{}`, but a different `{}` is already in the exported proto; rename one of them",
                    mirror.message, mirror.from, definition.name
                ),
            )
        };
        let existing = own
            .definition(&definition.name)
            .map(|mine| mine.source(&own.text))
            .or_else(|| {
                self.added
                    .iter()
                    .find(|(n, _)| *n == definition.name)
                    .map(|(_, t)| t.clone())
            });
        if let Some(existing) = existing {
            return if normalised(&existing) == normalised(text) {
                Ok(())
            } else {
                Err(clash())
            };
        }
        let header = if definition.name == mirror.message {
            format!(
                "// Mirrors {}.{} so the portal can connect them.\n",
                mirror.from, mirror.message
            )
        } else {
            String::new()
        };
        self.added
            .push((definition.name.clone(), format!("{header}{text}")));
        Ok(())
    }

    /// The original text with the internal rpcs and unused candidates
    /// removed, every kept rpc alone on its line in the one-line form,
    /// svcgen's marker comments dropped, and the copied definitions
    /// appended. Refused when two of the edited lines overlap (a definition
    /// to drop sharing a line with another edited one).
    fn apply(self, node: &Node, own: &ProtoText) -> Result<String> {
        let text = &own.text;
        let mut edits: Vec<Edit> = own
            .rpcs
            .iter()
            .map(|rpc| {
                let kept = !self.removed_rpcs.contains(&rpc.span.start);
                let input = self.inputs.get(&rpc.span.start).unwrap_or(&rpc.input);
                let line =
                    kept.then(|| format!("rpc {}({input}) returns ({});", rpc.name, rpc.output));
                Edit {
                    what: format!("rpc {}", rpc.name),
                    range: rpc.span.clone(),
                    with: rewrite_lines(text, rpc.span.clone(), rpc.statement.clone(), line),
                }
            })
            .collect();
        for d in self.unused(own) {
            edits.push(Edit {
                what: format!(
                    "`{}`",
                    text[d.statement.clone()]
                        .split('{')
                        .next()
                        .unwrap_or("")
                        .trim()
                ),
                range: d.span.clone(),
                with: rewrite_lines(text, d.span.clone(), d.statement.clone(), None),
            });
        }
        edits.sort_by_key(|e| e.range.start);
        for pair in edits.windows(2) {
            if pair[0].range.end > pair[1].range.start {
                return Err(violation(
                    &node.dir_name,
                    None,
                    format!(
                        "{} and {} share a line in {} and the export must change one of them; put each on its own line",
                        pair[0].what,
                        pair[1].what,
                        node.proto.display()
                    ),
                ));
            }
        }
        let mut text = text.clone();
        for edit in edits.iter().rev() {
            text.replace_range(edit.range.clone(), &edit.with);
        }
        let mut out: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("// svcgen:"))
            .map(|line| format!("{line}\n"))
            .collect();
        for (_, added) in &self.added {
            out.push('\n');
            out.push_str(added);
        }
        Ok(collapse_blank_lines(&out))
    }

    /// The candidates no kept rpc or definition uses.
    fn unused<'a>(&self, own: &'a ProtoText) -> Vec<&'a Definition> {
        let mut used: BTreeSet<String> = BTreeSet::new();
        for rpc in own
            .rpcs
            .iter()
            .filter(|r| !self.removed_rpcs.contains(&r.span.start))
        {
            let input = self.inputs.get(&rpc.span.start).unwrap_or(&rpc.input);
            used.extend([input.clone(), rpc.output.clone()]);
        }
        let mut queue: Vec<String> = used.iter().cloned().collect();
        for d in &own.definitions {
            if !self.candidates.contains(&d.name) {
                queue.push(d.name.clone());
            }
        }
        for (_, added) in &self.added {
            if let Ok(parsed) = ProtoText::parse(added) {
                queue.extend(parsed.definitions.iter().flat_map(|d| d.uses.clone()));
            }
        }
        while let Some(name) = queue.pop() {
            if let Some(d) = own.definition(&name) {
                for u in &d.uses {
                    if used.insert(u.clone()) {
                        queue.push(u.clone());
                    }
                }
            }
            used.insert(name);
        }
        own.definitions
            .iter()
            .filter(|d| self.candidates.contains(&d.name) && !used.contains(&d.name))
            .collect()
    }
}

/// A change to whole lines of a node's proto text.
struct Edit {
    /// What is changed, for a refusal: `rpc Name`, `` `message Name` ``.
    what: String,
    /// The lines changed (newline included).
    range: Range<usize>,
    /// Their replacement.
    with: String,
}

/// The lines `span` of `text` with the statement `statement` in them
/// replaced by `line` (alone on its line) or, when `None`, dropped. Whatever
/// else the lines hold is kept on lines of its own: the text before the
/// statement (and the comments above the lines, then its own) above it, the
/// text after it below it, but a trailing `//` comment above it (it
/// describes the statement). A dropped statement takes its own comments
/// with it.
fn rewrite_lines(
    text: &str,
    span: Range<usize>,
    statement: Range<usize>,
    line: Option<String>,
) -> String {
    let first = super::proto_text::line_start(text, statement.start);
    let indent: String = text[first..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let comments = &text[span.start..first];
    let before = text[first..statement.start].trim();
    let after = text[statement.end..span.end].trim();
    let (comment, after) = if after.starts_with("//") {
        (after, "")
    } else {
        ("", after)
    };
    // A `/* ... */` alone before the statement is its own comment.
    let block_comment = before
        .strip_prefix("/*")
        .and_then(|b| b.strip_suffix("*/"))
        .is_some_and(|inside| !inside.contains("*/"));
    let (comments, before) = if block_comment {
        (format!("{comments}{indent}{before}\n"), "")
    } else {
        (comments.to_string(), before)
    };
    let inner = if before.ends_with('{') {
        format!("{indent}  ")
    } else {
        indent.clone()
    };
    let mut out = String::new();
    if !before.is_empty() {
        // The comments above describe what starts the line.
        out.push_str(&comments);
        out.push_str(&format!("{indent}{before}\n"));
    }
    if let Some(line) = line {
        if before.is_empty() {
            out.push_str(&comments);
        }
        if !comment.is_empty() {
            out.push_str(&format!("{inner}{comment}\n"));
        }
        out.push_str(&format!("{inner}{line}\n"));
    }
    if !after.is_empty() {
        // A closing brace closes a block the statement was inside of.
        let outer = match after.starts_with('}') {
            true => indent.strip_suffix("  ").unwrap_or(""),
            false => indent.as_str(),
        };
        out.push_str(&format!("{outer}{after}\n"));
    }
    out
}

/// No more than one blank line in a row, and none at the end.
fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        blank = if line.trim().is_empty() { blank + 1 } else { 0 };
        if blank <= 1 {
            out.push_str(line);
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Compiles the exported `text` alone: it must stand without imports.
fn compile(node: &Node, text: &str) -> Result<()> {
    let name = format!("{}1.proto", node.dir_name);
    let mut compiler = protox::Compiler::with_file_resolver(OneFile {
        name: name.clone(),
        source: text.to_string(),
    });
    compiler.open_file(&name).map(|_| ()).map_err(|err| {
        violation(
            &node.dir_name,
            None,
            format!(
                "the exported proto does not compile: {} (check {})",
                crate::cli::one_line(&err.to_string()),
                node.proto.display()
            ),
        )
    })
}

/// A resolver that knows one in-memory file.
struct OneFile {
    name: String,
    source: String,
}

impl protox::file::FileResolver for OneFile {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == self.name {
            protox::file::File::from_source(name, &self.source)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}
