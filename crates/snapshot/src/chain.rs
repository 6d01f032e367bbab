//! Chain ids: the name of a stack of layers, as the OCI image spec defines it.
//!
//! `ChainID(L0) = DiffID(L0)` and
//! `ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln))`, so a
//! chain id names a layer together with everything below it. Snapshots are
//! keyed by chain id, which is what lets images share their common base.

use kiln_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256};

/// The chain id of a stack of layers given bottom-first by their diff ids, or
/// `None` for an empty stack.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let (first, rest) = diff_ids.split_first()?;
    Some(rest.iter().fold(first.clone(), |below, diff_id| {
        sha256_digest(format!("{below} {diff_id}").as_bytes())
    }))
}

/// The chain ids of every prefix of a stack: `[ChainID(L0), ChainID(L0|L1), …]`,
/// one per layer, as the snapshots of an image are keyed.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    (1..=diff_ids.len()).filter_map(|n| chain_id(&diff_ids[..n])).collect()
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> Digest {
    from_sha256(Sha256::digest(bytes))
}

pub(crate) fn from_sha256(hash: impl AsRef<[u8]>) -> Digest {
    use std::fmt::Write as _;
    let hex = hash.as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(hex: &str) -> Digest {
        format!("sha256:{hex}").parse().unwrap()
    }

    // diff ids: sha256 of "", of "b" and of "c".
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    const C: &str = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        assert_eq!(chain_id(&[d(EMPTY)]), Some(d(EMPTY)));
        assert_eq!(chain_id(&[]), None);
    }

    #[test]
    fn chain_id_matches_values_computed_with_sha256sum() {
        // printf '%s' "sha256:$EMPTY sha256:$B" | sha256sum
        let two = d("476bb6097114e56df6a058a9345a1b4df7fd4bdd65903498b074306ba7ccd926");
        // printf '%s' "sha256:$TWO sha256:$C" | sha256sum
        let three = d("e92551d3402339b745d7d5b40120aa4efc4e7d5f6d9b5dff6ff4bd3969f74d00");
        assert_eq!(chain_id(&[d(EMPTY), d(B)]), Some(two.clone()));
        assert_eq!(chain_id(&[d(EMPTY), d(B), d(C)]), Some(three.clone()));
        assert_eq!(chain_ids(&[d(EMPTY), d(B), d(C)]), vec![d(EMPTY), two, three]);
    }
}
