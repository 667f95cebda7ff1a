//! Compiling a flow: build every component from its options, check the graph (names,
//! ports, cycles, signal types), remove what is on no active path, and fuse branchless
//! chains into one task. [`CompiledFlow`]'s `Display` is what `telemetron flow check` prints.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use super::components::{self, BuildEnv, Built, Component};
use super::config::{FlowConfig, OUT, Overflow};
use super::message::Signals;
use super::{Exporter, FlowError, Processor, Receiver};

/// The role of a component in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No inputs.
    Receiver,
    /// Inputs and outputs.
    Processor,
    /// No outputs.
    Exporter,
}

/// What an output port carries, given what the component receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortType {
    /// What came in.
    Same,
    /// Always these types.
    Fixed(Signals),
    /// What came in, restricted to these types.
    Only(Signals),
    /// What came in, without these types.
    Except(Signals),
}

impl PortType {
    fn apply(self, input: Signals) -> Signals {
        match self {
            PortType::Same => input,
            PortType::Fixed(s) => s,
            PortType::Only(s) => input.intersect(s),
            PortType::Except(s) => Signals::from_bits(input.bits() & !s.bits()),
        }
    }
}

/// A component's signature: its role, the signal types it accepts, and its output ports.
#[derive(Debug, Clone)]
pub struct Signature {
    /// Receiver, processor or exporter.
    pub role: Role,
    /// What it accepts on its input (receivers: nothing).
    pub accepts: Signals,
    /// Its output ports, by name, with their types (exporters: none).
    pub ports: Vec<(&'static str, PortType)>,
}

pub(crate) enum StageKind {
    Receiver(Box<dyn Receiver>),
    Processors(Vec<Box<dyn Processor>>),
    Exporter(Box<dyn Exporter>),
}

/// One task of a compiled flow.
pub(crate) struct Stage {
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) kind: StageKind,
    /// Per output port of the stage's last member: the stages it feeds.
    pub(crate) ports: Vec<Vec<usize>>,
    /// Per member: the receiver stages upstream of it (where its REB goes).
    pub(crate) upstream: Vec<Vec<usize>>,
    /// What sending to the stage does when its queue is full.
    pub(crate) overflow: Overflow,
}

/// Why a node was removed at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The node.
    pub node: String,
    /// Its line in the file.
    pub line: usize,
    /// Why: `no receiver feeds it`, `it reaches no exporter`.
    pub reason: &'static str,
}

/// A flow ready to run: what `flow check` prints and `flow run` starts.
pub struct CompiledFlow {
    pub(crate) name: String,
    pub(crate) queue: usize,
    pub(crate) stages: Vec<Stage>,
    /// Per stage: `(member, component type)`; per port: `(port name, type, destination names)`.
    plan: Vec<PlanStage>,
    removed: Vec<Removed>,
    dead_edges: Vec<String>,
    fuse: bool,
}

struct PlanStage {
    members: Vec<(String, String, Role)>,
    outputs: Vec<(String, Signals, Vec<String>)>,
}

impl fmt::Debug for CompiledFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledFlow").field("name", &self.name).field("tasks", &self.plan.len()).finish()
    }
}

impl CompiledFlow {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The nodes removed by dead-path elimination.
    pub fn removed(&self) -> &[Removed] {
        &self.removed
    }
    /// The tasks it runs as: the node names of each (more than one: a fused chain).
    pub fn tasks(&self) -> Vec<Vec<String>> {
        self.plan.iter().map(|s| s.members.iter().map(|m| m.0.clone()).collect()).collect()
    }
    /// The fused chains (tasks of more than one node).
    pub fn fused(&self) -> Vec<Vec<String>> {
        self.tasks().into_iter().filter(|t| t.len() > 1).collect()
    }
}

impl fmt::Display for CompiledFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: usize = self.plan.iter().map(|s| s.members.len()).sum();
        let fusion = if self.fuse { "on" } else { "off" };
        writeln!(f, "flow `{}`: {nodes} nodes in {} tasks (fusion {fusion})", self.name, self.plan.len())?;
        for (i, s) in self.plan.iter().enumerate() {
            let members: Vec<String> = s
                .members
                .iter()
                .map(|(n, k, r)| match r {
                    Role::Processor => format!("{n} ({k})"),
                    Role::Receiver => format!("{n} ({k}, receiver)"),
                    Role::Exporter => format!("{n} ({k}, exporter)"),
                })
                .collect();
            writeln!(f, "  task {}: {}", i + 1, members.join(" + "))?;
            for (port, ty, dests) in &s.outputs {
                let dests = if dests.is_empty() { "(unconnected: dropped and acknowledged)".to_string() } else { dests.join(", ") };
                writeln!(f, "      {port} -[{ty}]-> {dests}")?;
            }
        }
        if self.removed.is_empty() && self.dead_edges.is_empty() {
            writeln!(f, "removed: nothing")?;
        }
        for r in &self.removed {
            writeln!(f, "removed: {} (line {}): {}", r.node, r.line, r.reason)?;
        }
        for e in &self.dead_edges {
            writeln!(f, "removed: edge {e}: it can carry no signal")?;
        }
        let fused = self.fused();
        if fused.is_empty() {
            writeln!(f, "fused: nothing")?;
        }
        for chain in fused {
            writeln!(f, "fused: {} (one task, no queue between them)", chain.join(" + "))?;
        }
        Ok(())
    }
}

struct Node {
    name: String,
    kind: String,
    line: usize,
    overflow: Overflow,
    sig: Signature,
    component: Option<Component>,
    /// (port index, destination node index)
    edges: Vec<(usize, usize)>,
}

fn err(node: &Node, message: String) -> FlowError {
    FlowError::Config { line: node.line, node: Some(node.name.clone()), message }
}

/// Compile a parsed flow. `env` gives components what they reach outside the flow (the
/// client of the engine or node that channel receivers and exporters use).
pub fn compile(config: FlowConfig, env: &BuildEnv) -> Result<CompiledFlow, FlowError> {
    let mut nodes: Vec<Node> = Vec::with_capacity(config.nodes.len());
    let mut index = BTreeMap::new();
    for n in &config.nodes {
        if index.insert(n.name.clone(), nodes.len()).is_some() {
            return Err(FlowError::Config { line: n.line, node: Some(n.name.clone()), message: "two nodes have this name".into() });
        }
        let ports: Vec<String> = n.to.keys().cloned().collect();
        let Built { signature, component } = components::build(&n.kind, &n.options, &ports, env).map_err(|message| FlowError::Config {
            line: n.line,
            node: Some(n.name.clone()),
            message,
        })?;
        if n.overflow == Overflow::Nack && signature.role == Role::Receiver {
            return Err(FlowError::Config {
                line: n.line,
                node: Some(n.name.clone()),
                message: "`overflow` is about a node's input queue, and a receiver has none".into(),
            });
        }
        nodes.push(Node {
            name: n.name.clone(),
            kind: n.kind.clone(),
            line: n.line,
            overflow: n.overflow,
            sig: signature,
            component: Some(component),
            edges: Vec::new(),
        });
    }
    if nodes.is_empty() {
        return Err(FlowError::Config { line: 0, node: None, message: "the flow has no nodes".into() });
    }
    // Edges.
    for (i, n) in config.nodes.iter().enumerate() {
        let mut edges = Vec::new();
        for (port, dests) in &n.to {
            let node = &nodes[i];
            if node.sig.role == Role::Exporter {
                return Err(err(node, format!("`{}` is an exporter: it has no outputs, remove `to:`", node.kind)));
            }
            let Some(p) = node.sig.ports.iter().position(|(name, _)| name == port) else {
                let ports: Vec<_> = node.sig.ports.iter().map(|p| p.0).collect();
                let hint = if port == OUT { " (give `to:` as a mapping of port to nodes)".to_string() } else { String::new() };
                return Err(err(node, format!("`{}` has no output port `{port}`; its ports are {}{hint}", node.kind, ports.join(", "))));
            };
            for d in dests {
                let Some(&j) = index.get(d) else {
                    return Err(err(node, format!("`to` names `{d}`, which is not a node of this flow")));
                };
                if nodes[j].sig.role == Role::Receiver {
                    return Err(err(node, format!("`{d}` is a receiver: it takes no input")));
                }
                if edges.contains(&(p, j)) {
                    return Err(err(node, format!("`{d}` is named twice on port `{port}`")));
                }
                edges.push((p, j));
            }
        }
        nodes[i].edges = edges;
    }
    // Cycles: Kahn's algorithm; what is left over lies on a cycle.
    let order = topological(&nodes).map_err(|i| {
        let cycle = find_cycle(&nodes, i);
        err(&nodes[i], format!("the flow has a cycle: {}", cycle.join(" -> ")))
    })?;
    // Types, in topological order.
    let mut input = vec![Signals::NONE; nodes.len()];
    let mut dead_edges = BTreeSet::new();
    for &i in &order {
        let n = &nodes[i];
        if n.sig.role != Role::Receiver && !input[i].is_subset(n.sig.accepts) {
            let senders: Vec<String> = nodes.iter().filter(|m| m.edges.iter().any(|&(_, d)| d == i)).map(|m| m.name.clone()).collect();
            return Err(err(n, format!("`{}` accepts {} but receives {} (from {})", n.kind, n.sig.accepts, input[i], senders.join(", "))));
        }
        let own = if n.sig.role == Role::Receiver { Signals::NONE } else { input[i] };
        for &(p, d) in &n.edges {
            let t = n.sig.ports[p].1.apply(own);
            if t.is_empty() {
                dead_edges.insert((i, p, d));
            } else {
                input[d] = input[d].union(t);
            }
        }
    }
    // Dead-path elimination: keep nodes fed by a receiver and reaching an exporter.
    let live = |i: usize, p: usize, d: usize| !dead_edges.contains(&(i, p, d));
    let mut fed = vec![false; nodes.len()];
    for &i in &order {
        if nodes[i].sig.role == Role::Receiver {
            fed[i] = true;
        }
        if fed[i] {
            for &(p, d) in &nodes[i].edges {
                if live(i, p, d) {
                    fed[d] = true;
                }
            }
        }
    }
    let mut reaches = vec![false; nodes.len()];
    for &i in order.iter().rev() {
        reaches[i] = nodes[i].sig.role == Role::Exporter || nodes[i].edges.iter().any(|&(p, d)| live(i, p, d) && reaches[d]);
    }
    let active: Vec<bool> = (0..nodes.len()).map(|i| fed[i] && reaches[i]).collect();
    let removed: Vec<Removed> = order
        .iter()
        .filter(|&&i| !active[i])
        .map(|&i| Removed {
            node: nodes[i].name.clone(),
            line: nodes[i].line,
            reason: if !fed[i] { "no receiver feeds it" } else { "it reaches no exporter" },
        })
        .collect();
    if !active.iter().any(|&a| a) {
        return Err(FlowError::Config {
            line: 0,
            node: None,
            message: "no path leads from a receiver to an exporter: nothing would run".into(),
        });
    }
    let dead_edge_names: Vec<String> = dead_edges
        .iter()
        .filter(|&&(i, _, _)| active[i])
        .map(|&(i, p, d)| format!("{}.{} -> {}", nodes[i].name, nodes[i].sig.ports[p].0, nodes[d].name))
        .collect();
    // The edges that run: live, between active nodes.
    let run_edges: Vec<Vec<(usize, usize)>> = (0..nodes.len())
        .map(|i| nodes[i].edges.iter().copied().filter(|&(p, d)| active[i] && live(i, p, d) && active[d]).collect())
        .collect();
    let edges_of = |i: usize| -> &[(usize, usize)] { &run_edges[i] };
    let mut in_degree = vec![0usize; nodes.len()];
    for &i in &order {
        if active[i] {
            for &(_, d) in edges_of(i) {
                in_degree[d] += 1;
            }
        }
    }
    // Fusion: a processor with one port and one live edge to a processor with one input
    // continues that processor's chain.
    let fusable = |i: usize| -> Option<usize> {
        let n = &nodes[i];
        let e = edges_of(i);
        (config.fuse && n.sig.role == Role::Processor && n.sig.ports.len() == 1 && e.len() == 1)
            .then(|| e[0].1)
            // A node with `overflow: nack` keeps the queue in front of it: it starts a task.
            .filter(|&d| nodes[d].sig.role == Role::Processor && in_degree[d] == 1 && nodes[d].overflow == Overflow::Wait)
    };
    let mut stage_of = vec![usize::MAX; nodes.len()];
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        if !active[i] || stage_of[i] != usize::MAX {
            continue;
        }
        let mut chain = vec![i];
        let mut at = i;
        while let Some(next) = fusable(at) {
            chain.push(next);
            at = next;
        }
        for &m in &chain {
            stage_of[m] = chains.len();
        }
        chains.push(chain);
    }
    // The receivers upstream of each node, for REB.
    let mut receivers_of: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes.len()];
    for &i in &order {
        if !active[i] {
            continue;
        }
        if nodes[i].sig.role == Role::Receiver {
            receivers_of[i].insert(i);
        }
        let mine = receivers_of[i].clone();
        for &(_, d) in edges_of(i) {
            receivers_of[d].extend(mine.iter().copied());
        }
    }
    let mut stages = Vec::with_capacity(chains.len());
    let mut plan = Vec::with_capacity(chains.len());
    for chain in &chains {
        let last = *chain.last().expect("chains are not empty");
        let n_ports = nodes[last].sig.ports.len();
        let mut ports = vec![Vec::new(); n_ports];
        for &(p, d) in edges_of(last) {
            ports[p].push(stage_of[d]);
        }
        let outputs = (0..n_ports)
            .map(|p| {
                let ty = nodes[last].sig.ports[p].1.apply(if nodes[last].sig.role == Role::Receiver { Signals::NONE } else { input[last] });
                let dests = ports[p].iter().map(|&s| nodes[chains[s][0]].name.clone()).collect();
                (nodes[last].sig.ports[p].0.to_string(), ty, dests)
            })
            .collect();
        plan.push(PlanStage {
            members: chain.iter().map(|&m| (nodes[m].name.clone(), nodes[m].kind.clone(), nodes[m].sig.role)).collect(),
            outputs,
        });
        let names = chain.iter().map(|&m| Arc::<str>::from(nodes[m].name.as_str())).collect();
        let mut members: Vec<Component> = chain.iter().map(|&m| nodes[m].component.take().expect("each node is in one chain")).collect();
        let kind = match members.remove(0) {
            Component::Receiver(r) => StageKind::Receiver(r),
            Component::Exporter(e) => StageKind::Exporter(e),
            Component::Processor(p) => {
                let mut ps = vec![p];
                for m in members {
                    match m {
                        Component::Processor(p) => ps.push(p),
                        _ => unreachable!("only processors are fused"),
                    }
                }
                StageKind::Processors(ps)
            }
        };
        let upstream = chain.iter().map(|&m| receivers_of[m].iter().filter(|&&r| r != m).map(|&r| stage_of[r]).collect()).collect();
        stages.push(Stage { names, kind, ports, upstream, overflow: nodes[chain[0]].overflow });
    }
    Ok(CompiledFlow { name: config.name, queue: config.queue, stages, plan, removed, dead_edges: dead_edge_names, fuse: config.fuse })
}

/// Topological order, or `Err(a node on a cycle)`.
fn topological(nodes: &[Node]) -> Result<Vec<usize>, usize> {
    let mut in_degree = vec![0usize; nodes.len()];
    for n in nodes {
        for &(_, d) in &n.edges {
            in_degree[d] += 1;
        }
    }
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| in_degree[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &(_, d) in &nodes[i].edges {
            in_degree[d] -= 1;
            if in_degree[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    match (0..nodes.len()).find(|&i| in_degree[i] > 0) {
        Some(i) => Err(i),
        None => Ok(order),
    }
}

/// The names along one cycle through the left-over part of the graph, starting at `start`.
fn find_cycle(nodes: &[Node], start: usize) -> Vec<String> {
    // Walk forward staying among nodes that can reach `start` again... a simple DFS.
    fn dfs(nodes: &[Node], at: usize, target: usize, seen: &mut Vec<bool>, path: &mut Vec<usize>) -> bool {
        for &(_, d) in &nodes[at].edges {
            if d == target {
                return true;
            }
            if !seen[d] {
                seen[d] = true;
                path.push(d);
                if dfs(nodes, d, target, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut seen = vec![false; nodes.len()];
    let mut path = vec![start];
    // `start` has a positive in-degree after Kahn's algorithm, so it is on a cycle or
    // downstream of one; if no cycle passes through it, report the walk from it.
    if !dfs(nodes, start, start, &mut seen, &mut path) {
        path.truncate(1);
    }
    path.push(start);
    path.into_iter().map(|i| nodes[i].name.clone()).collect()
}
