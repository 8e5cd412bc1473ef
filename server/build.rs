//! `sqlx::migrate!` embeds `migrations/` at compile time, and cargo does not know the macro
//! read that folder: without this, a new migration would not reach the binary until some
//! Rust file changed (sqlx's documented remedy).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
