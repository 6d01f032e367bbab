//! Shared set-up of the image tests: a fresh store and small tars.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};

use kiln_content::Store;
use kiln_image::Metadata;
use kiln_snapshot::Snapshots;
use kiln_testing::ScratchDir;
use sha2::Digest as _;

/// A content store, snapshots and metadata under one fresh root.
pub struct Root {
    pub dir: ScratchDir,
    pub content: Store,
    pub snapshots: Snapshots,
    pub metadata: Metadata,
}

impl Root {
    pub fn new() -> Root {
        let dir = ScratchDir::new().unwrap();
        let content = Store::open(&dir.path().join("content")).unwrap();
        let snapshots = Snapshots::open(&dir.path().join("snapshots")).unwrap();
        let metadata = Metadata::open(&dir.path().join("kiln.db")).unwrap();
        Root { dir, content, snapshots, metadata }
    }
}

/// A tar of `(path, content)` files (a path ending in `/` is a directory),
/// with fixed owners and times so the bytes are reproducible.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        let is_dir = path.ends_with('/');
        header.set_entry_type(if is_dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(if is_dir { 0o755 } else { 0o644 });
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A small root filesystem.
pub fn rootfs_tar() -> Vec<u8> {
    tar_of(&[
        ("bin/", b""),
        ("bin/hello", b"#!/bin/sh\necho hello\n"),
        ("etc/", b""),
        ("etc/os-release", b"ID=kiln-test\n"),
    ])
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    format!("sha256:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The regular files of a tar, in order.
pub fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((path, data));
    }
    out
}

/// A tar of owned `(path, content)` files.
pub fn tar_from(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &[u8])> =
        files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    tar_of(&borrowed)
}
