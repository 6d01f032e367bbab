//! `Engine::open` against a real directory.

use kiln_engine::{Config, Engine};
use kiln_types::{ErrorKind, HasKind};

#[test]
fn open_creates_dirs_and_a_second_engine_on_the_root_is_refused() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let config = Config::new(dir.path().join("root"), dir.path().join("run/kiln"));
    let engine = Engine::open(config.clone()).expect("open");
    assert!(config.exec_root.is_dir());
    let lock = std::fs::read_to_string(config.root.join("kiln.lock")).expect("lock file");
    assert_eq!(lock.trim(), std::process::id().to_string());

    let err = Engine::open(config.clone()).expect_err("second engine");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().starts_with("another kiln daemon is using "), "{err}");

    let info = engine.info();
    assert_eq!(info.root, config.root);
    assert_eq!(info.containers.total(), 0);
    assert_eq!(info.images, 0);
    assert!(info.host.ncpu >= 1);
    let id = info.id.clone();
    drop(engine);

    let again = Engine::open(config).expect("reopen after drop");
    assert_eq!(again.info().id, id, "the id survives a restart");
}
