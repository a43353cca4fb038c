//! Failures that keep the error that caused them, so the operator's log can
//! name the whole chain (a database driver's error beneath a store's, a
//! task's panic beneath a publish's) instead of the one line that was
//! turned into text.

use std::error::Error;
use std::fmt;

/// Any error, as a cause a [`Fault`] keeps. Text converts into one too
/// (`"...".into()`, `format!(...).into()`), for failures no error lies
/// beneath.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A failure said in our words, with the error that caused it. It reads
/// `what: cause`, and its [`source`](Error::source) continues beneath the
/// cause, so a chain printed from it ([`chain`]) says each thing once.
#[derive(Debug)]
pub struct Fault {
    what: String,
    cause: BoxError,
}

impl Fault {
    pub fn new(what: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            cause: cause.into(),
        }
    }

    /// What failed, in our words.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The error that caused it, for a caller that wants to look inside
    /// (downcast it).
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.cause.as_ref()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl Error for Fault {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.source()
    }
}

/// An error and every error beneath it, `a: b: c`, for the operator's log.
/// A source whose text the line already holds is left out: many errors
/// repeat their cause's message in their own.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("driver failed")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_fault_reads_what_then_its_cause_and_keeps_the_chain() {
        let fault = Fault::new(
            "storage backend error",
            Outer(std::io::Error::other("connection reset")),
        );
        assert_eq!(fault.to_string(), "storage backend error: driver failed");
        assert_eq!(
            chain(&fault),
            "storage backend error: driver failed: connection reset"
        );
        assert!(fault.cause().downcast_ref::<Outer>().is_some());
    }

    /// An error that repeats its cause's message in its own, as database
    /// drivers' errors do.
    #[derive(Debug)]
    struct Repeating(std::io::Error);

    impl fmt::Display for Repeating {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "query failed: {}", self.0)
        }
    }

    impl Error for Repeating {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn text_is_a_cause_and_repeated_messages_are_said_once() {
        let fault = Fault::new("a stored row is invalid", "unknown role \"x\"");
        assert_eq!(chain(&fault), "a stored row is invalid: unknown role \"x\"");
        let outer = Outer(std::io::Error::other("connection reset"));
        let repeating = Fault::new(
            "storage backend error",
            Repeating(std::io::Error::other(outer)),
        );
        assert_eq!(
            chain(&repeating),
            "storage backend error: query failed: driver failed: connection reset"
        );
    }
}
