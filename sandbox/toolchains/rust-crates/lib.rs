//! Nothing of its own: this package only makes cargo build the crates in Cargo.toml.
