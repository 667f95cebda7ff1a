//! Reaching a node from the command line: the `--url/--token/--ca-cert` options that
//! `stream`, `export`, `flow run` and the `flow` management commands share.

use std::path::PathBuf;

use clap::Args;
use telemetron::{Client, ConnectOptions, Credentials, Error};

/// The node a command talks to.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node (`http://host:port`, or `https://` with TLS).
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub url: String,
    /// Bearer token, if the node requires one (or TELEMETRON_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for https.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

impl NodeArgs {
    /// Connect to the node.
    pub async fn connect(&self) -> Result<Client, Error> {
        connect(&self.url, self.token.as_deref(), self.ca_cert.clone()).await
    }
}

/// Connect to `url` with a bearer `token` (default: `TELEMETRON_TOKEN`) and `ca_cert`.
pub async fn connect(url: &str, token: Option<&str>, ca_cert: Option<PathBuf>) -> Result<Client, Error> {
    let token = token.map(str::to_string).or_else(|| std::env::var("TELEMETRON_TOKEN").ok().filter(|t| !t.is_empty()));
    let credentials = token.map_or(Credentials::None, |token| Credentials::Token { token });
    telemetron::connect(url, ConnectOptions { credentials, ca_cert, ..ConnectOptions::default() }).await
}
