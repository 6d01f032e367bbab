//! `--user` resolved against the image's /etc/passwd and /etc/group, as
//! Docker resolves it before the container starts.

use super::oci::ResolvedUser;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    NoGroup { name: String },
}

/// Resolve `spec` (`""`, `uid`, `uid:gid`, `name`, `name:group`) and extra
/// groups (`--group-add`), reading the image's files through `read`
/// (a path like `etc/passwd` → its text, if present).
pub fn resolve(
    spec: &str,
    group_add: &[String],
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedUser, UserError> {
    let passwd = read("etc/passwd").unwrap_or_default();
    let groups = read("etc/group").unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    // passwd: name:x:uid:gid:gecos:home:shell
    let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| {
        f.len() >= 4
            && (f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part))
    });
    let (uid, mut gid, name) = match (&entry, user_part.parse::<u32>()) {
        (Some(f), _) => {
            (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0), Some(f[0].to_owned()))
        }
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(UserError::NoUser { name: user_part.to_owned() }),
    };
    let find_group = |g: &str| -> Result<u32, UserError> {
        let found = groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == g || f[2] == g))
            .and_then(|f| f[2].parse().ok());
        match (found, g.parse::<u32>()) {
            (Some(id), _) | (None, Ok(id)) => Ok(id),
            (None, Err(_)) => Err(UserError::NoGroup { name: g.to_owned() }),
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = find_group(g)?;
    }
    let mut additional = Vec::new();
    // Supplementary groups of a named user, when no group was forced.
    if let (Some(name), None) = (&name, group_part) {
        for f in groups.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !additional.contains(&id) {
                        additional.push(id);
                    }
                }
            }
        }
    }
    for g in group_add {
        let id = find_group(g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ResolvedUser { uid, gid, additional_gids: additional })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> Option<String> {
        match path {
            "etc/passwd" => {
                Some("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".into())
            }
            "etc/group" => Some("root:x:0:\nstaff:x:50:app\napp:x:1000:\n".into()),
            _ => None,
        }
    }

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(
            resolve("", &[], &files).expect("root"),
            ResolvedUser { uid: 0, gid: 0, additional_gids: vec![] }
        );
        assert_eq!(
            resolve("app", &[], &files).expect("app"),
            ResolvedUser { uid: 1000, gid: 1000, additional_gids: vec![50] }
        );
        assert_eq!(
            resolve("1000:staff", &[], &files).expect("uid:group"),
            ResolvedUser { uid: 1000, gid: 50, additional_gids: vec![] }
        );
        assert_eq!(
            resolve("4242", &[], &files).expect("unknown uid"),
            ResolvedUser { uid: 4242, gid: 0, additional_gids: vec![] }
        );
        assert_eq!(
            resolve("0", &["staff".into()], &files).expect("group-add").additional_gids,
            vec![50]
        );
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        assert_eq!(
            resolve("nobody", &[], &files).expect_err("missing").to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(matches!(resolve("app:nogroup", &[], &files), Err(UserError::NoGroup { .. })));
    }
}
