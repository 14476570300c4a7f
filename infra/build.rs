//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the migrations folders
//! at compile time, and Cargo only notices edits to files it already knows about.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
