//! Ids: the limit on the orchestrator's ids, the shortened form in which a
//! client's id appears in log lines and error details, and the poll ids the
//! service mints.

use std::borrow::Cow;

/// The longest `workflow_id`, `task_id` or `method` an execute may carry,
/// in bytes; a longer one is refused with 422.
pub(crate) const MAX_ID_BYTES: usize = 256;

/// How many characters of a client's id a log line or an error detail shows.
const SHOWN_CHARS: usize = 64;

/// Longest orchestrator task id kept as the readable prefix of a poll id.
const MAX_PREFIX: usize = 100;

/// Random bytes in a poll id: 128 bits, 22 characters of base64url.
const RANDOM_BYTES: usize = 16;

/// `id` as a log line or an error detail shows a client's id: at most its
/// first 64 characters, then `…` when it is longer, with control characters
/// (a line break, say) replaced by `�`, so that it stays on one short line.
pub(crate) fn short(id: &str) -> Cow<'_, str> {
    let end = id.char_indices().nth(SHOWN_CHARS).map(|(end, _)| end);
    let shown = &id[..end.unwrap_or(id.len())];
    if end.is_none() && !shown.chars().any(char::is_control) {
        return Cow::Borrowed(id);
    }
    let mut out: String = shown
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if end.is_some() {
        out.push('…');
    }
    Cow::Owned(out)
}

/// A new poll id for a task the orchestrator calls `task_id`: that id's
/// URL-safe characters (at most 100) for readability, a dot, and 128 bits
/// from the operating system's random number generator in base64url, e.g.
/// `task_3f2a9c1d.qT7x0b9R-Lm2WcZ_aV4s8g`. At most 123 characters of
/// `[A-Za-z0-9_.-]`; one id tells nothing about any other, and an id from
/// before a restart names no task of this run.
///
/// Fails only when the operating system cannot provide random bytes.
pub(crate) fn poll_id(task_id: &str) -> Result<String, String> {
    let mut random = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|err| {
        format!("the operating system's random number generator failed ({err}): no poll id")
    })?;
    Ok(poll_id_from(task_id, &random))
}

fn poll_id_from(task_id: &str, random: &[u8; RANDOM_BYTES]) -> String {
    let prefix: String = task_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_PREFIX)
        .collect();
    let prefix = if prefix.is_empty() { "task" } else { &prefix };
    format!("{prefix}.{}", base64url(random))
}

/// `bytes` in unpadded base64url (RFC 4648, section 5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let (mut bits, mut held) = (0u32, 0u32);
    for &byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            out.push(char::from(ALPHABET[(bits >> held) as usize & 63]));
        }
    }
    if held > 0 {
        out.push(char::from(ALPHABET[(bits << (6 - held)) as usize & 63]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashSet;

    fn url_safe(id: &str) -> bool {
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }

    #[test]
    fn short_keeps_short_ids_and_cuts_long_ones_on_one_line() {
        assert_eq!(short("wf-1"), "wf-1");
        assert!(matches!(short("wf-1"), Cow::Borrowed(_)));
        let exactly = "x".repeat(64);
        assert_eq!(short(&exactly), exactly.as_str());
        let huge = "w".repeat(1 << 20);
        let shown = short(&huge);
        assert_eq!(shown, format!("{}…", "w".repeat(64)));
        assert_eq!(short(&"é".repeat(100)), format!("{}…", "é".repeat(64)));
        assert_eq!(short("a\nb\u{1b}[2J"), "a\u{FFFD}b\u{FFFD}[2J");
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        for (bytes, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
        ] {
            assert_eq!(base64url(bytes), encoded, "{bytes:?}");
        }
    }

    #[test]
    fn poll_ids_keep_the_task_id_and_are_url_safe_and_bounded() {
        let random = [0xa5; RANDOM_BYTES];
        assert_eq!(
            poll_id_from("task_3f2a9c1d", &random),
            "task_3f2a9c1d.paWlpaWlpaWlpaWlpaWlpQ"
        );
        assert!(poll_id_from("a/b c?", &random).starts_with("abc."));
        assert!(poll_id_from("//", &random).starts_with("task."));
        let long = poll_id(&"x/".repeat(500)).expect("random bytes");
        assert!(long.len() <= 128, "{} chars: {long}", long.len());
        assert!(long.starts_with(&format!("{}.", "x".repeat(100))), "{long}");
        assert!(url_safe(&long), "{long}");
    }

    #[test]
    fn ten_thousand_poll_ids_are_distinct_and_share_no_sequence() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| poll_id("task_same").expect("random bytes"))
            .collect();
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "a poll id was minted twice");
        let random: Vec<&str> = ids
            .iter()
            .map(|id| {
                assert!(id.len() <= 128 && url_safe(id), "{id}");
                let (prefix, random) = id.rsplit_once('.').expect("a dot");
                assert_eq!(prefix, "task_same");
                assert_eq!(random.len(), 22, "{id}");
                random
            })
            .collect();
        // Consecutive ids of a counter differ in a few trailing characters;
        // independent random ones in about 22 * 63/64 of their 22.
        for pair in random.windows(2) {
            let differing = pair[0]
                .bytes()
                .zip(pair[1].bytes())
                .filter(|(a, b)| a != b)
                .count();
            assert!(differing >= 10, "{} then {}", pair[0], pair[1]);
        }
        // Every position takes many values: no fixed run part or counter.
        for position in 0..21 {
            let values: HashSet<u8> = random.iter().map(|r| r.as_bytes()[position]).collect();
            assert!(values.len() >= 60, "position {position}: {values:?}");
        }
    }
}
