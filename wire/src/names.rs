//! Validated names: what a sprite or a checkpoint may be called.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A sprite's name: 1-63 lowercase letters, digits and inner hyphens, so it
/// is usable as a host name label, a directory name and a URL part as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SpriteName(String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameError {
    Empty,
    TooLong,
    BadCharacter(char),
    EdgeHyphen,
    BadCheckpoint,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "a name cannot be empty"),
            NameError::TooLong => write!(f, "a name is at most 63 characters"),
            NameError::BadCharacter(c) => write!(
                f,
                "{c:?} is not allowed in a name: use lowercase letters, digits and hyphens"
            ),
            NameError::EdgeHyphen => write!(f, "a name cannot start or end with a hyphen"),
            NameError::BadCheckpoint => write!(f, "a checkpoint id looks like v0, v1, v2, ..."),
        }
    }
}

impl std::error::Error for NameError {}

impl SpriteName {
    pub fn parse(s: &str) -> Result<SpriteName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 63 {
            return Err(NameError::TooLong);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadCharacter(c));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::EdgeHyphen);
        }
        Ok(SpriteName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpriteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SpriteName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpriteName::parse(s)
    }
}

impl TryFrom<String> for SpriteName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SpriteName::parse(&s)
    }
}

impl From<SpriteName> for String {
    fn from(n: SpriteName) -> String {
        n.0
    }
}

/// A checkpoint's id within its sprite: `v0`, `v1`, ... in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CheckpointId(pub u32);

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for CheckpointId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('v').ok_or(NameError::BadCheckpoint)?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::BadCheckpoint);
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(NameError::BadCheckpoint);
        }
        digits
            .parse()
            .map(CheckpointId)
            .map_err(|_| NameError::BadCheckpoint)
    }
}

impl TryFrom<String> for CheckpointId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CheckpointId> for String {
    fn from(c: CheckpointId) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprite_names() {
        for ok in ["a", "web-1", "0day", &"x".repeat(63)] {
            assert!(SpriteName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(SpriteName::parse(""), Err(NameError::Empty));
        assert_eq!(SpriteName::parse(&"x".repeat(64)), Err(NameError::TooLong));
        assert_eq!(SpriteName::parse("-a"), Err(NameError::EdgeHyphen));
        assert_eq!(SpriteName::parse("a-"), Err(NameError::EdgeHyphen));
        for bad in ["A", "a_b", "a/b", "..", "a.b", "a b", "é"] {
            assert!(
                matches!(SpriteName::parse(bad), Err(NameError::BadCharacter(_))),
                "{bad}"
            );
        }
        let n: SpriteName = serde_json::from_str("\"dev\"").unwrap();
        assert_eq!(n.as_str(), "dev");
        assert!(serde_json::from_str::<SpriteName>("\"../etc\"").is_err());
    }

    #[test]
    fn checkpoint_ids() {
        assert_eq!("v0".parse::<CheckpointId>(), Ok(CheckpointId(0)));
        assert_eq!("v12".parse::<CheckpointId>(), Ok(CheckpointId(12)));
        for bad in ["", "v", "1", "v01", "v-1", "v1a", "v9999999999", "V1"] {
            assert!(bad.parse::<CheckpointId>().is_err(), "{bad}");
        }
        assert_eq!(CheckpointId(3).to_string(), "v3");
    }
}
