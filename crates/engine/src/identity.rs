//! The engine's id, stable across restarts (`ID` in `GET /info`).

use std::io::Read as _;
use std::path::{Path, PathBuf};

const ID_FILE: &str = "engine-id";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read engine id {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write engine id {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read `<root>/engine-id`, or create it: a random UUID (version 4), written
/// to a temp file and renamed so that it is whole or absent.
pub fn load_or_create(root: &Path) -> Result<String, IdentityError> {
    let path = root.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_uuid(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => tracing::warn!(path = %path.display(), "engine id is malformed; making a new one"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(IdentityError::Read { path, source }),
    }
    let id = random_uuid()
        .map_err(|source| IdentityError::Read { path: "/dev/urandom".into(), source })?;
    let tmp = root.join(format!(".{ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| IdentityError::Write { path, source })?;
    Ok(id)
}

fn random_uuid() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_created_once_and_kept() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let first = load_or_create(dir.path()).expect("create");
        assert!(is_uuid(&first), "{first}");
        assert_eq!(load_or_create(dir.path()).expect("load"), first);
    }
}
