//! Identifiers: every id the server issues is a UUID in canonical text form.

/// True for a canonical UUID (`8-4-4-4-12` hex digits). Ids from clients are
/// checked with this before they reach a store: anything else cannot name a
/// record, and some databases refuse such text outright (PostgreSQL rejects
/// NUL bytes), which must not turn a client's typo into a server error.
pub fn is_valid_id(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_ids() {
        assert!(is_valid_id("0196d1c2-0000-7000-8000-000000000001"));
        assert!(is_valid_id("0196D1C2-0000-7000-8000-00000000000A"));
        for bad in [
            "",
            "x",
            "\0",
            "0196d1c2-0000-7000-8000-00000000000",
            "0196d1c2_0000_7000_8000_000000000001",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
