//! The lab as a run built it, kept in report.json so report.html can draw
//! it again later (`labctl report`): nodes, links, and for each end its
//! interface, address, datalink and impairments. The drawing is laid out
//! by layout-rs (a pure-Rust Graphviz-like layout with its own SVG
//! output): nothing is placed by hand, and no Graphviz is needed where the
//! run happens.

use std::collections::BTreeSet;

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, RecordDef, ShapeKind};
use layout::topo::layout::VisualGraph;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::lab::{DatalinkKind, Lab, RuntimeKind};

/// What report.html says of the lab besides its steps.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Topology {
    pub description: Option<String>,
    /// The runtime the run used: `docker` or `netns`.
    pub runtime: String,
    /// The datalinks of the lab's interfaces, each once.
    pub datalinks: Vec<DatalinkKind>,
    pub nodes: Vec<TopologyNode>,
    pub links: Vec<TopologyLink>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TopologyNode {
    pub name: String,
    /// Its own image; none for the tools image.
    pub image: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TopologyLink {
    pub ends: [TopologyEnd; 2],
    pub mtu: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TopologyEnd {
    pub node: String,
    pub interface: String,
    /// `198.18.0.1/24`.
    pub ipv4: Option<String>,
    pub mac: Option<String>,
    pub datalink: DatalinkKind,
    /// What happens to the frames this end sends: `rate 4mbit, loss 1%`.
    pub impair: Option<String>,
}

impl TopologyEnd {
    /// `eth1 198.18.0.1/24 af_packet`.
    pub fn label(&self) -> String {
        let mut parts = vec![self.interface.clone()];
        parts.extend(self.ipv4.clone());
        parts.extend(self.mac.clone());
        parts.push(self.datalink.as_str().to_owned());
        parts.join(" ")
    }
}

impl Topology {
    /// The lab as run on `runtime` (its datalinks already those of
    /// `--datalink`).
    pub fn of(lab: &Lab, runtime: RuntimeKind) -> Topology {
        Topology {
            description: lab.description().map(|d| d.trim().to_owned()),
            runtime: runtime.as_str().to_owned(),
            datalinks: lab.datalinks(),
            nodes: lab
                .nodes()
                .iter()
                .map(|n| TopologyNode {
                    name: n.name.clone(),
                    image: n.image.clone(),
                })
                .collect(),
            links: lab
                .links()
                .iter()
                .map(|link| TopologyLink {
                    ends: link.endpoints.clone().map(|e| TopologyEnd {
                        node: e.node,
                        interface: e.interface,
                        ipv4: e.ipv4.map(|a| a.to_string()),
                        mac: e.mac.map(|m| m.to_string()),
                        datalink: e.datalink,
                        impair: e.impair.map(|i| i.to_string()),
                    }),
                    mtu: link.mtu,
                })
                .collect(),
        }
    }
}

/// What the drawing marks as failed: nodes where a step failed, and the
/// interfaces (`node:iface`) a link-state step set down.
#[derive(Debug, Default)]
pub struct Marks {
    pub failed_nodes: BTreeSet<String>,
    pub cut: BTreeSet<String>,
}

const FAILED: &str = "#c62828";
const FAILED_FILL: &str = "#fdecea";

/// The topology as an SVG drawing (without the XML declaration, to be
/// put inline in a page), or `None` when layout-rs cannot lay it out (a
/// lab without nodes; a panic inside the layout, which is caught: a page
/// without its drawing beats no page).
pub fn svg(topology: &Topology, marks: &Marks) -> Option<String> {
    if topology.nodes.is_empty() {
        return None;
    }
    let drawn = std::panic::catch_unwind(|| draw(topology, marks)).ok()?;
    // The declaration is for a file of its own; inline it is noise.
    let start = drawn.find("<svg")?;
    Some(sorted_style(&drawn[start..]))
}

/// The drawing with the lines of its `<style>` block sorted: layout-rs
/// writes them from a HashMap, in an order that changes from run to run,
/// and a page rendered again must be the same.
fn sorted_style(svg: &str) -> String {
    let (Some(open), Some(close)) = (svg.find("<style>\n"), svg.find("</style>")) else {
        return svg.to_owned();
    };
    let body = open + "<style>\n".len();
    if close < body {
        return svg.to_owned();
    }
    let mut rules: Vec<&str> = svg[body..close].lines().collect();
    rules.sort_unstable();
    let mut out = String::with_capacity(svg.len());
    out.push_str(&svg[..body]);
    for rule in rules {
        out.push_str(rule);
        out.push('\n');
    }
    out.push_str(&svg[close..]);
    out
}

fn draw(topology: &Topology, marks: &Marks) -> String {
    let orientation = Orientation::LeftToRight;
    let mut graph = VisualGraph::new(orientation);
    let font = 14;
    let handles: Vec<_> = topology
        .nodes
        .iter()
        .map(|node| {
            // A record: the node's name (and image), then one field per
            // interface, each a port the links start from.
            let mut title = clean(&node.name);
            if let Some(image) = &node.image {
                title = format!("{title} ({})", clean(image));
            }
            let mut fields = vec![RecordDef::new_text(&title)];
            for (index, end) in ends_of(topology, &node.name).enumerate() {
                fields.push(RecordDef::new_text_with_port(
                    &clean(&end.label()),
                    &format!("p{index}"),
                ));
            }
            // A record's fields go along the flow (left to right here),
            // a nested record's across it: one field under the other.
            let shape = ShapeKind::new_record(&RecordDef::Array(vec![RecordDef::Array(fields)]));
            let failed = marks.failed_nodes.contains(&node.name);
            let look = if failed {
                StyleAttr::new(color(FAILED), 3, Some(color(FAILED_FILL)), 0, font)
            } else {
                StyleAttr::new(color("#37474f"), 1, Some(color("#f5f7fa")), 0, font)
            };
            let size = get_shape_size(orientation, &shape, font, false);
            graph.add_node(Element::create(shape, look, orientation, size))
        })
        .collect();
    let index_of = |name: &str| topology.nodes.iter().position(|n| n.name == name);
    for link in &topology.links {
        let [a, b] = &link.ends;
        let (Some(from), Some(to)) = (index_of(&a.node), index_of(&b.node)) else {
            continue;
        };
        let cut = [a, b]
            .iter()
            .any(|e| marks.cut.contains(&format!("{}:{}", e.node, e.interface)));
        let mut notes = Vec::new();
        if let Some(mtu) = link.mtu {
            notes.push(format!("mtu {mtu}"));
        }
        match (&a.impair, &b.impair) {
            (Some(x), Some(y)) if x == y => notes.push(x.clone()),
            _ => {
                for (end, other) in [(a, b), (b, a)] {
                    if let Some(impair) = &end.impair {
                        notes.push(format!("{} → {}: {impair}", end.node, other.node));
                    }
                }
            }
        }
        if cut {
            notes.push("cut during the run".to_owned());
        }
        let look = if cut {
            StyleAttr::new(color(FAILED), 3, None, 0, 12)
        } else {
            StyleAttr::new(color("#455a64"), 2, None, 0, 12)
        };
        let arrow = Arrow::new(
            LineEndKind::None,
            LineEndKind::None,
            if cut {
                LineStyleKind::Dashed
            } else {
                LineStyleKind::Normal
            },
            // One note a line: a long one-line label widens the drawing
            // (and, laid left to right, heightens it) far beyond the nodes.
            &notes
                .iter()
                .map(|n| clean(n))
                .collect::<Vec<_>>()
                .join("\n"),
            &look,
            &Some(port(topology, a)),
            &Some(port(topology, b)),
        );
        graph.add_edge(arrow, handles[from], handles[to]);
    }
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    writer.finalize()
}

/// The ends of links in `node`, in file order (their record fields).
fn ends_of<'a>(topology: &'a Topology, node: &'a str) -> impl Iterator<Item = &'a TopologyEnd> {
    topology
        .links
        .iter()
        .flat_map(|l| l.ends.iter())
        .filter(move |e| e.node == node)
}

/// The port of `end` in its node's record.
fn port(topology: &Topology, end: &TopologyEnd) -> String {
    let index = ends_of(topology, &end.node)
        .position(|e| e.interface == end.interface)
        .unwrap_or_default();
    format!("p{index}")
}

fn color(web: &str) -> Color {
    Color::from_name(web).unwrap_or_else(|| Color::fast("black"))
}

/// Text for the drawing: layout-rs escapes markup, control characters
/// are dropped here (they have no place in a label).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn lab() -> Lab {
        let source = r#"
name: three
description: a "quoted" <lab>
nodes:
  client: {}
  dut: {}
  server: {}
links:
  - endpoints:
      - { node: client, interface: eth1, ipv4: 198.18.4.1/24, impair: { rate: 4mbit } }
      - { node: dut, interface: west }
  - endpoints:
      - { node: dut, interface: east }
      - { node: server, interface: eth1, ipv4: 198.18.4.2/24 }
"#;
        crate::lab::parse(source, Path::new("three.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_drawing_names_every_node_interface_address_and_impairment() {
        let topology = Topology::of(&lab(), RuntimeKind::Netns);
        assert_eq!(topology.runtime, "netns");
        let mut marks = Marks::default();
        marks.failed_nodes.insert("server".into());
        marks.cut.insert("dut:east".into());
        let svg = svg(&topology, &marks).expect("a drawing");
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            ">client<",
            ">dut<",
            ">server<",
            "eth1 198.18.4.1/24 af_packet",
            "west af_packet",
            "client → dut: rate 4mbit",
            "cut during the run",
        ] {
            assert!(svg.contains(text), "{text} missing in {svg}");
        }
        // The failed node and the cut link are drawn in the failure colour.
        assert!(svg.to_lowercase().contains("c62828"), "{svg}");
    }

    #[test]
    fn the_drawing_is_the_same_every_time() {
        let topology = Topology::of(&lab(), RuntimeKind::Docker);
        let first = svg(&topology, &Marks::default()).unwrap();
        assert!(first.contains("<style>\n.a12 {"), "{first}");
        for _ in 0..20 {
            assert_eq!(svg(&topology, &Marks::default()).unwrap(), first);
        }
        assert_eq!(
            sorted_style("<svg><style>\nb\na\n</style></svg>"),
            "<svg><style>\na\nb\n</style></svg>"
        );
    }

    #[test]
    fn a_topology_without_nodes_has_no_drawing() {
        let mut topology = Topology::of(&lab(), RuntimeKind::Docker);
        topology.nodes.clear();
        topology.links.clear();
        assert!(svg(&topology, &Marks::default()).is_none());
    }
}
