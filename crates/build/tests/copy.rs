//! COPY and ADD against real directories: a context (or stage root) in one
//! scratch directory, the root being built in another.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_build::copy::{apply, select, CopyError, CopyRequest};
use kiln_testing::ScratchDir;

/// A context and a root to copy into, removed when the test ends.
struct Fixture {
    context: ScratchDir,
    rootfs: ScratchDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            context: ScratchDir::new().expect("context dir"),
            rootfs: ScratchDir::new().expect("rootfs dir"),
        }
    }

    fn ctx(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.context.path().join(rel)
    }

    fn root(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.rootfs.path().join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        write_file(&self.ctx(rel), content);
    }

    fn request(&self, sources: &[&str], dest: &str) -> CopyRequest<'_> {
        CopyRequest {
            source_root: self.context.path(),
            from_context: true,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.to_owned(),
            owner: None,
            mode: None,
            excludes: Vec::new(),
            parents: false,
            extract_archives: false,
        }
    }

    fn copy(&self, request: &CopyRequest<'_>) -> Result<(), CopyError> {
        let selection = select(request)?;
        apply(&selection, request, self.rootfs.path())
    }

    fn digest(&self, request: &CopyRequest<'_>) -> String {
        select(request).expect("select").digest().expect("digest")
    }
}

fn write_file(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent");
    }
    fs::write(path, content).expect("write file");
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn file_to_a_file_path_creates_parents_0755_and_keeps_mtime() {
    let f = Fixture::new();
    f.write("a.txt", "hello");
    fs::set_permissions(f.ctx("a.txt"), fs::Permissions::from_mode(0o640)).expect("chmod");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(f.ctx("a.txt"))
        .expect("open")
        .set_modified(old)
        .expect("touch");
    f.copy(&f.request(&["a.txt"], "/deep/dir/b.txt")).expect("copy");
    assert_eq!(read(&f.root("deep/dir/b.txt")), "hello");
    assert_eq!(mode(&f.root("deep/dir/b.txt")), 0o640, "permission bits kept");
    assert_eq!(mode(&f.root("deep")), 0o755);
    assert_eq!(mode(&f.root("deep/dir")), 0o755);
    assert_eq!(fs::metadata(f.root("deep/dir/b.txt")).expect("stat").mtime(), 1_000_000);
}

#[test]
fn file_to_a_trailing_slash_or_existing_directory_goes_inside() {
    let f = Fixture::new();
    f.write("a.txt", "A");
    f.copy(&f.request(&["a.txt"], "/dst/")).expect("copy to dir/");
    assert_eq!(read(&f.root("dst/a.txt")), "A");
    fs::create_dir(f.root("existing")).expect("mkdir");
    f.copy(&f.request(&["a.txt"], "/existing")).expect("copy onto dir");
    assert_eq!(read(&f.root("existing/a.txt")), "A");
}

#[test]
fn an_existing_file_is_replaced_not_written_through_its_hard_link() {
    let f = Fixture::new();
    f.write("a.txt", "new");
    write_file(&f.root("etc/a.txt"), "old");
    fs::hard_link(f.root("etc/a.txt"), f.root("etc/other")).expect("link");
    f.copy(&f.request(&["a.txt"], "/etc/a.txt")).expect("copy");
    assert_eq!(read(&f.root("etc/a.txt")), "new");
    assert_eq!(read(&f.root("etc/other")), "old");
}

#[test]
fn a_directory_source_copies_its_contents_with_symlinks_as_symlinks() {
    let f = Fixture::new();
    f.write("dir/x.txt", "x");
    f.write("dir/sub/y.txt", "y");
    symlink("x.txt", f.ctx("dir/link")).expect("symlink");
    symlink("/etc/passwd", f.ctx("dir/abs")).expect("symlink");
    f.copy(&f.request(&["dir"], "/app")).expect("copy");
    assert_eq!(read(&f.root("app/x.txt")), "x");
    assert_eq!(read(&f.root("app/sub/y.txt")), "y");
    assert!(!f.root("app/dir").exists(), "the directory itself is not copied");
    assert_eq!(fs::read_link(f.root("app/link")).expect("readlink"), Path::new("x.txt"));
    assert_eq!(fs::read_link(f.root("app/abs")).expect("readlink"), Path::new("/etc/passwd"));
}

#[test]
fn wildcards_match_per_component_in_name_order() {
    let f = Fixture::new();
    f.write("a.txt", "a");
    f.write("b.txt", "b");
    f.write("c.md", "c");
    f.write("src/one/main.go", "1");
    f.write("src/two/main.go", "2");
    f.write("src/two/other.go", "o");
    f.copy(&f.request(&["*.txt", "src/*/main.go"], "/dst/")).expect("copy");
    assert_eq!(read(&f.root("dst/a.txt")), "a");
    assert_eq!(read(&f.root("dst/b.txt")), "b");
    assert!(!f.root("dst/c.md").exists());
    // Both main.go land on the same name; the later match wins, as in Docker.
    assert_eq!(read(&f.root("dst/main.go")), "2");
    assert!(!f.root("dst/other.go").exists());

    let one = f.request(&["[a]*.txt"], "/single");
    f.copy(&one).expect("one match to a file path");
    assert_eq!(read(&f.root("single")), "a");
}

#[test]
fn several_sources_need_a_directory_destination() {
    let f = Fixture::new();
    f.write("a.txt", "a");
    f.write("b.txt", "b");
    let err = f.copy(&f.request(&["a.txt", "b.txt"], "/dst")).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    );
    let err = f.copy(&f.request(&["*.txt"], "/dst")).expect_err("refused for a wildcard");
    assert!(matches!(err, CopyError::NeedDirectory { .. }), "{err}");
    assert!(!f.root("dst").exists());
    fs::create_dir(f.root("dst")).expect("mkdir");
    f.copy(&f.request(&["a.txt", "b.txt"], "/dst")).expect("an existing directory is fine");
    assert_eq!(read(&f.root("dst/b.txt")), "b");
}

#[test]
fn missing_sources_are_reported_in_dockers_words() {
    let f = Fixture::new();
    f.write("present.txt", "p");
    let err = select(&f.request(&["foo.txt"], "/dst/")).expect_err("missing");
    assert_eq!(err.to_string(), "file not found in build context: foo.txt");
    let err = select(&f.request(&["*.nothing"], "/dst/")).expect_err("no match");
    assert_eq!(err.to_string(), "file not found in build context: *.nothing");
    let mut stage = f.request(&["/usr/bin/nope"], "/dst/");
    stage.from_context = false;
    let err = select(&stage).expect_err("missing in stage");
    assert_eq!(err.to_string(), "file not found in stage or image: /usr/bin/nope");
    assert_eq!(kiln_types::HasKind::kind(&err), kiln_types::ErrorKind::NotFound);
}

#[test]
fn climbing_out_of_the_context_is_forbidden() {
    let f = Fixture::new();
    let err = select(&f.request(&["../outside"], "/x")).expect_err("refused");
    assert_eq!(err.to_string(), "forbidden path outside the build context: ../outside");
}

#[test]
fn context_symlinks_pointing_outside_never_read_the_host() {
    let f = Fixture::new();
    let host = ScratchDir::new().expect("host dir");
    let secret = host.path().join("secret");
    write_file(&secret, "host secret");
    // An absolute link and one climbing with `..`: both name the host file
    // from the host's point of view.
    symlink(&secret, f.ctx("abs")).expect("symlink");
    let climb = format!("{}{}", "../".repeat(16), secret.display());
    symlink(&climb, f.ctx("climb")).expect("symlink");

    for name in ["abs", "climb"] {
        let result = f.copy(&f.request(&[name], &format!("/out/{name}")));
        let copied = fs::read_to_string(f.root(format!("out/{name}"))).unwrap_or_default();
        assert_ne!(copied, "host secret", "{name}: the host file was copied");
        assert!(matches!(result, Err(CopyError::NotFoundInContext { .. })), "{name}: {result:?}");
    }

    // The same link, resolved inside the context, finds the context's file.
    write_file(&f.ctx(secret.strip_prefix("/").expect("absolute")), "context file");
    f.copy(&f.request(&["abs"], "/out/abs")).expect("copy");
    assert_eq!(read(&f.root("out/abs")), "context file");
}

#[test]
fn destination_links_in_the_image_are_followed_inside_the_rootfs() {
    let f = Fixture::new();
    f.write("a.txt", "A");
    fs::create_dir_all(f.root("run")).expect("mkdir run");
    fs::create_dir_all(f.root("var")).expect("mkdir var");
    symlink("/run", f.root("var/run")).expect("symlink");
    f.copy(&f.request(&["a.txt"], "/var/run/a.txt")).expect("copy through link");
    assert_eq!(read(&f.root("run/a.txt")), "A");

    let host = ScratchDir::new().expect("host dir");
    let escape = format!("{}{}", "../".repeat(16), host.path().display());
    symlink(&escape, f.root("escape")).expect("symlink");
    f.copy(&f.request(&["a.txt"], "/escape/sub/a.txt")).expect("copy through escaping link");
    assert_eq!(fs::read_dir(host.path()).expect("read host dir").count(), 0, "wrote outside");
    let inside =
        f.root(format!("{}/sub/a.txt", host.path().strip_prefix("/").expect("abs").display()));
    assert_eq!(read(&inside), "A", "the link's target was made inside the rootfs");

    // A link as the last component is replaced, not written through.
    let target = host.path().join("victim");
    write_file(&target, "untouched");
    fs::create_dir(f.root("dst")).expect("mkdir");
    symlink(&target, f.root("dst/a.txt")).expect("symlink");
    f.copy(&f.request(&["a.txt"], "/dst/")).expect("copy over link");
    assert_eq!(read(&target), "untouched");
    assert!(!fs::symlink_metadata(f.root("dst/a.txt")).expect("stat").is_symlink());
    assert_eq!(read(&f.root("dst/a.txt")), "A");
}

#[test]
fn existing_directories_keep_their_mode() {
    let f = Fixture::new();
    f.write("a.txt", "A");
    f.write("dir/b.txt", "B");
    fs::set_permissions(f.ctx("dir"), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::create_dir(f.root("tmp")).expect("mkdir");
    fs::set_permissions(f.root("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    f.copy(&f.request(&["a.txt"], "/tmp/sub/a.txt")).expect("copy file");
    f.copy(&f.request(&["dir"], "/tmp/")).expect("copy dir");
    assert_eq!(mode(&f.root("tmp")), 0o1777);
    assert_eq!(mode(&f.root("tmp/sub")), 0o755);
    assert_eq!(read(&f.root("tmp/b.txt")), "B");
    // A directory made for the copy takes the source directory's mode.
    f.copy(&f.request(&["dir"], "/fresh")).expect("copy dir to new path");
    assert_eq!(mode(&f.root("fresh")), 0o700);
    // A tree copied over `/` that holds `tmp/` leaves the image's /tmp alone.
    f.write("tmp/c.txt", "C");
    fs::set_permissions(f.ctx("tmp"), fs::Permissions::from_mode(0o755)).expect("chmod");
    f.copy(&f.request(&["."], "/")).expect("copy context to /");
    assert_eq!(read(&f.root("tmp/c.txt")), "C");
    assert_eq!(mode(&f.root("tmp")), 0o1777);
}

#[test]
fn parents_keep_the_source_path_under_the_destination() {
    let f = Fixture::new();
    f.write("a/b/c.txt", "c");
    f.write("x/c.txt", "x");
    f.write("y/z/deep.txt", "d");
    let mut request = f.request(&["a/b/c.txt", "*/c.txt", "./y/./z/deep.txt"], "/dst");
    request.parents = true;
    f.copy(&request).expect("copy");
    assert_eq!(read(&f.root("dst/a/b/c.txt")), "c");
    assert_eq!(read(&f.root("dst/x/c.txt")), "x");
    assert_eq!(read(&f.root("dst/z/deep.txt")), "d", "`/./` is the pivot");
    assert!(!f.root("dst/c.txt").exists());
}

#[test]
fn excludes_leave_out_matching_paths_with_exceptions() {
    let f = Fixture::new();
    f.write("app/main.py", "m");
    f.write("app/debug.log", "l");
    f.write("app/keep.log", "k");
    f.write("app/node_modules/dep/index.js", "n");
    f.write("top.log", "t");
    let mut request = f.request(&["."], "/srv/");
    request.excludes = vec!["**/*.log".into(), "!app/keep.log".into(), "app/node_modules".into()];
    f.copy(&request).expect("copy");
    assert_eq!(read(&f.root("srv/app/main.py")), "m");
    assert_eq!(read(&f.root("srv/app/keep.log")), "k");
    assert!(!f.root("srv/app/debug.log").exists());
    assert!(!f.root("srv/top.log").exists());
    assert!(!f.root("srv/app/node_modules").exists());

    let mut named = f.request(&["top.log"], "/x");
    named.excludes = vec!["*.log".into()];
    let err = select(&named).expect_err("an excluded source is not there");
    assert_eq!(err.to_string(), "file not found in build context: top.log");

    let mut bad = f.request(&["."], "/x/");
    bad.excludes = vec!["[".into()];
    assert!(matches!(select(&bad), Err(CopyError::BadExclude { .. })));
}

#[test]
fn chmod_applies_to_every_file_and_directory() {
    let f = Fixture::new();
    f.write("dir/a.sh", "#!/bin/sh");
    f.write("dir/sub/b.sh", "#!/bin/sh");
    let mut request = f.request(&["dir"], "/opt/tools");
    request.mode = Some(0o750);
    f.copy(&request).expect("copy");
    for path in ["opt/tools", "opt/tools/a.sh", "opt/tools/sub", "opt/tools/sub/b.sh"] {
        assert_eq!(mode(&f.root(path)), 0o750, "{path}");
    }
    assert_eq!(mode(&f.root("opt")), 0o755, "a made parent is not --chmod'ed");
}

#[test]
fn chown_owns_files_and_made_parents_and_context_files_default_to_root() {
    kiln_testing::require_privileged!();
    let f = Fixture::new();
    f.write("dir/a.txt", "a");
    nix::unistd::chown(&f.ctx("dir/a.txt"), Some(1234.into()), Some(1234.into())).expect("chown");
    fs::set_permissions(f.ctx("dir/a.txt"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    f.copy(&f.request(&["dir"], "/plain/")).expect("copy");
    let meta = fs::metadata(f.root("plain/a.txt")).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "context files belong to root");
    assert_eq!(meta.mode() & 0o7777, 0o4755, "setuid survives");

    let mut request = f.request(&["dir"], "/home/app/data/");
    request.owner = Some((1000, 1001));
    f.copy(&request).expect("copy");
    for path in ["home", "home/app", "home/app/data", "home/app/data/a.txt"] {
        let meta = fs::metadata(f.root(path)).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (1000, 1001), "{path}");
    }
    assert_eq!(mode(&f.root("home/app/data/a.txt")), 0o4755, "setuid set after chown");
}

#[test]
fn a_stage_keeps_its_owners() {
    kiln_testing::require_privileged!();
    let f = Fixture::new();
    f.write("usr/bin/tool", "t");
    nix::unistd::chown(&f.ctx("usr/bin/tool"), Some(33.into()), Some(44.into())).expect("chown");
    let mut request = f.request(&["/usr/bin/tool"], "/tool");
    request.from_context = false;
    f.copy(&request).expect("copy");
    let meta = fs::metadata(f.root("tool")).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (33, 44));
}

#[test]
fn fifos_are_copied_and_sockets_skipped() {
    let f = Fixture::new();
    f.write("dir/file", "f");
    nix::unistd::mkfifo(&f.ctx("dir/pipe"), nix::sys::stat::Mode::from_bits_truncate(0o640))
        .expect("mkfifo");
    let _listener = std::os::unix::net::UnixListener::bind(f.ctx("dir/sock")).expect("bind socket");
    f.copy(&f.request(&["dir"], "/d/")).expect("copy");
    let pipe = fs::symlink_metadata(f.root("d/pipe")).expect("stat pipe");
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o640);
    assert!(!f.root("d/sock").exists());
}

#[test]
fn devices_in_the_context_are_refused() {
    kiln_testing::require_privileged!();
    let f = Fixture::new();
    nix::sys::stat::mknod(
        &f.ctx("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .expect("mknod");
    let err = select(&f.request(&["."], "/d/")).expect_err("refused");
    assert_eq!(err.to_string(), "cannot copy device null from the build context");
}

/// A tar of `entries` (path, contents; a trailing `/` is a directory),
/// owned by 1234:1234.
fn tar_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
        } else {
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
        }
        header.set_uid(1234);
        header.set_gid(1234);
        header.set_mtime(1_000);
        // `append_data` refuses `..`; write the name into the header as is.
        let raw = name.as_bytes();
        header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        header.set_cksum();
        builder.append(&header, content.as_bytes()).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

/// A gzip'd [`tar_bytes`] written to `path`.
fn write_tar_gz(path: &Path, entries: &[(&str, &str)]) {
    let file = fs::File::create(path).expect("create archive");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(&tar_bytes(entries)).expect("compress");
    gz.finish().expect("finish gzip");
}

#[test]
fn add_unpacks_a_gzip_tar_into_the_destination() {
    let f = Fixture::new();
    write_tar_gz(&f.ctx("app.tar.gz"), &[("bin/", ""), ("bin/run", "run"), ("README", "hi")]);
    let mut request = f.request(&["app.tar.gz"], "/opt/app");
    request.extract_archives = true;
    f.copy(&request).expect("add");
    assert_eq!(read(&f.root("opt/app/bin/run")), "run");
    assert_eq!(read(&f.root("opt/app/README")), "hi");
    assert!(!f.root("opt/app/app.tar.gz").exists());
    if is_root() {
        let meta = fs::metadata(f.root("opt/app/bin/run")).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (1234, 1234), "the archive's owners");
    }

    // COPY never unpacks, and ADD copies what is not a tar as it is.
    f.copy(&f.request(&["app.tar.gz"], "/copied.tar.gz")).expect("copy");
    assert!(f.root("copied.tar.gz").is_file());
    f.write("notes.gz", "plain text, not gzip");
    let mut plain = f.request(&["notes.gz"], "/notes.gz");
    plain.extract_archives = true;
    f.copy(&plain).expect("add plain");
    assert_eq!(read(&f.root("notes.gz")), "plain text, not gzip");
}

#[test]
fn add_unpacks_plain_and_zstd_tars() {
    let f = Fixture::new();
    let tar = tar_bytes(&[("plain.txt", "p")]);
    fs::write(f.ctx("a.tar"), &tar).expect("write tar");
    let zst = ruzstd::encoding::compress_to_vec(
        &tar_bytes(&[("z/zstd.txt", "z")])[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    fs::write(f.ctx("b.tar.zst"), zst).expect("write zst");
    let mut request = f.request(&["a.tar", "b.tar.zst"], "/x/");
    request.extract_archives = true;
    f.copy(&request).expect("add");
    assert_eq!(read(&f.root("x/plain.txt")), "p");
    assert_eq!(read(&f.root("x/z/zstd.txt")), "z");
}

#[test]
fn add_recreates_links_from_an_archive() {
    let f = Fixture::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(4);
    builder.append_data(&mut header, "data/a", &b"aaaa"[..]).expect("file");
    for (kind, name, target) in
        [(tar::EntryType::Link, "data/b", "data/a"), (tar::EntryType::Symlink, "data/c", "a")]
    {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, name, target).expect("link");
    }
    fs::write(f.ctx("links.tar"), builder.into_inner().expect("tar")).expect("write");
    let mut request = f.request(&["links.tar"], "/");
    request.extract_archives = true;
    f.copy(&request).expect("add");
    let a = fs::metadata(f.root("data/a")).expect("stat a");
    let b = fs::metadata(f.root("data/b")).expect("stat b");
    assert_eq!(a.ino(), b.ino(), "a hard link, not a copy");
    assert_eq!(fs::read_link(f.root("data/c")).expect("readlink"), Path::new("a"));
}

#[test]
fn devices_from_a_stage_are_copied_as_root() {
    kiln_testing::require_privileged!();
    let f = Fixture::new();
    fs::create_dir(f.ctx("dev")).expect("mkdir");
    nix::sys::stat::mknod(
        &f.ctx("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .expect("mknod");
    fs::set_permissions(f.ctx("dev/null"), fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut request = f.request(&["/dev"], "/dev");
    request.from_context = false;
    f.copy(&request).expect("copy");
    let meta = fs::symlink_metadata(f.root("dev/null")).expect("stat");
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(meta.mode() & 0o7777, 0o666);
}

#[test]
fn add_refuses_archive_entries_that_climb_out() {
    let f = Fixture::new();
    write_tar_gz(&f.ctx("evil.tar.gz"), &[("ok", "fine"), ("../../evil", "bad")]);
    let mut request = f.request(&["evil.tar.gz"], "/opt/x/");
    request.extract_archives = true;
    let err = f.copy(&request).expect_err("refused");
    assert!(matches!(err, CopyError::ArchiveEscape { .. }), "{err}");
    assert!(!f.root("evil").exists());
    assert!(!f.root("opt/evil").exists());
}

#[test]
fn the_digest_covers_what_is_written_and_nothing_else() {
    let f = Fixture::new();
    f.write("src/a.txt", "aaaa");
    f.write("src/b.txt", "bbbb");
    f.write("unrelated.txt", "u");
    let request = f.request(&["src"], "/app/");
    let base = f.digest(&request);
    assert_eq!(base.len(), 64);

    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(f.ctx("src/a.txt"))
        .expect("open")
        .set_modified(later)
        .expect("touch");
    assert_eq!(f.digest(&request), base, "mtime does not count");

    f.write("unrelated.txt", "changed");
    assert_eq!(f.digest(&request), base, "an unselected file does not count");

    f.write("src/a.txt", "aaab");
    let changed = f.digest(&request);
    assert_ne!(changed, base, "one byte counts");
    f.write("src/a.txt", "aaaa");
    assert_eq!(f.digest(&request), base);

    fs::set_permissions(f.ctx("src/a.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_ne!(f.digest(&request), base, "a mode counts");
    fs::set_permissions(f.ctx("src/a.txt"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let base = f.digest(&request);

    fs::rename(f.ctx("src/b.txt"), f.ctx("src/c.txt")).expect("rename");
    assert_ne!(f.digest(&request), base, "a name counts");

    let mut other_dest = f.request(&["src"], "/elsewhere/");
    assert_ne!(f.digest(&other_dest), f.digest(&request), "the destination counts");
    other_dest.dest = "/app/".into();
    other_dest.owner = Some((1, 1));
    assert_ne!(f.digest(&other_dest), f.digest(&request), "--chown counts");
}

#[test]
fn selection_counts_entries() {
    let f = Fixture::new();
    f.write("d/a", "a");
    f.write("d/e/b", "b");
    let selection = select(&f.request(&["d"], "/x/")).expect("select");
    // d itself, a, e, e/b
    assert_eq!(selection.len(), 4);
    assert!(!selection.is_empty());
}

#[test]
fn a_large_file_is_copied_whole() {
    let f = Fixture::new();
    let mut file = fs::File::create(f.ctx("big.bin")).expect("create");
    let chunk = vec![0xa5u8; 1 << 20];
    for _ in 0..8 {
        file.write_all(&chunk).expect("write");
    }
    drop(file);
    f.copy(&f.request(&["big.bin"], "/big.bin")).expect("copy");
    assert_eq!(fs::metadata(f.root("big.bin")).expect("stat").len(), 8 << 20);
    assert_eq!(
        fs::read(f.root("big.bin")).expect("read"),
        fs::read(f.ctx("big.bin")).expect("read")
    );
}
