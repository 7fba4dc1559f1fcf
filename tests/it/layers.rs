//! The import rule of docs/architecture.md: a module uses only its own layer
//! and the layers below (cmd > tap, deploy > transcript > protocol > leaves).
//! `make lint` runs the same script; this test makes `make test` run it too.

use std::path::Path;
use std::process::Command;

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/check-layers.sh"))
        .arg(root.join("src"))
        .output()
        .expect("run scripts/check-layers.sh");
    assert!(
        out.status.success(),
        "scripts/check-layers.sh found imports that go up:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
