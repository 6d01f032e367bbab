//! Handing memory back: for long-lived, mostly idle processes (the shim)
//! whose start-up touched far more code than their idle loop needs.

use std::io;

/// Drop this process's clean file mappings (code, read-only data) from its
/// resident set, and return free heap to the kernel. The pages stay in the
/// page cache, so whatever runs next faults them back in from memory, not
/// disk. Only read-only, file-backed mappings with no private dirty page are
/// dropped: for those MADV_DONTNEED cannot lose anything, as their bytes
/// are the file's (relocated read-only data is private and dirty, and kept).
pub fn release_code_pages() -> io::Result<()> {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut candidate: Option<(usize, usize)> = None;
    let mut changed = 0u64;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            // A mapping's header: `start-end perms offset dev inode path`.
            candidate = None;
            let (Ok(start), Ok(end)) =
                (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            else {
                continue;
            };
            let perms = fields.next().unwrap_or("");
            // [vdso] and friends are the kernel's, not file-backed.
            let path = fields.nth(3).unwrap_or("");
            if (perms == "r-xp" || perms == "r--p") && path.starts_with('/') {
                candidate = Some((start, end));
            }
            changed = 0;
            continue;
        }
        match first {
            "Private_Dirty:" | "Anonymous:" => {
                changed += fields.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
            }
            // The last field of each mapping's block: decide now.
            "VmFlags:" => {
                if let Some((start, end)) = candidate.take().filter(|_| changed == 0) {
                    // SAFETY: the range is a whole private, read-only mapping
                    // of a file with no page of its own (no dirty or
                    // anonymous page): MADV_DONTNEED only makes later reads
                    // fault the same bytes back in from the file. Nothing
                    // can write it meanwhile, the mapping being read-only.
                    unsafe {
                        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages mapped from files (code, mostly), in KiB.
    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    #[test]
    fn code_pages_leave_the_resident_set_and_come_back_on_use() {
        let before = rss_file_kib();
        release_code_pages().expect("release");
        let after = rss_file_kib();
        assert!(after < before, "file-backed RSS {before} KiB did not shrink ({after} KiB)");
        // Dropped code still runs: formatting and hashing fault it back.
        let text = format!("{:?}", std::collections::HashMap::from([(1, before)]));
        assert!(text.contains(&before.to_string()));
    }
}
