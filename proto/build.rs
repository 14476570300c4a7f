//! Compiles the gRPC contracts with a vendored protoc, so a fresh machine needs no system package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    tonic_prost_build::configure().compile_protos(&["proto/natter.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/natter.proto");
    Ok(())
}
