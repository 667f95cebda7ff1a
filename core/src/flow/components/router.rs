//! Routing processors: `type_router` (TR), `content_router` (CR), `failover` (FO). Each
//! has a `fallback` port for what its primary rule does not route.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, Receipt, SignalType, Signals};
use super::super::runtime::Cx;
use super::super::signal::{Control, Interests, Nack, SignalKind};
use super::super::{FlowError, Processor};
use super::predicate::Predicate;
use super::{Built, Component, options};

const FALLBACK: &str = "fallback";

fn leak(s: &str) -> &'static str {
    // Port names live as long as the flow's signatures; a flow file has a handful.
    Box::leak(s.to_string().into_boxed_str())
}

// ---- type_router (TR) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

struct TypeRouter {
    /// Port index per signal type (`None`: fallback or dropped).
    port: [Option<usize>; 5],
    fallback: Option<usize>,
}

pub(super) fn type_router(v: &serde_json::Value, ports: &[String]) -> Result<Built, String> {
    let _: NoOptions = options(v)?;
    let mut sig_ports = Vec::new();
    let mut router = TypeRouter { port: [None; 5], fallback: None };
    let mut routed = Signals::NONE;
    for p in ports {
        if p == FALLBACK {
            continue;
        }
        let t = SignalType::parse(p)
            .ok_or_else(|| format!("`to` port `{p}`: a type router's ports are frames, metrics, logs, traces, events and fallback"))?;
        router.port[t as usize] = Some(sig_ports.len());
        routed = routed.with(t);
        sig_ports.push((leak(p), PortType::Only(Signals::of(t))));
    }
    if ports.iter().any(|p| p == FALLBACK) {
        router.fallback = Some(sig_ports.len());
        sig_ports.push((FALLBACK, PortType::Except(routed)));
    }
    if sig_ports.is_empty() {
        return Err("a type router needs `to:` as a mapping of signal type (or fallback) to nodes".into());
    }
    Ok(Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: sig_ports },
        component: Component::Processor(Box::new(router)),
    })
}

impl Processor for TypeRouter {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match self.port[msg.signal as usize].or(self.fallback) {
            Some(p) => cx.emit_to(p, msg),
            None => msg.take_receipt().ack(),
        }
        Ok(())
    }
}

// ---- content_router (CR) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentOptions {
    /// Port name to condition; a row goes to the first route (in port-name order) whose
    /// condition it matches, else to `fallback` (or is dropped when there is none).
    routes: BTreeMap<String, Predicate>,
}

struct ContentRouter {
    routes: Vec<(usize, Predicate)>,
    fallback: Option<usize>,
}

pub(super) fn content_router(v: &serde_json::Value, ports: &[String]) -> Result<Built, String> {
    let o: ContentOptions = options(v)?;
    if o.routes.is_empty() {
        return Err("`routes` names at least one port with its condition".into());
    }
    for p in ports {
        if p != FALLBACK && !o.routes.contains_key(p) {
            return Err(format!("`to` port `{p}` has no entry in `routes`"));
        }
    }
    let mut sig_ports = Vec::new();
    let mut routes = Vec::new();
    for (name, pred) in o.routes {
        routes.push((sig_ports.len(), pred));
        sig_ports.push((leak(&name), PortType::Same));
    }
    let fallback = Some(sig_ports.len());
    sig_ports.push((FALLBACK, PortType::Same));
    Ok(Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: sig_ports },
        component: Component::Processor(Box::new(ContentRouter { routes, fallback })),
    })
}

impl Processor for ContentRouter {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let rows = msg.rows();
        // Route per row: the first matching route takes it.
        let mut taken = vec![false; rows];
        let mut parts: Vec<(usize, arrow_array::BooleanArray)> = Vec::new();
        for (port, pred) in &self.routes {
            let mask = match pred.mask(&msg.data) {
                Ok(m) => m,
                Err(e) => {
                    msg.take_receipt().nack(Nack::rejected(e.clone()));
                    return Err(FlowError::Component(e));
                }
            };
            let mine: arrow_array::BooleanArray = (0..rows).map(|i| Some(!taken[i] && mask.value(i))).collect();
            if mine.true_count() > 0 {
                for (i, t) in taken.iter_mut().enumerate() {
                    *t |= mine.value(i);
                }
                parts.push((*port, mine));
            }
        }
        let rest: arrow_array::BooleanArray = taken.iter().map(|t| Some(!t)).collect();
        if rest.true_count() > 0
            && let Some(fb) = self.fallback
        {
            parts.push((fb, rest));
        }
        match parts.len() {
            0 => msg.take_receipt().ack(),
            1 if parts[0].1.true_count() == rows => cx.emit_to(parts[0].0, msg),
            _ => {
                let mut datas = Vec::with_capacity(parts.len());
                for (_, mask) in &parts {
                    datas
                        .push(arrow_select::filter::filter_record_batch(&msg.data, mask).map_err(|e| FlowError::Component(e.to_string()))?);
                }
                for ((port, _), m) in parts.iter().zip(msg.split(datas)) {
                    cx.emit_to(*port, m);
                }
            }
        }
        Ok(())
    }
}

// ---- failover (FO) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverOptions {
    /// Also send to `fallback` when `primary` has not answered after this long.
    #[serde(default, with = "duration::option")]
    timeout: Option<Duration>,
}

struct Entry {
    copy: Message,
    receipt: Receipt,
    sent: Instant,
    /// Sent to the fallback too.
    failed_over: bool,
}

struct Failover {
    timeout: Option<Duration>,
    entries: HashMap<u64, Entry>,
    next: u64,
}

const PRIMARY: usize = 0;
const FALLBACK_PORT: usize = 1;

pub(super) fn failover(v: &serde_json::Value) -> Result<Built, String> {
    let o: FailoverOptions = options(v)?;
    Ok(Built {
        signature: Signature {
            role: Role::Processor,
            accepts: Signals::ANY,
            ports: vec![("primary", PortType::Same), (FALLBACK, PortType::Same)],
        },
        component: Component::Processor(Box::new(Failover { timeout: o.timeout, entries: HashMap::new(), next: 0 })),
    })
}

impl Failover {
    fn send_to_fallback(&mut self, token: u64, cx: &mut Cx<'_>) {
        let e = self.entries.get_mut(&token).expect("present");
        e.failed_over = true;
        let mut msg = e.copy.detached();
        // Odd tokens are the fallback's sends of entry token/2.
        cx.subscribe(&mut msg, token * 2 + 1);
        cx.emit_to(FALLBACK_PORT, msg);
    }

    fn rearm(&self, cx: &mut Cx<'_>) {
        let Some(t) = self.timeout else { return };
        match self.entries.values().filter(|e| !e.failed_over).map(|e| e.sent + t).min() {
            Some(at) => cx.set_timer(at.saturating_duration_since(Instant::now())),
            None => cx.clear_timer(),
        }
    }
}

impl Processor for Failover {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let receipt = msg.take_receipt();
        let token = self.next;
        self.next += 1;
        let mut out = msg.detached();
        self.entries.insert(token, Entry { copy: msg, receipt, sent: Instant::now(), failed_over: false });
        cx.subscribe(&mut out, token * 2);
        cx.emit_to(PRIMARY, out);
        if self.entries.len() == 1 {
            self.rearm(cx);
        }
        Ok(())
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match signal {
            Control::Ack { token, .. } => {
                // The first ACK, from either side, settles the message.
                if let Some(e) = self.entries.remove(&(token / 2)) {
                    e.receipt.ack();
                }
            }
            Control::Nack { token, nack, .. } => {
                let key = token / 2;
                let from_fallback = token % 2 == 1;
                let Some(e) = self.entries.get(&key) else { return Ok(()) };
                match (from_fallback, e.failed_over) {
                    // The primary failed: try the fallback (unless already there).
                    (false, false) => self.send_to_fallback(key, cx),
                    // The fallback failed: the message is not delivered.
                    (true, _) => {
                        let e = self.entries.remove(&key).expect("present");
                        e.receipt.nack(nack);
                    }
                    // The primary failed after the fallback was already tried: wait for it.
                    (false, true) => {}
                }
                self.rearm(cx);
            }
            Control::Timer => {
                let Some(t) = self.timeout else { return Ok(()) };
                let now = Instant::now();
                let late: Vec<u64> = self.entries.iter().filter(|(_, e)| !e.failed_over && e.sent + t <= now).map(|(k, _)| *k).collect();
                for key in late {
                    self.send_to_fallback(key, cx);
                }
                self.rearm(cx);
            }
            Control::Cancel(id) => {
                let gone: Vec<u64> = self.entries.iter().filter(|(_, e)| e.copy.id == id).map(|(k, _)| *k).collect();
                for key in gone {
                    let e = self.entries.remove(&key).expect("present");
                    e.receipt.nack(Nack::cancelled("cancelled while awaiting delivery"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Timer).with(SignalKind::Cancel)
    }
}
