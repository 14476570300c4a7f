//! The `natter` command line.

use std::process::Command;

fn natter(args: &[&str], data: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(args)
        .env("NATTER_NODE__DATA_DIR", data)
        .env_remove("NATTER_CONFIG")
        .output()
        .expect("natter runs")
}

#[test]
fn config_prints_the_effective_configuration_with_overrides() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("config")
        .env("NATTER_TASK__LOCK_TTL_MS", "1234")
        .env("NATTER_NODE__DATA_DIR", data.path())
        .env(
            "NATTER_AUTH__JWT_SECRET",
            "cli-test-signing-secret-0123456789",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("lock_ttl_ms = 1234"), "{printed}");
    assert!(
        !printed.contains("cli-test-signing-secret") && printed.contains("<redacted: 34"),
        "the secret is not printed: {printed}"
    );
    assert!(
        printed.contains("[connect]") && printed.contains("[listen]"),
        "{printed}"
    );
}

#[test]
fn serving_one_layer_says_what_it_lacks() {
    let data = tempfile::tempdir().unwrap();
    for layer in ["api", "logic", "task", "connect"] {
        let output = natter(&["serve", layer], data.path());
        assert!(!output.status.success(), "serve {layer} needs a secret");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("auth.jwt_secret"), "serve {layer}: {error}");
    }
    // With a secret but no etcd to register in, it stops and names etcd.
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["serve", "task"])
        .env("NATTER_NODE__DATA_DIR", data.path())
        .env(
            "NATTER_AUTH__JWT_SECRET",
            "a-test-secret-of-at-least-32-characters",
        )
        .env("NATTER_CLUSTER__ETCD", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("etcd"), "{error}");
}

#[test]
fn migrate_creates_the_database() {
    let data = tempfile::tempdir().unwrap();
    let output = natter(&["migrate"], data.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(data.path().join("natter.db").exists());
    // Running it again is a no-op.
    assert!(natter(&["migrate"], data.path()).status.success());
}

#[test]
fn a_bad_configuration_file_is_refused_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("natter.toml");
    std::fs::write(&file, "[task]\nlock_tl_ms = 5\n").unwrap();
    let output = natter(&["--config", file.to_str().unwrap(), "config"], data.path());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lock_tl_ms"));
}
