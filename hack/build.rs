// Cargo only resolves `[build-dependencies]` for a package with a build script; this one is
// empty. See Cargo.toml.
fn main() {}
