//! Build contexts from Git repositories (`POST /build?remote=URL#ref:dir`,
//! `kiln build https://host/repo.git#main:app`), fetched with the host's
//! `git` as dockerd does: one commit, shallow, submodules included, and the
//! `.git` directory left out of the context.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_build::{BuildError, Cancel};

/// Whether `remote` names a Git repository, by Docker's rules: `git://`,
/// `git@`, `github.com/`, or an http(s) URL whose path ends in `.git`.
pub fn is_git_url(remote: &str) -> bool {
    let repo = remote.split_once('#').map_or(remote, |(r, _)| r);
    remote.starts_with("git://")
        || remote.starts_with("git@")
        || remote.starts_with("github.com/")
        || ((repo.starts_with("https://") || repo.starts_with("http://")) && repo.ends_with(".git"))
}

/// `URL#ref:dir` split into the repository, the ref (`None`: the default
/// branch) and the directory inside it.
fn split(remote: &str) -> (String, Option<String>, String) {
    let (repo, fragment) = remote.split_once('#').unwrap_or((remote, ""));
    let (reference, dir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let repo = match repo.strip_prefix("github.com/") {
        Some(rest) => format!("https://github.com/{rest}"),
        None => repo.to_owned(),
    };
    let reference = Some(reference.to_owned()).filter(|r| !r.is_empty());
    (repo, reference, dir.to_owned())
}

/// Fetch `remote` into `dir` and return the context directory inside it.
pub fn clone(remote: &str, dir: &Path, cancel: &Cancel) -> Result<PathBuf, BuildError> {
    if !is_git_url(remote) {
        return Err(BuildError::invalid(format!(
            "unable to prepare context: remote context {remote} is not a Git repository \
             (URLs of tars and Dockerfiles are not supported yet)"
        )));
    }
    let (repo, reference, subdir) = split(remote);
    if repo.starts_with('-') || reference.as_deref().is_some_and(|r| r.starts_with('-')) {
        return Err(BuildError::invalid(format!(
            "unable to prepare context: invalid Git URL {remote}"
        )));
    }
    let checkout = dir.join("repo");
    std::fs::create_dir_all(&checkout)
        .map_err(|e| BuildError::internal(format!("cannot create {}: {e}", checkout.display())))?;
    let fetch_ref = reference.clone().unwrap_or_else(|| "HEAD".to_owned());
    let steps: [&[&str]; 5] = [
        &["init", "-q"],
        &["remote", "add", "origin", "--", &repo],
        &["fetch", "-q", "--depth", "1", "origin", "--", &fetch_ref],
        &["checkout", "-q", "FETCH_HEAD"],
        &["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"],
    ];
    for args in steps {
        if cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        git(&checkout, args, remote)?;
    }
    let _ = std::fs::remove_dir_all(checkout.join(".git"));
    let mut context = checkout.clone();
    for part in subdir.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(BuildError::invalid(format!(
                "unable to prepare context: the directory {subdir} leaves the repository"
            )));
        }
        context.push(part);
    }
    let meta = std::fs::symlink_metadata(&context).ok();
    if !meta.is_some_and(|m| m.is_dir()) {
        return Err(BuildError::invalid(format!(
            "unable to prepare context: {subdir} is not a directory in {repo}"
        )));
    }
    Ok(context)
}

/// Runs `git ARGS` in `dir`, with no prompts and only network transports
/// (no `ext::` commands, no local files of the daemon's host).
fn git(dir: &Path, args: &[&str], remote: &str) -> Result<(), BuildError> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "https:http:git:ssh")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            BuildError::invalid(format!(
                "unable to prepare context: cannot run git (install it on the daemon's host): {e}"
            ))
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed");
    Err(BuildError::invalid(format!(
        "unable to prepare context: unable to fetch {remote}: {}",
        reason.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_are_recognised_as_docker_recognises_them() {
        assert!(is_git_url("https://example.com/app.git"));
        assert!(is_git_url("https://example.com/app.git#main:dir"));
        assert!(is_git_url("git://127.0.0.1:9418/app.git"));
        assert!(is_git_url("git@github.com:o/r.git"));
        assert!(is_git_url("github.com/o/r"));
        assert!(!is_git_url("https://example.com/context.tar.gz"));
        assert!(!is_git_url("https://example.com/Dockerfile"));
    }

    #[test]
    fn fragments_name_a_ref_and_a_directory() {
        assert_eq!(
            split("https://h/r.git#v1.2:app/sub"),
            ("https://h/r.git".to_owned(), Some("v1.2".to_owned()), "app/sub".to_owned())
        );
        assert_eq!(
            split("github.com/o/r"),
            ("https://github.com/o/r".to_owned(), None, String::new())
        );
        assert_eq!(
            split("git://h/r.git#:docs"),
            ("git://h/r.git".to_owned(), None, "docs".to_owned())
        );
    }
}
