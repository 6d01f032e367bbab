//! `--chown=user:group` names resolved through the image's own
//! `/etc/passwd` and `/etc/group`, as Docker resolves them.

use std::path::Path;

use crate::BuildError;

/// The uid and gid `spec` (`user`, `uid`, `user:group`, `uid:gid`) names
/// in the root `rootfs`. A user without a group takes the user's primary
/// group when it is a name found in passwd, else the same number.
pub fn resolve_owner(spec: &str, rootfs: &Path) -> Result<(u32, u32), BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_table(rootfs, "etc/passwd");
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => {
            let primary = passwd
                .iter()
                .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
                .and_then(|f| f.get(3).and_then(|g| g.parse().ok()));
            (uid, primary.unwrap_or(uid))
        }
        Err(_) => {
            let fields = passwd
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(user))
                .ok_or_else(|| {
                    BuildError::invalid(format!(
                        "unable to find user {user}: no matching entries in passwd file"
                    ))
                })?;
            let number = |i: usize| fields.get(i).and_then(|v| v.parse::<u32>().ok());
            match (number(2), number(3)) {
                (Some(uid), Some(gid)) => (uid, gid),
                _ => {
                    return Err(BuildError::invalid(format!(
                        "invalid passwd entry for user {user}"
                    )))
                }
            }
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_table(rootfs, "etc/group")
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(g))
                .and_then(|f| f.get(2).and_then(|v| v.parse().ok()))
                .ok_or_else(|| {
                    BuildError::invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// The colon-separated lines of a file in the root; empty when it is
/// missing or is a symlink (never followed out of the root).
fn read_table(rootfs: &Path, rel: &str) -> Vec<Vec<String>> {
    let path = rootfs.join(rel);
    let is_plain = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    if !is_plain {
        return Vec::new();
    }
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\napp:x:1001:\n")
            .expect("group");
        dir
    }

    #[test]
    fn names_and_numbers_resolve_through_the_image_files() {
        let dir = root();
        assert_eq!(resolve_owner("app", dir.path()).expect("app"), (1000, 1001));
        assert_eq!(resolve_owner("app:staff", dir.path()).expect("app:staff"), (1000, 50));
        assert_eq!(resolve_owner("1000", dir.path()).expect("1000"), (1000, 1001));
        assert_eq!(resolve_owner("42:43", dir.path()).expect("42:43"), (42, 43));
        assert_eq!(resolve_owner("42", dir.path()).expect("42"), (42, 42));
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let dir = root();
        let err = resolve_owner("nobody", dir.path()).expect_err("unknown user");
        assert!(err.to_string().contains("unable to find user nobody"), "{err}");
        let err = resolve_owner("app:wheel", dir.path()).expect_err("unknown group");
        assert!(err.to_string().contains("unable to find group wheel"), "{err}");
    }
}
