//! `telemetron cluster status`: members, leases and channel placement, read from etcd
//! (docs/cluster.md).

use clap::{Args, Subcommand};
use telemetron::Error;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print the live members with their leases, every node ever registered, and how many
    /// channels each node stores (with --channels, every channel's node).
    Status(StatusArgs),
}

/// Arguments of `cluster status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// etcd client URLs (comma-separated), as given to `serve --cluster`.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd: Vec<String>,
    /// The cluster's key prefix in etcd, as given to `serve --cluster-prefix`.
    #[arg(long, default_value = "/telemetron")]
    pub cluster_prefix: String,
    /// Also list every channel with the node that stores it.
    #[arg(long)]
    pub channels: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(c: ClusterCommand) -> Result<(), Error> {
    let ClusterCommand::Status(a) = c;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
    let st = rt.block_on(telemetron::cluster::status(&a.etcd, &a.cluster_prefix, a.channels))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st).map_err(|e| Error::InvalidArgument { reason: e.to_string() })?);
        return Ok(());
    }
    println!("cluster {} at {}: {} live member(s) of {} node(s)", st.prefix, a.etcd.join(","), st.members.len(), st.nodes.len());
    println!("{:>4}  {:<16} {:<28} {:>18} {:>9} {:>9}", "node", "name", "url", "lease", "ttl left", "channels");
    let mut names: Vec<(&String, &u8)> = st.nodes.iter().collect();
    names.sort_by_key(|(_, n)| **n);
    for (name, node) in names {
        let channels = st.channels.get(node).copied().unwrap_or(0);
        match st.members.iter().find(|m| m.member.node == *node) {
            Some(m) => println!(
                "{:>4}  {:<16} {:<28} {:>18} {:>8}s {:>9}",
                node,
                name,
                m.member.url,
                format!("{:x}", m.member.lease),
                m.lease_ttl_left,
                channels
            ),
            None => println!("{:>4}  {:<16} {:<28} {:>18} {:>9} {:>9}", node, name, "(down)", "-", "-", channels),
        }
    }
    if a.channels {
        println!();
        println!("{:>10}  {:>4}  name", "key", "node");
        for p in &st.placement {
            println!("{:>10}  {:>4}  {}", p.key, p.node, p.name);
        }
    }
    Ok(())
}
