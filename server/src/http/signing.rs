//! Short signed strings (HMAC-SHA256) for the sprite URL hand-off: a ticket
//! the app origin gives a signed-in member, and the cookie the sprite's own
//! host sets from it. The key lives in `<data dir>/server.key` (mode 0600),
//! so both survive a restart of the server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct Key(Arc<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn random() -> Key {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Key(Arc::new(k))
    }

    /// The key at `path`, made on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Key> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                return Ok(Key(Arc::new(k)));
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Key::random();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&key.0[..])?;
        f.sync_all()?;
        Ok(key)
    }

    fn mac(&self, purpose: &str, fields: &[&str]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("any key length");
        mac.update(purpose.as_bytes());
        for f in fields {
            mac.update(b"\0");
            mac.update(f.as_bytes());
        }
        mac
    }

    /// `fields` joined by dots, then the signature. Fields hold no dots.
    pub fn sign(&self, purpose: &str, fields: &[&str]) -> String {
        debug_assert!(fields.iter().all(|f| !f.contains('.')));
        let tag = hex::encode(self.mac(purpose, fields).finalize().into_bytes());
        format!("{}.{tag}", fields.join("."))
    }

    /// The fields of a string [`sign`](Self::sign) made for `purpose`, if
    /// its signature holds.
    pub fn verify(&self, purpose: &str, signed: &str) -> Option<Vec<String>> {
        let (body, tag) = signed.rsplit_once('.')?;
        let fields: Vec<&str> = body.split('.').collect();
        let tag = hex::decode(tag).ok()?;
        self.mac(purpose, &fields).verify_slice(&tag).ok()?;
        Some(fields.into_iter().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_hold_only_for_their_key_purpose_and_fields() {
        let k = Key::random();
        let s = k.sign("ticket", &["abc", "42"]);
        assert_eq!(
            k.verify("ticket", &s),
            Some(vec!["abc".into(), "42".into()])
        );
        assert_eq!(k.verify("cookie", &s), None);
        assert_eq!(Key::random().verify("ticket", &s), None);
        let forged = s.replacen("42", "43", 1);
        assert_eq!(k.verify("ticket", &forged), None);
        assert_eq!(k.verify("ticket", "garbage"), None);
        assert_eq!(k.verify("ticket", ""), None);
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let a = Key::load_or_create(&path).unwrap();
        let b = Key::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(Key::load_or_create(&path).is_err());
    }
}
