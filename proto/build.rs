//! Compiles the gRPC contracts with a vendored protoc, so a fresh machine needs no system package,
//! and lists each service's rpcs for the handle macro (`src/handle.rs`), so the .proto is the one
//! list of rpcs.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::FileDescriptorSet;

/// The package every contract is in; its types are reached as `v1::Name` from `handle.rs`.
const PACKAGE: &str = "natter.v1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("natter_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_protos(&["proto/natter.proto"], &["proto"])?;
    let descriptors = FileDescriptorSet::decode(std::fs::read(&descriptor_path)?.as_slice())?;
    std::fs::write(
        out_dir.join("handles.rs"),
        handle_invocations(&descriptors)?,
    )?;
    println!("cargo:rerun-if-changed=proto/natter.proto");
    Ok(())
}

/// One `service_handle!` invocation per service in the contracts, its rpcs in .proto order.
fn handle_invocations(descriptors: &FileDescriptorSet) -> Result<String, String> {
    let mut code = String::new();
    for file in &descriptors.file {
        if file.package() != PACKAGE {
            continue;
        }
        for service in &file.service {
            let name = service.name();
            let module = snake_case(name);
            let _ = writeln!(
                code,
                "use v1::{module}_client::{name}Client;\n\
                 service_handle! {{\n    /// A way to call the `{name}` service.\n    \
                 {name}Handle, v1::{module}_server::{name}, {name}Client,\n    {{"
            );
            for method in &service.method {
                let _ = writeln!(
                    code,
                    "        {}(v1::{}) -> v1::{};",
                    snake_case(method.name()),
                    local_type(method.input_type())?,
                    local_type(method.output_type())?,
                );
            }
            code.push_str("    }\n}\n");
        }
    }
    Ok(code)
}

/// `.natter.v1.SendRequest` → `SendRequest`; a type from another package is refused, since the
/// generated code could not name it.
fn local_type(full_name: &str) -> Result<&str, String> {
    full_name
        .strip_prefix('.')
        .and_then(|name| name.strip_prefix(PACKAGE))
        .and_then(|name| name.strip_prefix('.'))
        .ok_or_else(|| format!("rpc type {full_name} is outside package {PACKAGE}"))
}

/// `PushEphemeral` → `push_ephemeral`, as tonic names methods and modules.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() {
            if index > 0 {
                snake.push('_');
            }
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}
