//! A lab built in code. The builder writes the lab document and
//! [`LabBuilder::build`] validates it as a lab file is validated, so a lab
//! made here obeys the same rules and gets the same messages.

use serde_json::{json, Map, Value};

use super::{DatalinkKind, Error, Lab, RuntimeKind};

/// A lab being built: nodes, links, the lab's datalink and runtime.
///
/// ```
/// use labctl::api::{Impair, Lab, Link, Node};
/// let lab = Lab::builder("routed")
///     .node(Node::new("client").route("198.18.2.0/24", "198.18.1.254"))
///     .node(Node::new("router").sysctl("net.ipv4.ip_forward", "1").normal_kernel())
///     .node(Node::new("server").route("default", "198.18.2.254"))
///     .link(Link::new("client:eth1", "router:left").ipv4("198.18.1.1/24", "198.18.1.254/24"))
///     .link(
///         Link::new("router:right", "server:eth1")
///             .ipv4("198.18.2.254/24", "198.18.2.1/24")
///             .impair(Impair::new().rate("100mbit")),
///     )
///     .build()?;
/// assert_eq!(lab.lab().nodes().len(), 3);
/// // What a lab file may not say, the builder may not either.
/// assert!(Lab::builder("x").link(Link::new("a:eth1", "b:eth1")).build().is_err());
/// # Ok::<(), labctl::api::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LabBuilder {
    doc: Map<String, Value>,
    nodes: Map<String, Value>,
    links: Vec<Value>,
}

impl LabBuilder {
    pub fn new(name: &str) -> LabBuilder {
        let mut doc = Map::new();
        doc.insert("name".into(), json!(name));
        // Labs built in code are for tests of programs on this host: no
        // image, no daemon.
        doc.insert("runtime".into(), json!("netns"));
        LabBuilder {
            doc,
            nodes: Map::new(),
            links: Vec::new(),
        }
    }

    pub fn node(mut self, node: Node) -> LabBuilder {
        self.nodes.insert(node.name, Value::Object(node.fields));
        self
    }

    pub fn link(mut self, link: Link) -> LabBuilder {
        self.links.push(Value::Object(link.fields));
        self
    }

    /// The datalink of every interface that does not name its own
    /// (default af_packet).
    pub fn datalink(mut self, kind: DatalinkKind) -> LabBuilder {
        self.doc
            .insert("datalink".into(), json!(datalink_name(kind)));
        self
    }

    /// Default netns; Docker for nodes with images.
    pub fn runtime(mut self, kind: RuntimeKind) -> LabBuilder {
        self.doc.insert("runtime".into(), json!(kind.as_str()));
        self
    }

    /// The lab in the lab format (JSON, which is YAML), as validated.
    pub fn to_yaml(&self) -> String {
        let mut doc = self.doc.clone();
        doc.insert("nodes".into(), Value::Object(self.nodes.clone()));
        if !self.links.is_empty() {
            doc.insert("links".into(), Value::Array(self.links.clone()));
        }
        serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default()
    }

    /// Validates the lab; every problem is in the error.
    pub fn build(self) -> Result<Lab, Error> {
        Lab::from_yaml(&self.to_yaml())
    }
}

fn datalink_name(kind: DatalinkKind) -> &'static str {
    match kind {
        DatalinkKind::AfPacket => "af_packet",
        DatalinkKind::AfXdp => "af_xdp",
        DatalinkKind::Netmap => "netmap",
    }
}

/// One node of a [`LabBuilder`].
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    fields: Map<String, Value>,
}

impl Node {
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_owned(),
            fields: Map::new(),
        }
    }

    /// The datalink of this node's interfaces.
    pub fn datalink(mut self, kind: DatalinkKind) -> Node {
        self.fields
            .insert("datalink".into(), json!(datalink_name(kind)));
        self
    }

    /// A capability its processes hold on top of their datalinks' own
    /// (`NET_ADMIN`, as in capabilities(7) without `CAP_`).
    pub fn capability(mut self, name: &str) -> Node {
        push(&mut self.fields, "capabilities", json!(name));
        self
    }

    /// A route: `to` a CIDR or `default`, `via` an address on one of the
    /// node's link subnets.
    pub fn route(mut self, to: &str, via: &str) -> Node {
        push(&mut self.fields, "routes", json!({ "to": to, "via": via }));
        self
    }

    /// A `net.*` sysctl of the node.
    pub fn sysctl(mut self, key: &str, value: &str) -> Node {
        insert(&mut self.fields, "sysctls", key, json!(value));
        self
    }

    /// An environment variable of every process in the node.
    pub fn env(mut self, key: &str, value: &str) -> Node {
        insert(&mut self.fields, "env", key, json!(value));
        self
    }

    /// The node's kernel answers ARP and ICMP and forwards as configured
    /// (`kernel: normal`); by default it is silent on lab interfaces.
    pub fn normal_kernel(mut self) -> Node {
        self.fields.insert("kernel".into(), json!("normal"));
        self
    }

    /// A container image (Docker runtime only).
    pub fn image(mut self, image: &str) -> Node {
        self.fields.insert("image".into(), json!(image));
        self
    }

    /// Any other key of the lab format's nodes, as JSON.
    pub fn with(mut self, key: &str, value: Value) -> Node {
        self.fields.insert(key.into(), value);
        self
    }
}

/// One link (a veth pair) of a [`LabBuilder`], between two endpoints
/// `node:interface`.
#[derive(Debug, Clone)]
pub struct Link {
    fields: Map<String, Value>,
}

impl Link {
    pub fn new(a: &str, b: &str) -> Link {
        let mut fields = Map::new();
        fields.insert("endpoints".into(), json!([a, b]));
        Link { fields }
    }

    /// The two ends' addresses, `198.18.0.1/24` style.
    pub fn ipv4(mut self, a: &str, b: &str) -> Link {
        self.fields.insert("ipv4".into(), json!([a, b]));
        self
    }

    /// The address of the first endpoint alone (the other, an L2
    /// device's port, has none).
    pub fn ipv4_a(self, cidr: &str) -> Link {
        self.end_ipv4(0, cidr)
    }

    /// The address of the second endpoint alone.
    pub fn ipv4_b(self, cidr: &str) -> Link {
        self.end_ipv4(1, cidr)
    }

    /// Writes endpoint `index` as a mapping with its own address.
    fn end_ipv4(mut self, index: usize, cidr: &str) -> Link {
        if let Some(Value::Array(ends)) = self.fields.get_mut("endpoints") {
            if let Some(end) = ends.get_mut(index) {
                if let Value::String(brief) = end {
                    let (node, interface) = brief.split_once(':').unwrap_or((brief, ""));
                    *end = json!({ "node": node, "interface": interface });
                }
                if let Value::Object(map) = end {
                    map.insert("ipv4".into(), json!(cidr));
                }
            }
        }
        self
    }

    pub fn mtu(mut self, mtu: u32) -> Link {
        self.fields.insert("mtu".into(), json!(mtu));
        self
    }

    /// Both directions impaired from the start ([`super::RunningLab::impair`]
    /// changes it while the lab runs).
    pub fn impair(mut self, impair: Impair) -> Link {
        self.fields.insert("impair".into(), Value::Object(impair.0));
        self
    }
}

/// An impairment, in the lab format's words: `rate("100mbit")`,
/// `loss("1%")`, `delay("10ms")`, `jitter("2ms")`, and any other key of
/// `impair` with [`Impair::with`].
#[derive(Debug, Clone, Default)]
pub struct Impair(pub(crate) Map<String, Value>);

impl Impair {
    pub fn new() -> Impair {
        Impair::default()
    }

    pub fn rate(self, rate: &str) -> Impair {
        self.with("rate", rate)
    }

    pub fn loss(self, loss: &str) -> Impair {
        self.with("loss", loss)
    }

    pub fn delay(self, delay: &str) -> Impair {
        self.with("delay", delay)
    }

    pub fn jitter(self, jitter: &str) -> Impair {
        self.with("jitter", jitter)
    }

    pub fn with(mut self, key: &str, value: &str) -> Impair {
        self.0.insert(key.into(), json!(value));
        self
    }
}

fn push(fields: &mut Map<String, Value>, key: &str, value: Value) {
    match fields.entry(key).or_insert_with(|| json!([])) {
        Value::Array(items) => items.push(value),
        other => *other = json!([value]),
    }
}

fn insert(fields: &mut Map<String, Value>, key: &str, name: &str, value: Value) {
    match fields.entry(key).or_insert_with(|| json!({})) {
        Value::Object(map) => {
            map.insert(name.into(), value);
        }
        other => {
            let mut map = Map::new();
            map.insert(name.into(), value);
            *other = Value::Object(map);
        }
    }
}
