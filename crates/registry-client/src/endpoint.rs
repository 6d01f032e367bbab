//! Which host serves a registry name, and over which scheme.

use std::fmt;
use std::net::IpAddr;

use kiln_types::DEFAULT_REGISTRY;

/// The host Docker Hub's registry API is served from.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How to talk to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A registry's API root: scheme and `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as the reference names it (`docker.io`, `localhost:5000`).
    pub registry: String,
    pub scheme: Scheme,
    /// `host[:port]` to connect to.
    pub authority: String,
}

impl Endpoint {
    /// The endpoint of `registry` as Docker picks it: Docker Hub's API host
    /// for `docker.io`, plain HTTP for loopback registries, HTTPS otherwise.
    pub fn for_registry(registry: &str) -> Endpoint {
        let authority =
            if registry == DEFAULT_REGISTRY { DOCKER_HUB_API } else { registry }.to_owned();
        let scheme = if is_loopback(registry) { Scheme::Http } else { Scheme::Https };
        Endpoint { registry: registry.to_owned(), scheme, authority }
    }

    /// `http://host:port/v2/<repository>/manifests/<reference>`.
    pub fn manifest_url(&self, repository: &str, reference: &str) -> String {
        format!("{self}/v2/{repository}/manifests/{reference}")
    }

    /// `http://host:port/v2/<repository>/blobs/<digest>`.
    pub fn blob_url(&self, repository: &str, digest: &str) -> String {
        format!("{self}/v2/{repository}/blobs/{digest}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority)
    }
}

/// Whether `registry` (`host[:port]`) is `localhost`, `127.0.0.0/8` or `::1`:
/// the registries Docker talks plain HTTP to without being told.
fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_maps_to_its_api_host_over_https() {
        let hub = Endpoint::for_registry("docker.io");
        assert_eq!(hub.authority, "registry-1.docker.io");
        assert_eq!(hub.scheme, Scheme::Https);
        assert_eq!(
            hub.manifest_url("library/busybox", "latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        for registry in ["localhost:5000", "localhost", "127.0.0.1:5000", "127.9.9.9", "[::1]:80"] {
            let endpoint = Endpoint::for_registry(registry);
            assert_eq!(endpoint.scheme, Scheme::Http, "{registry}");
        }
        let local = Endpoint::for_registry("127.0.0.1:5000");
        assert_eq!(
            local.blob_url("kiln-t/bb", "sha256:ab"),
            "http://127.0.0.1:5000/v2/kiln-t/bb/blobs/sha256:ab"
        );
        assert_eq!(Endpoint::for_registry("ghcr.io").scheme, Scheme::Https);
        assert_eq!(Endpoint::for_registry("10.0.0.1:5000").scheme, Scheme::Https);
    }
}
