//! `kiln build --check-reproducible`: when two builds of the same inputs
//! give different images, name the first thing that differs: the layer
//! (by the step that made it) and the first file in it whose bytes or
//! metadata differ, or the config field.

use std::collections::BTreeMap;
use std::io::Read;

use kiln_image::ImageConfig;
use kiln_types::Digest;
use sha2::{Digest as _, Sha256};

use crate::worker::Worker;
use crate::BuildError;

/// A description of the first difference between images `a` and `b`
/// (their config digests).
pub fn first_difference(worker: &dyn Worker, a: &Digest, b: &Digest) -> Result<String, BuildError> {
    let config = |id: &Digest| -> Result<ImageConfig, BuildError> {
        let bytes = worker
            .content()
            .read(id)
            .map_err(|e| BuildError::internal(format!("cannot read image config {id}: {e}")))?;
        ImageConfig::from_json(&bytes)
            .map_err(|e| BuildError::internal(format!("invalid image config {id}: {e}")))
    };
    let (ca, cb) = (config(a)?, config(b)?);
    let layer_steps: Vec<String> = ca
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone().unwrap_or_default())
        .collect();
    let (la, lb) = (&ca.rootfs.diff_ids, &cb.rootfs.diff_ids);
    for (i, (da, db)) in la.iter().zip(lb.iter()).enumerate() {
        if da == db {
            continue;
        }
        let step = layer_steps.get(i).map(String::as_str).unwrap_or("?");
        let file = first_differing_entry(worker, da, db)?;
        return Ok(format!("layer {} ({step}) differs first at {file}", i + 1));
    }
    if la.len() != lb.len() {
        return Ok(format!("the builds made {} and {} layers", la.len(), lb.len()));
    }
    let (ja, jb) = (json_fields(&ca), json_fields(&cb));
    for (key, va) in &ja {
        if jb.get(key) != Some(va) {
            return Ok(format!("the image configs differ in {key}"));
        }
    }
    Ok("the image configs differ".to_owned())
}

fn json_fields(config: &ImageConfig) -> BTreeMap<String, serde_json::Value> {
    match serde_json::from_slice::<serde_json::Value>(&config.to_json()) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// One tar entry as compared: path, then a summary of its header and a
/// hash of its bytes.
#[derive(Debug, PartialEq, Eq)]
struct EntrySummary {
    path: String,
    header: String,
    content: String,
}

fn summaries(worker: &dyn Worker, layer: &Digest) -> Result<Vec<EntrySummary>, BuildError> {
    let fail = |e: std::io::Error| BuildError::internal(format!("cannot read layer {layer}: {e}"));
    let blob = worker
        .content()
        .open_blob(layer)
        .map_err(|e| BuildError::internal(format!("cannot open layer {layer}: {e}")))?;
    let (reader, _) = kiln_snapshot::decompress(blob).map_err(fail)?;
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let path = entry.path().map_err(fail)?.to_string_lossy().into_owned();
        let h = entry.header();
        let header = format!(
            "type {:?}, mode {:o}, owner {}:{}, mtime {}, link {:?}",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.mtime().unwrap_or(0),
            h.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned()),
        );
        let mut hasher = Sha256::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(fail)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        out.push(EntrySummary { path, header, content: crate::cache::hex(&hasher.finalize()) });
    }
    Ok(out)
}

fn first_differing_entry(
    worker: &dyn Worker,
    a: &Digest,
    b: &Digest,
) -> Result<String, BuildError> {
    let (sa, sb) = (summaries(worker, a)?, summaries(worker, b)?);
    for (ea, eb) in sa.iter().zip(sb.iter()) {
        if ea.path != eb.path {
            return Ok(format!("/{} (the other build has /{} there)", ea.path, eb.path));
        }
        if ea.header != eb.header {
            return Ok(format!("/{} (metadata: {} versus {})", ea.path, ea.header, eb.header));
        }
        if ea.content != eb.content {
            return Ok(format!("/{} (content)", ea.path));
        }
    }
    match (sa.get(sb.len()), sb.get(sa.len())) {
        (Some(extra), _) => Ok(format!("/{} (only in the first build)", extra.path)),
        (_, Some(extra)) => Ok(format!("/{} (only in the second build)", extra.path)),
        _ => Ok("the tar framing (same entries)".to_owned()),
    }
}
