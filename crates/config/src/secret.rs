//! Passwords read from configuration files (`redis_auth:`), wrapped so that no log line, error
//! or `{:?}` of a pool or of the whole configuration can print them: Debug shows a
//! placeholder and there is no Display. Code that must send or compare the password asks for
//! its bytes by name.

use std::fmt;

/// A password from the configuration. Debug prints `Password(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub(crate) fn new(secret: String) -> Password {
        Password(secret)
    }

    /// The password as written in the file, for sending it (AUTH) or comparing with a
    /// client's.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password's bytes, as `AUTH` carries them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::new("s3cret".to_owned());
        assert_eq!(password.expose(), "s3cret");
        assert_eq!(password.as_bytes(), b"s3cret");
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        assert!(!format!("{:#?}", Some(password)).contains("s3cret"));
    }
}
