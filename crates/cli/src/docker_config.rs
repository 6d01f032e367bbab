//! Docker's client configuration file, `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`, where `kiln login` keeps registry credentials
//! and where `kiln pull` finds them, in Docker's format, so that `docker`
//! and `kiln` share logins.
//!
//! - `auths`: one entry per registry, keyed `host[:port]` (Docker Hub as
//!   `https://index.docker.io/v1/`), holding `auth` (base64 of
//!   `user:password`) or an `identitytoken`.
//! - `credsStore`: a credential helper for every registry; `credHelpers`:
//!   one per registry, which wins. With a helper the secret lives in it
//!   and `auths` keeps an empty entry for the registry, as Docker does.
//!
//! Every other key is kept as it was: the file is read and written as a
//! JSON document, not a struct. Writes go to a temp file (mode 0600) that
//! is renamed over the old one, so a crash never leaves half a file.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::credential_helper::{Helper, HelperCredentials, HelperError, TOKEN_USERNAME};

/// Docker Hub's key in `auths`, for every name it goes by.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What can go wrong with config.json.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot find the docker config: neither DOCKER_CONFIG nor HOME is set")]
    NoHome,
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a JSON object", .path.display())]
    NotAnObject { path: PathBuf },
    #[error("invalid auths entry {key:?} in {}: {why}", .path.display())]
    BadEntry { path: PathBuf, key: String, why: &'static str },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Helper(#[from] HelperError),
}

/// Credentials kept for one registry: a user name and password, or a
/// user name and an identity token (the password then empty).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct StoredAuth {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

impl std::fmt::Debug for StoredAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAuth").field("username", &self.username).finish_non_exhaustive()
    }
}

/// The `auths` key for a server as a user names it: Docker Hub's names
/// (and none) → [`DOCKER_HUB_KEY`]; anything else → `host[:port]`, its
/// scheme and path dropped.
pub(crate) fn server_key(server: &str) -> String {
    match hostname(server) {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => DOCKER_HUB_KEY.to_owned(),
        host => host.to_owned(),
    }
}

/// `host[:port]` of `server`: without `http(s)://` and any path.
fn hostname(server: &str) -> &str {
    let server = server.trim();
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    rest.split('/').next().unwrap_or_default()
}

/// The `auths` key of the registry an image reference names, as Docker
/// reads references: a first component with `.` or `:`, or `localhost`,
/// is a registry; otherwise the image is on Docker Hub.
pub(crate) fn key_for_image(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or_default();
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => server_key(first),
        _ => DOCKER_HUB_KEY.to_owned(),
    }
}

/// config.json, read whole.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    path: PathBuf,
    document: Map<String, Value>,
}

impl ConfigFile {
    /// Where config.json is: in `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join("config.json"));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(ConfigError::NoHome)?;
        Ok(PathBuf::from(home).join(".docker").join("config.json"))
    }

    /// The file at [`ConfigFile::default_path`].
    pub fn load_default() -> Result<ConfigFile, ConfigError> {
        ConfigFile::load(ConfigFile::default_path()?)
    }

    /// The file at `path`; an empty one when it does not exist.
    pub fn load(path: PathBuf) -> Result<ConfigFile, ConfigError> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile { path, document: Map::new() })
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ConfigFile { path, document: Map::new() });
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(document)) => Ok(ConfigFile { path, document }),
            Ok(_) => Err(ConfigError::NotAnObject { path }),
            Err(source) => Err(ConfigError::Parse { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper that keeps `key`'s secrets: `credHelpers[key]`, else
    /// `credsStore`; `None` when secrets go in the file.
    fn helper_for(&self, key: &str) -> Option<Helper> {
        let named = |value: Option<&Value>| {
            value.and_then(Value::as_str).filter(|name| !name.is_empty()).map(Helper::named)
        };
        let per_registry = self.document.get("credHelpers").and_then(|h| h.get(key));
        named(per_registry).or_else(|| named(self.document.get("credsStore")))
    }

    /// Whether secrets for `key` would be written into this file.
    pub fn stores_in_file(&self, key: &str) -> bool {
        self.helper_for(key).is_none()
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.document.get("auths").and_then(Value::as_object)
    }

    /// The `auths` keys that mean `key`: itself, and keys written with a
    /// scheme or path (`https://host/v2/`) by other tools.
    fn matching_keys(&self, key: &str) -> Vec<String> {
        let Some(auths) = self.auths() else { return Vec::new() };
        auths.keys().filter(|k| k.as_str() == key || server_key(k) == key).cloned().collect()
    }

    /// Whether `auths` has an entry for `key` (a login, through a helper
    /// or not).
    pub fn has_entry(&self, key: &str) -> bool {
        !self.matching_keys(key).is_empty()
    }

    /// The credentials kept for `key`, from its helper or the file.
    pub fn get(&self, key: &str) -> Result<Option<StoredAuth>, ConfigError> {
        if let Some(helper) = self.helper_for(key) {
            return Ok(helper.get(key)?.map(|c| {
                if c.username == TOKEN_USERNAME {
                    StoredAuth { identity_token: c.secret, ..StoredAuth::default() }
                } else {
                    StoredAuth { username: c.username, password: c.secret, ..StoredAuth::default() }
                }
            }));
        }
        let Some(auths) = self.auths() else { return Ok(None) };
        let keys = self.matching_keys(key);
        let Some(found) = keys.iter().find(|k| k.as_str() == key).or(keys.first()) else {
            return Ok(None);
        };
        self.decode_entry(found, &auths[found])
    }

    fn decode_entry(&self, key: &str, entry: &Value) -> Result<Option<StoredAuth>, ConfigError> {
        let bad = |why| ConfigError::BadEntry { path: self.path.clone(), key: key.to_owned(), why };
        let text = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or_default();
        let mut stored = StoredAuth {
            username: text("username").to_owned(),
            password: text("password").to_owned(),
            identity_token: text("identitytoken").to_owned(),
        };
        let auth = text("auth");
        if !auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("its auth is not base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad("its auth is not UTF-8"))?;
            let (username, password) =
                decoded.split_once(':').ok_or_else(|| bad("its auth holds no ':'"))?;
            stored.username = username.to_owned();
            stored.password = password.to_owned();
        }
        let empty = stored.password.is_empty() && stored.identity_token.is_empty();
        Ok((!empty).then_some(stored))
    }

    /// Keep `auth` for `key`: in its helper (the file keeping an empty
    /// entry), or in the file; then write the file.
    pub fn store(&mut self, key: &str, auth: &StoredAuth) -> Result<(), ConfigError> {
        let entry = match self.helper_for(key) {
            Some(helper) => {
                let (username, secret) = if auth.identity_token.is_empty() {
                    (auth.username.clone(), auth.password.clone())
                } else {
                    (TOKEN_USERNAME.to_owned(), auth.identity_token.clone())
                };
                helper.store(&HelperCredentials {
                    server_url: key.to_owned(),
                    username,
                    secret,
                })?;
                Map::new()
            }
            None => {
                let mut entry = self
                    .auths()
                    .and_then(|a| a.get(key))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                // The secret goes in `auth` (or `identitytoken`) only.
                entry.remove("username");
                entry.remove("password");
                let user_password = format!("{}:{}", auth.username, auth.password);
                entry.insert(
                    "auth".into(),
                    base64::engine::general_purpose::STANDARD.encode(user_password).into(),
                );
                if auth.identity_token.is_empty() {
                    entry.remove("identitytoken");
                } else {
                    entry.insert("identitytoken".into(), auth.identity_token.clone().into());
                }
                entry
            }
        };
        let auths = self.document.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(auths) = auths.as_object_mut() {
            auths.insert(key.to_owned(), Value::Object(entry));
        }
        self.save()
    }

    /// Forget `key`: its helper's secret and its `auths` entries; the
    /// file is written when it changed. Whether there was an entry.
    pub fn erase(&mut self, key: &str) -> Result<bool, ConfigError> {
        if let Some(helper) = self.helper_for(key) {
            helper.erase(key)?;
        }
        let keys = self.matching_keys(key);
        if keys.is_empty() {
            return Ok(false);
        }
        if let Some(auths) = self.document.get_mut("auths").and_then(Value::as_object_mut) {
            for k in &keys {
                auths.remove(k);
            }
        }
        self.save()?;
        Ok(true)
    }

    /// Write the document: a temp file in the same directory, mode 0600,
    /// synced, then renamed over config.json. The directory is made (0700)
    /// when missing.
    fn save(&self) -> Result<(), ConfigError> {
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Write { path, source }
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(write_err(&dir))?;
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.document.clone()))
            .map_err(|e| ConfigError::Write { path: self.path.clone(), source: e.into() })?;
        text.push(b'\n');
        let file_name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("config.json");
        let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result.map_err(write_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn config_in(dir: &Path, text: &str) -> ConfigFile {
        let path = dir.join("config.json");
        std::fs::write(&path, text).expect("write config");
        ConfigFile::load(path).expect("load")
    }

    #[test]
    fn servers_and_images_map_to_dockers_keys() {
        for hub in ["", "docker.io", "index.docker.io", "https://index.docker.io/v1/"] {
            assert_eq!(server_key(hub), DOCKER_HUB_KEY, "{hub:?}");
        }
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_key("https://ghcr.io/v2/"), "ghcr.io");
        assert_eq!(key_for_image("busybox"), DOCKER_HUB_KEY);
        assert_eq!(key_for_image("user/app:1"), DOCKER_HUB_KEY);
        assert_eq!(key_for_image("docker.io/library/busybox"), DOCKER_HUB_KEY);
        assert_eq!(key_for_image("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(key_for_image("localhost/a@sha256:ab"), "localhost");
        assert_eq!(key_for_image("ghcr.io/o/r@sha256:ab"), "ghcr.io");
    }

    #[test]
    fn auths_give_passwords_and_identity_tokens_under_any_spelling_of_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_in(
            dir.path(),
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "a2lsbjpzM2NyZXQ6eA=="},
                "http://localhost:5001/v2/": {"auth": "dTpw"},
                "https://index.docker.io/v1/": {"auth": "aHViOg==", "identitytoken": "rt-1"},
                "empty.example": {}
            }}"#,
        );
        let got = config.get("127.0.0.1:5000").expect("get").expect("stored");
        assert_eq!((got.username.as_str(), got.password.as_str()), ("kiln", "s3cret:x"));
        let other = config.get("localhost:5001").expect("get").expect("stored");
        assert_eq!((other.username.as_str(), other.password.as_str()), ("u", "p"));
        let hub = config.get(DOCKER_HUB_KEY).expect("get").expect("stored");
        assert_eq!((hub.username.as_str(), hub.identity_token.as_str()), ("hub", "rt-1"));
        assert_eq!(config.get("empty.example").expect("get"), None);
        assert!(config.has_entry("empty.example"));
        assert_eq!(config.get("nowhere:1").expect("get"), None);
    }

    #[test]
    fn bad_files_and_entries_are_errors_that_name_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = ConfigFile::load(path.clone()).expect_err("bad json");
        assert_eq!(err.to_string(), format!("{} is not valid JSON", path.display()));
        std::fs::write(&path, "[]").expect("write");
        assert!(matches!(ConfigFile::load(path.clone()), Err(ConfigError::NotAnObject { .. })));

        let config = config_in(dir.path(), r#"{"auths": {"r.example": {"auth": "%%%"}}}"#);
        let err = config.get("r.example").expect_err("bad auth");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid auths entry \"r.example\" in {}: its auth is not base64",
                path.display()
            )
        );
    }

    #[test]
    fn a_missing_file_is_empty_and_storing_creates_it_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new-dir").join("config.json");
        let mut config = ConfigFile::load(path.clone()).expect("load");
        assert_eq!(config.get("127.0.0.1:5000").expect("get"), None);
        let auth =
            StoredAuth { username: "kiln".into(), password: "pw".into(), ..Default::default() };
        config.store("127.0.0.1:5000", &auth).expect("store");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode =
            std::fs::metadata(path.parent().expect("dir")).expect("stat").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let written: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(written["auths"]["127.0.0.1:5000"]["auth"], "a2lsbjpwdw==");
        let reread = ConfigFile::load(path).expect("load");
        assert_eq!(reread.get("127.0.0.1:5000").expect("get"), Some(auth));
    }

    #[test]
    fn store_and_erase_keep_every_other_key_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config_in(
            dir.path(),
            r#"{"psFormat": "table {{.ID}}", "proxies": {"default": {"httpProxy": "x"}},
                "auths": {"other.example": {"auth": "dTpw", "email": "a@b"}}}"#,
        );
        let auth =
            StoredAuth { username: "u".into(), identity_token: "rt".into(), ..Default::default() };
        config.store("reg.example", &auth).expect("store");
        config
            .store(
                "other.example",
                &StoredAuth { username: "v".into(), password: "q".into(), ..Default::default() },
            )
            .expect("store");
        let text = std::fs::read_to_string(config.path()).expect("read");
        let written: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(written["psFormat"], "table {{.ID}}");
        assert_eq!(written["proxies"]["default"]["httpProxy"], "x");
        assert_eq!(written["auths"]["reg.example"]["identitytoken"], "rt");
        assert_eq!(written["auths"]["other.example"]["email"], "a@b");
        assert_eq!(written["auths"]["other.example"]["auth"], "djpx");

        assert!(config.erase("reg.example").expect("erase"));
        assert!(!config.erase("reg.example").expect("erase again"));
        let written: Value =
            serde_json::from_slice(&std::fs::read(config.path()).expect("read")).expect("json");
        assert!(written["auths"].get("reg.example").is_none(), "{written}");
        assert_eq!(written["psFormat"], "table {{.ID}}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["config.json"]);
    }

    #[test]
    fn helpers_are_picked_per_registry_then_for_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            config_in(dir.path(), r#"{"credsStore": "pass", "credHelpers": {"gcr.io": "gcloud"}}"#);
        assert_eq!(config.helper_for("gcr.io"), Some(Helper::named("gcloud")));
        assert_eq!(config.helper_for("127.0.0.1:5000"), Some(Helper::named("pass")));
        assert!(!config.stores_in_file("127.0.0.1:5000"));
        let plain = config_in(dir.path(), r#"{"credsStore": ""}"#);
        assert!(plain.stores_in_file("127.0.0.1:5000"));
    }
}
