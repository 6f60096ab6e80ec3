//! SharedPolicy: reload swaps whole valid policies in and never a broken one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use policies::{Policy, SharedPolicy};

/// A private directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("pgcache-policies-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces a file atomically (write + rename), as careful editors and
/// config-management tools do.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn policy_text(n: u64) -> String {
    format!("[cache]\nmax_memory = \"{n}MiB\"\n\n[defaults]\nttl = \"{n}s\"\n")
}

#[test]
fn shared_policy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SharedPolicy>();
    assert_send_sync::<Policy>();
}

#[test]
fn reload_keeps_the_old_policy_on_a_bad_file_and_swaps_on_a_good_one() {
    let dir = TempDir::new("reload");
    let path = dir.path("policy.toml");
    write_atomic(&path, &policy_text(1));
    let shared = SharedPolicy::from_file(path.clone()).unwrap();
    assert_eq!(shared.path(), Some(path.as_path()));
    let first = shared.load();
    assert_eq!(first.default_ttl(), Duration::from_secs(1));
    let first_loaded_at = shared.loaded_at();

    // Broken: valid first section, then an error on line 5.
    write_atomic(
        &path,
        "[cache]\nmax_memory = \"2MiB\"\n\n[defaults]\nttl = \"0s\"\n",
    );
    let err = shared.reload().unwrap_err();
    assert_eq!(err.0[0].line, 5);
    assert!(err
        .to_string()
        .starts_with(&format!("{}:5:7: defaults.ttl: ", path.display())));
    // Nothing of the broken file leaked in, not even its valid max_memory.
    assert!(Arc::ptr_eq(&shared.load(), &first));
    assert_eq!(shared.load().max_memory(), 1 << 20);
    assert_eq!(shared.loaded_at(), first_loaded_at);
    assert_eq!(shared.last_error(), Some(err));

    // A missing file is an error too, and also keeps the old policy.
    std::fs::remove_file(&path).unwrap();
    let err = shared.reload().unwrap_err();
    assert!(err.to_string().contains("cannot read policy file"), "{err}");
    assert!(Arc::ptr_eq(&shared.load(), &first));

    // Fixed: swapped in, error cleared.
    std::thread::sleep(Duration::from_millis(5));
    write_atomic(&path, &policy_text(3));
    let new = shared.reload().unwrap();
    assert_eq!(new.default_ttl(), Duration::from_secs(3));
    assert!(Arc::ptr_eq(&shared.load(), &new));
    assert_ne!(new.hash_hex(), first.hash_hex());
    assert!(shared.loaded_at() > first_loaded_at);
    assert_eq!(shared.last_error(), None);

    // A snapshot taken before the reload is still the old, whole policy.
    assert_eq!(first.default_ttl(), Duration::from_secs(1));
}

#[test]
fn reload_without_a_path_keeps_the_policy() {
    let shared = SharedPolicy::new(Policy::default(), None);
    let before = shared.load();
    let after = shared.reload().unwrap();
    assert!(Arc::ptr_eq(&before, &after));
    assert_eq!(shared.path(), None);
    assert!(shared.loaded_at() <= SystemTime::now());
    let stored = shared.store(Policy::parse(&policy_text(7), None).unwrap());
    assert!(Arc::ptr_eq(&shared.load(), &stored));
}

#[test]
fn concurrent_loads_during_reloads_see_only_whole_policies() {
    let dir = TempDir::new("concurrent");
    let path = dir.path("policy.toml");
    write_atomic(&path, &policy_text(1));
    let shared = Arc::new(SharedPolicy::from_file(path.clone()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(4));

    // Readers: every snapshot must be one file's policy, never a mix.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (shared, stop, start) = (shared.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut loads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let p = shared.load();
                    let n = p.default_ttl().as_secs();
                    assert!((1..=4).contains(&n), "unexpected ttl {n}");
                    assert_eq!(p.max_memory(), n << 20, "a half-applied policy");
                    loads += 1;
                }
                loads
            })
        })
        .collect();

    // A second reloader races the writer's own reloads.
    let racer = {
        let (shared, stop, start) = (shared.clone(), stop.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _ = shared.reload();
                n += 1;
            }
            n
        })
    };

    start.wait();
    for round in 0..200u64 {
        let n = round % 4 + 1;
        if round % 3 == 0 {
            write_atomic(&path, "[defaults]\nttl = \"broken\n");
            assert!(shared.reload().is_err());
        }
        write_atomic(&path, &policy_text(n));
        let p = shared.reload().expect("a valid file reloads");
        assert_eq!(p.max_memory(), p.default_ttl().as_secs() << 20);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
    assert!(racer.join().expect("racer panicked") > 0);

    // After the dust settles, the live policy is the file's last version.
    shared.reload().unwrap();
    assert_eq!(
        shared.load().default_ttl(),
        Duration::from_secs(199 % 4 + 1)
    );
}
