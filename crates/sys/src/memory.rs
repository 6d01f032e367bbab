//! Handing memory back: for long-lived, mostly idle processes (the shim)
//! whose start-up touched far more code than their idle loop needs.

use std::io;

/// Drop this process's mappings of executable code from its resident set,
/// and return free heap to the kernel. The code stays in the page cache, so
/// whatever runs next faults its pages back in from memory, not disk. Only
/// `r-xp` mappings are dropped: they are never written, so nothing of ours
/// is lost (unlike relocated read-only data, which is private and dirty).
pub fn release_code_pages() -> io::Result<()> {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else { continue };
        if perms != "r-xp" {
            continue;
        }
        let path = fields.nth(3).unwrap_or("");
        // [vdso] and friends are the kernel's, not file-backed.
        if !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) =
            (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
        else {
            continue;
        };
        // SAFETY: the range is a whole mapping of never-written file pages
        // (read and execute only, private); MADV_DONTNEED on it only makes
        // later accesses fault the same bytes back in from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
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
