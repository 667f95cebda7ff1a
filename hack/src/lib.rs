//! Feature unification for the workspace: see this crate's Cargo.toml. No code.
