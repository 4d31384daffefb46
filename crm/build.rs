//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!`
//! embeds the files at compile time, and Cargo would not otherwise know
//! they are inputs.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
