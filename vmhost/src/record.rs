//! Small JSON records on disk, replaced atomically: write a temporary file,
//! fsync it, rename it over the old one, fsync the directory. A reader sees
//! the old record or the new one, never a torn one, even after a crash.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    store(path, value, true)
}

/// Replaces the record atomically but leaves it to the kernel to write it
/// out: a crash of the process still sees the new record, a power loss may
/// see the old one. For records whose loss on power failure is harmless,
/// such as a sprite's desired phase (after a power loss no sandbox runs
/// anyway), so that sleep and wake stay in the low milliseconds.
pub fn replace<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    store(path, value, false)
}

fn store<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<()> {
    let dir = path.parent().expect("records live in a directory");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    let data = serde_json::to_vec_pretty(value).expect("records always serialize");
    let mut f = File::create(&tmp).map_err(|e| Error::path("cannot write record", &tmp, e))?;
    f.write_all(&data)
        .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
        .map_err(|e| Error::path("cannot write record", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::path("cannot replace record", path, e))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            Error::path(
                "corrupt record",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("cannot read record", path, e)),
    }
}

pub fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path("cannot remove record", path, e)),
    }
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::path("cannot sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), None);
        write(&p, &vec![1u32, 2]).unwrap();
        write(&p, &vec![3u32]).unwrap();
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), Some(vec![3]));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), None);
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        fs::write(&p, b"{not json").unwrap();
        assert!(read::<Vec<u32>>(&p).is_err());
    }
}
