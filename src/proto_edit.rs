//! Edits the shared proto file at its three `// svcgen:` markers and nowhere
//! else: every byte outside the inserted lines stays the user's.

use anyhow::{bail, Result};

use crate::render::ProtoInsertions;
use crate::spec::MethodSpec;

/// One marker: its text, the indentation the templates give it, and where
/// it belongs (for the message that tells how to restore it).
struct Marker {
    text: &'static str,
    template_indent: &'static str,
    belongs: &'static str,
}

const MESSAGES: Marker = Marker {
    text: "// svcgen:messages",
    template_indent: "",
    belongs: "at the top level, below the last request/response message",
};
const LAST_RESULT: Marker = Marker {
    text: "// svcgen:last-result",
    template_indent: "    ",
    belongs: "as the last line inside `oneof result { ... }` of `message LastResult`",
};
const RPCS: Marker = Marker {
    text: "// svcgen:rpcs",
    template_indent: "  ",
    belongs: "as the last line inside the `service` block",
};

/// Checks that each marker stands exactly once, alone on its line.
pub fn check_markers(text: &str, file: &str) -> Result<()> {
    for marker in [&MESSAGES, &LAST_RESULT, &RPCS] {
        let lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim() == marker.text)
            .map(|(index, _)| index + 1)
            .collect();
        match lines.as_slice() {
            [_] => {}
            [] => bail!(
                "{file}: the marker `{}` is missing; restore the line `{}{}` {}",
                marker.text,
                marker.template_indent,
                marker.text,
                marker.belongs
            ),
            many => bail!(
                "{file}: the marker `{}` appears {} times (lines {}); keep exactly one, {}",
                marker.text,
                many.len(),
                many.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                marker.belongs
            ),
        }
    }
    Ok(())
}

/// Refuses when the proto already defines a message or rpc that `method`
/// would add (written by hand), naming the line.
pub fn check_free(text: &str, file: &str, method: &MethodSpec) -> Result<()> {
    let wanted = [
        ("message", method.request_message.as_str()),
        ("message", method.response_message.as_str()),
        ("rpc", method.name.as_str()),
    ];
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut words = code
            .split(|c: char| c.is_whitespace() || "({;=".contains(c))
            .filter(|word| !word.is_empty());
        let (Some(first), Some(second)) = (words.next(), words.next()) else {
            continue;
        };
        let clash = wanted
            .iter()
            .find(|(keyword, name)| {
                (first == *keyword || (first == "enum" && *keyword == "message")) && second == *name
            })
            .map(|(keyword, name)| format!("{keyword} `{name}`"));
        if let Some(what) = clash {
            bail!(
                "{file} already defines {what} (line {}); rename or remove it, or pick another method name",
                number + 1
            );
        }
    }
    Ok(())
}

/// Inserts `insertions` above their markers (checked with
/// [`check_markers`] first), in the marker's indentation and the file's
/// line ending.
pub fn insert(text: &str, insertions: &ProtoInsertions, file: &str) -> Result<String> {
    check_markers(text, file)?;
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let pending = [
            (&MESSAGES, &insertions.messages),
            (&LAST_RESULT, &insertions.last_result),
            (&RPCS, &insertions.rpc),
        ]
        .into_iter()
        .find(|(marker, _)| trimmed == marker.text);
        if let Some((marker, snippet)) = pending {
            let indent = &line[..line.len() - line.trim_start().len()];
            for snippet_line in snippet.lines() {
                if !snippet_line.trim().is_empty() {
                    out.push_str(indent);
                    out.push_str(
                        snippet_line
                            .strip_prefix(marker.template_indent)
                            .unwrap_or(snippet_line),
                    );
                }
                out.push_str(newline);
            }
        }
        out.push_str(line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insertions() -> ProtoInsertions {
        ProtoInsertions {
            messages: "message FooRequest {}\n\n".to_string(),
            last_result: "    FooResponse foo = 4;\n".to_string(),
            rpc: "  rpc Foo(FooRequest) returns (FooResponse);\n".to_string(),
        }
    }

    const PROTO: &str = "message A {}\n\n// svcgen:messages\nmessage LastResult {\n  oneof result {\n    A a = 3;\n    // svcgen:last-result\n  }\n}\nservice S {\n\t// svcgen:rpcs\n}\n";

    #[test]
    fn inserts_above_each_marker_in_its_indentation() {
        let out = insert(PROTO, &insertions(), "x.proto").unwrap();
        assert_eq!(
            out,
            "message A {}\n\nmessage FooRequest {}\n\n// svcgen:messages\nmessage LastResult {\n  oneof result {\n    A a = 3;\n    FooResponse foo = 4;\n    // svcgen:last-result\n  }\n}\nservice S {\n\trpc Foo(FooRequest) returns (FooResponse);\n\t// svcgen:rpcs\n}\n"
        );
    }

    #[test]
    fn keeps_crlf_line_ends() {
        let crlf = PROTO.replace('\n', "\r\n");
        let out = insert(&crlf, &insertions(), "x.proto").unwrap();
        assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
        assert!(out.contains("FooResponse foo = 4;\r\n"));
    }

    #[test]
    fn refuses_messages_and_rpcs_the_user_already_wrote() {
        use crate::spec::{tests::input, MethodKind, ServiceSpec};
        let spec = ServiceSpec::new(input(&[("Foo", MethodKind::Long)])).unwrap();
        let foo = &spec.methods[0];
        assert!(check_free(PROTO, "x.proto", foo).is_ok());
        for (text, line) in [
            ("message FooRequest{}\n", 1),
            ("\n  message  FooResponse {\n}", 2),
            ("service S {\n  rpc Foo(A) returns (B);\n}", 2),
        ] {
            let err = check_free(text, "x.proto", foo).unwrap_err().to_string();
            assert!(err.contains(&format!("(line {line})")), "{err}");
        }
        assert!(check_free(
            "// message FooRequest {}\nmessage FooRequests {}\n",
            "x.proto",
            foo
        )
        .is_ok());
    }

    #[test]
    fn names_a_missing_or_doubled_marker_and_the_line_to_restore() {
        let missing = PROTO.replace("    // svcgen:last-result\n", "");
        let err = check_markers(&missing, "proto/x.proto")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("proto/x.proto") && err.contains("`    // svcgen:last-result`"),
            "{err}"
        );
        let doubled = PROTO.replace(
            "// svcgen:messages\n",
            "// svcgen:messages\n// svcgen:messages\n",
        );
        let err = check_markers(&doubled, "proto/x.proto")
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears 2 times (lines 3, 4)"), "{err}");
    }
}
