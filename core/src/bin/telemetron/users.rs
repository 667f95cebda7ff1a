//! `telemetron users add|list|remove|passwd`: a data directory's users and roles (`--data`;
//! the node must be stopped), or a cluster's accounts in etcd (`--cluster`; every node of
//! the cluster follows them at once).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use telemetron::users::{NewUser, Role};
use telemetron::{Engine, Error};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password comes from --password, TELEMETRON_PASSWORD, or the first
    /// line of standard input.
    Add(AddArgs),
    /// List users and their roles.
    List(Dir),
    /// Remove a user (their sessions end at their next request).
    Remove {
        /// The user.
        name: String,
        #[command(flatten)]
        dir: Dir,
    },
    /// Set a user's password (same sources as `add`).
    Passwd {
        /// The user.
        name: String,
        /// The new password (prefer TELEMETRON_PASSWORD or standard input: the command
        /// line is visible to other users of the machine).
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        dir: Dir,
    },
}

#[derive(Debug, Args)]
pub struct Dir {
    /// The node's data directory (the node must be stopped: a data directory is opened by
    /// one process at a time). Its users log in on that node only.
    #[arg(long, default_value = "telemetron-data")]
    pub data: PathBuf,
    /// Manage the cluster's accounts instead: etcd client URLs (comma-separated), as given
    /// to `serve --cluster`. They log in on every node, and a change reaches every node at
    /// once (no restart).
    #[arg(long, value_delimiter = ',', conflicts_with = "data")]
    pub cluster: Vec<String>,
    /// The cluster's key prefix in etcd, as given to `serve --cluster-prefix`.
    #[arg(long, default_value = "/telemetron", requires = "cluster")]
    pub cluster_prefix: String,
}

impl Dir {
    /// Where the users are: a cluster's etcd, or else a data directory.
    fn cluster(&self) -> Option<(&[String], &str)> {
        (!self.cluster.is_empty()).then_some((self.cluster.as_slice(), self.cluster_prefix.as_str()))
    }
}

/// Run a cluster request to its end.
fn block_on<T>(f: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?
        .block_on(f)
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Login name.
    pub name: String,
    /// viewer (read and stream), operator (also write and command), admin (also
    /// channels, deletes, flows, users).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Operators: the highest authority they may command at (default 255).
    #[arg(long)]
    pub max_authority: Option<u8>,
    /// Operators: name patterns of the channels they may write, comma-separated (`*` any
    /// run of characters, `?` one; default `*`).
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// The password (prefer TELEMETRON_PASSWORD or standard input).
    #[arg(long)]
    pub password: Option<String>,
    #[command(flatten)]
    pub dir: Dir,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

/// The password from the option, the environment, or standard input's first line.
fn password(given: Option<String>) -> Result<String, Error> {
    if let Some(p) = given.or_else(|| std::env::var("TELEMETRON_PASSWORD").ok()) {
        return Ok(p);
    }
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot read the password from standard input: {e}") })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn open(dir: &Path) -> Result<Engine, Error> {
    Engine::open(dir).map_err(|e| match e.code() {
        "engine.already_open" => Error::InvalidArgument { reason: format!("{e}; stop the node, change its users, and start it again") },
        _ => e,
    })
}

pub fn run(cmd: UsersCommand) -> Result<(), Error> {
    match cmd {
        UsersCommand::Add(a) => {
            let new = NewUser {
                name: a.name,
                password: password(a.password)?,
                role: a.role,
                max_authority: a.max_authority,
                channels: a.channels,
            };
            let (u, whose) = match a.dir.cluster() {
                Some((etcd, prefix)) => (block_on(telemetron::cluster::add_user(etcd, prefix, new))?, "the cluster"),
                None => {
                    let engine = open(&a.dir.data)?;
                    let u = engine.users().add(new)?;
                    engine.close()?;
                    (u, "this data directory")
                }
            };
            println!("added {} to {whose} ({})", u.name, describe(&u));
            Ok(())
        }
        UsersCommand::List(d) => {
            let users = match d.cluster() {
                Some((etcd, prefix)) => block_on(telemetron::cluster::list_users(etcd, prefix))?,
                None => {
                    let engine = open(&d.data)?;
                    let users = engine.users().list();
                    engine.close()?;
                    users
                }
            };
            println!("{:<24} {:<9} rights", "name", "role");
            for u in users {
                println!("{:<24} {:<9} {}", u.name, u.role.to_string(), describe(&u));
            }
            Ok(())
        }
        UsersCommand::Remove { name, dir } => {
            match dir.cluster() {
                Some((etcd, prefix)) => block_on(telemetron::cluster::remove_user(etcd, prefix, &name))?,
                None => {
                    let engine = open(&dir.data)?;
                    engine.users().remove(&name)?;
                    engine.close()?;
                }
            }
            println!("removed {name}");
            Ok(())
        }
        UsersCommand::Passwd { name, password: given, dir } => {
            let pw = password(given)?;
            match dir.cluster() {
                Some((etcd, prefix)) => block_on(telemetron::cluster::set_user_password(etcd, prefix, &name, &pw))?,
                None => {
                    let engine = open(&dir.data)?;
                    engine.users().set_password(&name, &pw)?;
                    engine.close()?;
                }
            }
            println!("password of {name} changed");
            Ok(())
        }
    }
}

fn describe(u: &telemetron::users::User) -> String {
    match u.role {
        Role::Viewer => "read, stream".into(),
        Role::Operator => format!("read, stream, write {} up to authority {}", u.channels.join(","), u.max_authority),
        Role::Admin => "everything".into(),
    }
}
