//! The YAML configuration of a flow (`docs/dataflow.md` §5 is the reference).
//!
//! ```yaml
//! flow: logs-to-queue          # the flow's name
//! fuse: true                   # chain fusion (default true)
//! nodes:
//!   gen:                       # a node: its name, then its type and options
//!     type: generator
//!     signal: logs
//!     to: [batch]              # where its output goes (or {port: [names]} for routers)
//!   batch:
//!     type: batch
//!     max_rows: 512
//!     timeout: 10ms
//!     to: [out]
//!   out:
//!     type: debug
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::FlowError;

/// What sending to a node does when its input queue is full: the `overflow:` key of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// `wait` (the default): the sender waits for room. Backpressure reaches the source.
    #[default]
    Wait,
    /// `nack`: the message is NACKed `unavailable` (retryable) at once and counted as
    /// `dropped` on this node. A slow or frozen destination then never holds up the nodes
    /// before it: a failover sends the message to its fallback, a best-effort path drops it.
    Nack,
}

/// A parsed flow file, before compilation.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// The flow's name.
    pub name: String,
    /// Whether branchless chains run fused (one task, no queue between members).
    pub fuse: bool,
    /// Capacity of the queue in front of each task, in messages.
    pub queue: usize,
    /// The nodes, in file order.
    pub nodes: Vec<NodeConfig>,
}

/// One node of the file.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Its name (the key under `nodes:`).
    pub name: String,
    /// Its component type (`generator`, `batch`, ...).
    pub kind: String,
    /// Its outputs: port name to destination node names. A plain list is the port `out`.
    pub to: BTreeMap<String, Vec<String>>,
    /// Every other key: the component's options.
    pub options: serde_json::Value,
    /// What sending to this node does when its input queue is full (`overflow:`).
    pub overflow: Overflow,
    /// The 1-based line of its name in the file (0 when built in code).
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    flow: String,
    #[serde(default = "yes")]
    fuse: bool,
    #[serde(default = "default_queue")]
    queue: usize,
    nodes: serde_yaml_ng::Mapping,
}

fn yes() -> bool {
    true
}

fn default_queue() -> usize {
    64
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTo {
    List(Vec<String>),
    One(String),
    Ports(BTreeMap<String, RawTo>),
}

impl RawTo {
    fn names(self) -> Vec<String> {
        match self {
            RawTo::List(v) => v,
            RawTo::One(s) => vec![s],
            RawTo::Ports(_) => Vec::new(),
        }
    }
}

/// The default output port.
pub const OUT: &str = "out";

impl FlowConfig {
    /// Parse a flow file. `${VAR}` and `${VAR:-default}` are replaced by environment
    /// variables first (an unset variable without a default is an error). Errors name the
    /// line.
    pub fn parse(src: &str) -> Result<FlowConfig, FlowError> {
        let expanded = expand_env(src, |name| std::env::var(name).ok())?;
        let src = expanded.as_str();
        let raw: RawFlow = serde_yaml_ng::from_str(src).map_err(|e| FlowError::Config {
            line: e.location().map_or(0, |l| l.line()),
            node: None,
            message: e.to_string(),
        })?;
        if raw.queue == 0 {
            return Err(FlowError::Config { line: key_line(src, "queue", 0), node: None, message: "`queue` must be at least 1".into() });
        }
        let nodes_line = key_line(src, "nodes", 0);
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (key, value) in raw.nodes {
            let Some(name) = key.as_str().map(str::to_string) else {
                return Err(FlowError::Config {
                    line: nodes_line,
                    node: None,
                    message: format!("node names must be strings, found {key:?}"),
                });
            };
            let line = node_line(src, &name, nodes_line);
            let err = |message: String| FlowError::Config { line, node: Some(name.clone()), message };
            let serde_yaml_ng::Value::Mapping(mut map) = value else {
                return Err(err("a node is a mapping with at least `type:`".into()));
            };
            let kind = match map.remove("type") {
                Some(serde_yaml_ng::Value::String(s)) => s,
                Some(serde_yaml_ng::Value::Null) => {
                    return Err(err(
                        "`type` is empty (YAML reads `null` as nothing; the exporter that drops everything is `discard`)".into()
                    ));
                }
                Some(_) => return Err(err("`type` must be a string".into())),
                None => return Err(err("missing `type` (for example `type: batch`)".into())),
            };
            let to = match map.remove("to") {
                None => BTreeMap::new(),
                Some(v) => match serde_yaml_ng::from_value::<RawTo>(v) {
                    Ok(RawTo::Ports(ports)) => ports.into_iter().map(|(p, t)| (p, t.names())).collect(),
                    Ok(t) => BTreeMap::from([(OUT.to_string(), t.names())]),
                    Err(_) => return Err(err("`to` is a node name, a list of names, or a mapping of port to names".into())),
                },
            };
            let overflow = match map.remove("overflow") {
                None => Overflow::Wait,
                Some(serde_yaml_ng::Value::String(s)) if s == "wait" => Overflow::Wait,
                Some(serde_yaml_ng::Value::String(s)) if s == "nack" => Overflow::Nack,
                Some(_) => return Err(err("`overflow` is `wait` (the default) or `nack`".into())),
            };
            let options = serde_json::to_value(serde_yaml_ng::Value::Mapping(map)).map_err(|e| err(format!("options: {e}")))?;
            nodes.push(NodeConfig { name, kind, to, options, overflow, line });
        }
        Ok(FlowConfig { name: raw.flow, fuse: raw.fuse, queue: raw.queue, nodes })
    }
}

/// Replace `${VAR}` and `${VAR:-default}` with `lookup(VAR)` (or the default).
fn expand_env(src: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, FlowError> {
    let mut out = String::with_capacity(src.len());
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                return Err(FlowError::Config { line: n + 1, node: None, message: "`${` without a closing `}`".into() });
            };
            let inner = &rest[at + 2..at + end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match lookup(name).or(default.map(str::to_string)) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(FlowError::Config {
                        line: n + 1,
                        node: None,
                        message: format!("environment variable `{name}` is not set (or write `${{{name}:-default}}`)"),
                    });
                }
            }
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Whether `line` (indentation removed) is `key:` or `"key":`.
fn is_key(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let rest = t.strip_prefix(key).or_else(|| t.strip_prefix('"').and_then(|t| t.strip_prefix(key)).and_then(|t| t.strip_prefix('"')));
    rest.is_some_and(|r| r.trim_start().starts_with(':'))
}

/// The 1-based line of the top-level `key:`, 0 when not found.
fn key_line(src: &str, key: &str, after: usize) -> usize {
    src.lines().enumerate().skip(after).find(|(_, l)| !l.starts_with([' ', '\t']) && is_key(l, key)).map_or(0, |(i, _)| i + 1)
}

/// The line of node `name`: a key at the indentation of the first key under `nodes:` (line
/// `nodes_line`), so an option of the same name in another node is not mistaken for it.
/// Falls back to `nodes_line` (flow-style mappings).
fn node_line(src: &str, name: &str, nodes_line: usize) -> usize {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = src.lines().enumerate().skip(nodes_line).filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((first, first_line)) = lines.next() else { return nodes_line };
    let width = indent(first_line);
    std::iter::once((first, first_line))
        .chain(lines)
        .take_while(|(_, l)| indent(l) >= width && width > 0)
        .find(|(_, l)| indent(l) == width && is_key(l, name))
        .map_or(nodes_line, |(i, _)| i + 1)
}

pub use crate::telem::parse_duration;

/// Serde helper: a duration option written as `10ms`.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
            Raw::Secs(s) => Err(D::Error::custom(format!("{s} is not a duration"))),
            Raw::Text(t) => {
                super::parse_duration(&t).ok_or_else(|| D::Error::custom(format!("{t:?} is not a duration (write 250us, 10ms, 2s, 1m)")))
            }
        }
    }

    pub(crate) mod option {
        use std::time::Duration;

        use serde::Deserializer;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_nodes_ports_and_lines() {
        let src = "flow: t\nnodes:\n  gen:\n    type: generator\n    to: [r]\n  r:\n    type: type_router\n    to:\n      logs: [a]\n      fallback: b\n  a: {type: debug}\n  b:\n    type: debug\n";
        let f = FlowConfig::parse(src).unwrap();
        assert_eq!(f.name, "t");
        assert_eq!(f.nodes.len(), 4);
        assert_eq!(f.nodes[0].line, 3);
        assert_eq!(f.nodes[0].to[OUT], vec!["r"]);
        assert_eq!(f.nodes[1].to["logs"], vec!["a"]);
        assert_eq!(f.nodes[1].to["fallback"], vec!["b"]);
        assert_eq!(f.nodes[3].line, 12);
    }

    #[test]
    fn reports_yaml_errors_with_a_line() {
        let err = FlowConfig::parse("flow: t\nnodes:\n  a: [unclosed\n").unwrap_err();
        assert!(matches!(err, FlowError::Config { line, .. } if line > 0), "{err}");
        let err = FlowConfig::parse("flow: t\nnodes:\n  a:\n    to: [b]\n").unwrap_err();
        assert!(err.to_string().contains("missing `type`"), "{err}");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn environment_variables_are_expanded() {
        let env = |n: &str| (n == "NODE").then(|| "http://h:1".to_string());
        assert_eq!(expand_env("url: ${NODE}\nx: ${MISSING:-7}\n", env).unwrap(), "url: http://h:1\nx: 7\n");
        let e = expand_env("a: 1\nb: ${MISSING}\n", env).unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("`MISSING` is not set"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10ms"), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
