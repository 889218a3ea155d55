//! A data directory the sprites' own ids could not pass through: the one
//! given is opened for passing (and sprites then start), a parent folder
//! of it that is the operator's is refused at start with what to change.
//! Each uses a small pool of its own.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{name, ok};
use vmhost::image::Recipe;
use vmhost::{CreateOptions, Error, Host};

fn private_dir(path: &PathBuf) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_only_its_owner_may_enter_is_opened_for_the_sprites() {
    let mut cfg = common::config("t-private");
    // What `mktemp -d` makes: a folder of mode 0700.
    cfg.data_dir = PathBuf::from(format!("{}-private", common::data_dir().display()));
    private_dir(&cfg.data_dir);
    cfg.pool_image_size = 1 << 30;
    cfg.default_image = "busybox".into();
    let dir = cfg.data_dir.clone();
    let host = Host::open(cfg).await.unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o701, "others may pass through, and only that");
    host.ensure_image("busybox", &Recipe::busybox(), &mut |_| {})
        .unwrap();
    common::cleanup(&host).await;
    let s = name("inside");
    host.create(&s, CreateOptions::default()).await.unwrap();
    assert_eq!(ok(&host, &s, "echo started").await, "started");
    common::cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_only_its_owner_may_enter_is_refused_with_what_to_change() {
    let mut cfg = common::config("t-locked");
    let parent = PathBuf::from(format!("{}-locked", common::data_dir().display()));
    private_dir(&parent);
    cfg.data_dir = parent.join("data");
    match Host::open(cfg).await {
        Err(e @ Error::Unreachable { .. }) => {
            let said = e.to_string();
            assert!(
                said.contains(&format!("chmod o+x {}", parent.display())),
                "{said}"
            );
            assert!(said.contains("mode 700"), "{said}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("opened a pool its sprites cannot reach"),
    }
    // Nothing was made beyond the folder itself.
    assert!(!parent.join("data").join("pool").exists());
}
