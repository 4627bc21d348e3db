//! `labctl graph`: a lab's topology as Graphviz DOT or Mermaid.
//!
//! Nodes are boxes (with their image, if not the tools image, and their
//! host in a lab across hosts); each link is an edge whose two ends carry
//! the interface name, its address and its datalink; the edge's label says
//! its MTU, its impairments, and its VXLAN tunnel across hosts.

use std::fmt::Write as _;

use super::model::{Endpoint, Lab, Link, Node};

/// The output formats of `labctl graph`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz: `labctl graph lab.yaml | dot -Tsvg > lab.svg`.
    #[default]
    Dot,
    /// Mermaid, for Markdown that GitHub or GitLab renders.
    Mermaid,
}

pub fn render(lab: &Lab, format: Format) -> String {
    match format {
        Format::Dot => dot(lab),
        Format::Mermaid => mermaid(lab),
    }
}

/// The lab as a Graphviz graph. Each node is a table: its name (and
/// image), then one row per interface; links join the rows, so labels
/// never pile up on the edges.
pub fn dot(lab: &Lab) -> String {
    let mut out = String::new();
    let title = match lab.description() {
        Some(d) => format!("{}: {d}", lab.name()),
        None => lab.name().to_owned(),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "graph {} {{", dot_string(lab.name()));
    let _ = writeln!(
        out,
        "  graph [label={}, labelloc=t, rankdir=LR, nodesep=0.5, ranksep=1.5, \
         fontname=Helvetica];\n  \
         node [shape=plain, fontname=Helvetica];\n  \
         edge [fontname=Helvetica, fontsize=10];",
        dot_string(&title)
    );
    for node in lab.nodes() {
        let _ = writeln!(
            out,
            "  {} [label=<{}>];",
            dot_string(&node.name),
            node_table(lab, node)
        );
    }
    for link in lab.links() {
        let [a, b] = &link.endpoints;
        let label = link_notes(lab, link);
        let label = if label.is_empty() {
            String::new()
        } else {
            format!(" [label={}]", dot_string(&label.join("\n")))
        };
        let _ = writeln!(out, "  {} -- {}{label};", port(lab, a), port(lab, b));
    }
    out.push_str("}\n");
    out
}

/// A node as an HTML-like Graphviz table, one row (and port) per interface.
fn node_table(lab: &Lab, node: &Node) -> String {
    let mut table = String::from(
        "<table border=\"1\" cellborder=\"0\" cellspacing=\"0\" cellpadding=\"4\" style=\"rounded\">",
    );
    let _ = write!(table, "<tr><td><b>{}</b></td></tr>", html(&node.name));
    for detail in node_details(node) {
        let _ = write!(
            table,
            "<tr><td><font point-size=\"10\">{}</font></td></tr>",
            html(&detail)
        );
    }
    for (index, end) in lab.interfaces_of(&node.name).enumerate() {
        let _ = write!(
            table,
            "<tr><td port=\"p{index}\" border=\"1\" sides=\"t\"><font point-size=\"10\">{}</font></td></tr>",
            html(&end_label(end, " "))
        );
    }
    table.push_str("</table>");
    table
}

/// What a node's box says under its name: its image, its host.
fn node_details(node: &Node) -> Vec<String> {
    let mut details: Vec<String> = node.image.iter().cloned().collect();
    if let Some(host) = &node.host {
        details.push(format!("on host {host}"));
    }
    details
}

/// `"node":p3`: the row of `end` in its node's table.
fn port(lab: &Lab, end: &Endpoint) -> String {
    let index = lab
        .interfaces_of(&end.node)
        .position(|e| e.interface == end.interface)
        .unwrap_or_default();
    format!("{}:p{index}", dot_string(&end.node))
}

/// The lab as a Mermaid flowchart.
pub fn mermaid(lab: &Lab) -> String {
    let mut out = String::from("flowchart LR\n");
    // Mermaid reads `-` as part of an arrow: nodes get plain ids, and their
    // names go in labels.
    let id = |name: &str| {
        let index = lab.nodes().iter().position(|n| n.name == name);
        format!("n{}", index.unwrap_or_default())
    };
    for node in lab.nodes() {
        let label = std::iter::once(node.name.clone())
            .chain(node_details(node))
            .collect::<Vec<_>>()
            .join("<br/>");
        let _ = writeln!(out, "  {}[\"{}\"]", id(&node.name), mermaid_text(&label));
    }
    for link in lab.links() {
        let [a, b] = &link.endpoints;
        let _ = writeln!(
            out,
            "  {} ---|\"{}\"| {}",
            id(&a.node),
            mermaid_text(&mermaid_link_label(lab, link)),
            id(&b.node)
        );
    }
    out
}

fn mermaid_link_label(lab: &Lab, link: &Link) -> String {
    let [a, b] = &link.endpoints;
    let mut label = format!("{} — {}", end_label(a, " "), end_label(b, " "));
    let notes = link_notes(lab, link);
    if !notes.is_empty() {
        let _ = write!(label, " ({})", notes.join("; "));
    }
    label
}

/// What a link's label says besides its ends: `vxlan a–b vni 1001`
/// across hosts, `mtu 9000`, then its impairments (`rate 100mbit, loss
/// 1%`), per direction where they differ.
fn link_notes(lab: &Lab, link: &Link) -> Vec<String> {
    let [a, b] = &link.endpoints;
    let mut notes = Vec::new();
    if let Some([x, y]) = lab.link_hosts(link) {
        let vni = link
            .vxlan
            .and_then(|v| v.vni)
            .map(|vni| format!(" vni {vni}"))
            .unwrap_or_default();
        notes.push(format!("vxlan {}–{}{vni}", x.name, y.name));
    }
    if let Some(mtu) = link.mtu {
        notes.push(format!("mtu {mtu}"));
    }
    match (a.impair, b.impair) {
        (None, None) => {}
        (Some(x), Some(y)) if x == y => notes.push(x.to_string()),
        (x, y) => {
            for (from, to, impair) in [(a, b, x), (b, a, y)] {
                if let Some(impair) = impair {
                    notes.push(format!("{} → {}: {impair}", from.node, to.node));
                }
            }
        }
    }
    notes
}

/// One end of a link: `eth1`, its address, its datalink.
fn end_label(end: &Endpoint, separator: &str) -> String {
    let mut parts = vec![end.interface.clone()];
    if let Some(ipv4) = end.ipv4 {
        parts.push(ipv4.to_string());
    }
    if let Some(mac) = end.mac {
        parts.push(mac.to_string());
    }
    parts.push(end.datalink.to_string());
    parts.join(separator)
}

/// Text inside an HTML-like Graphviz label.
fn html(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A DOT double-quoted string; newlines become DOT's `\n` line breaks.
fn dot_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {}
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Text inside a quoted Mermaid label: quotes and angle brackets as
/// entities (the `<br/>` we add ourselves stays).
fn mermaid_text(text: &str) -> String {
    text.split("<br/>")
        .map(|part| {
            part.chars()
                .filter(|c| !c.is_control())
                .map(|c| match c {
                    '"' => "#quot;".to_owned(),
                    '<' => "#lt;".to_owned(),
                    '>' => "#gt;".to_owned(),
                    '#' => "#35;".to_owned(),
                    c => c.to_string(),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("<br/>")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn lab() -> Lab {
        let source = r#"
name: two
description: a "quoted" lab
nodes:
  a: {}
  b: { image: "busybox:latest" }
  c: {}
links:
  - endpoints: ["a:eth1", "b:eth1"]
    ipv4: [198.18.0.1/24, 198.18.0.2/24]
    mtu: 9000
    impair: { rate: 100mbit, loss: 1% }
  - endpoints:
      - { node: b, interface: "e\"2", mac: "02:00:00:00:00:02", datalink: af_xdp }
      - { node: c, interface: eth2, impair: { delay: 10ms } }
"#;
        crate::lab::parse(source, Path::new("two.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dot_has_every_node_and_joins_the_rows_of_both_ends() {
        let dot = dot(&lab());
        assert!(dot.starts_with("graph \"two\" {\n"), "{dot}");
        assert!(dot.contains("label=\"two: a \\\"quoted\\\" lab\""), "{dot}");
        let a = "<tr><td><b>a</b></td></tr>\
                 <tr><td port=\"p0\" border=\"1\" sides=\"t\"><font point-size=\"10\">eth1 198.18.0.1/24 af_packet</font></td></tr></table>";
        assert!(dot.contains(a), "{dot}");
        let b = "<tr><td><b>b</b></td></tr>\
                 <tr><td><font point-size=\"10\">busybox:latest</font></td></tr>\
                 <tr><td port=\"p0\" border=\"1\" sides=\"t\"><font point-size=\"10\">eth1 198.18.0.2/24 af_packet</font></td></tr>\
                 <tr><td port=\"p1\" border=\"1\" sides=\"t\"><font point-size=\"10\">e&quot;2 02:00:00:00:00:02 af_xdp</font></td></tr></table>";
        assert!(dot.contains(b), "{dot}");
        assert!(dot.contains("<b>c</b>"), "{dot}");
        assert!(
            dot.contains("  \"a\":p0 -- \"b\":p0 [label=\"mtu 9000\\nrate 100mbit, loss 1%\"];\n"),
            "{dot}"
        );
        assert!(
            dot.contains("  \"b\":p1 -- \"c\":p0 [label=\"c → b: delay 10ms\"];\n"),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn mermaid_has_every_node_and_link() {
        let mermaid = mermaid(&lab());
        let lines: Vec<&str> = mermaid.lines().collect();
        assert_eq!(
            lines,
            [
                "flowchart LR",
                "  n0[\"a\"]",
                "  n1[\"b<br/>busybox:latest\"]",
                "  n2[\"c\"]",
                "  n0 ---|\"eth1 198.18.0.1/24 af_packet — eth1 198.18.0.2/24 af_packet (mtu 9000; rate 100mbit, loss 1%)\"| n1",
                "  n1 ---|\"e#quot;2 02:00:00:00:00:02 af_xdp — eth2 af_packet (c → b: delay 10ms)\"| n2",
            ]
        );
    }

    #[test]
    fn a_lab_across_hosts_shows_each_nodes_host_and_its_tunnels() {
        let source = r#"
name: spread
hosts:
  a: { docker: "unix:///var/run/docker.sock", underlay: 198.19.0.1 }
  b: { docker: "ssh://lab@198.19.0.2", underlay: 198.19.0.2 }
nodes:
  p: { host: a }
  q: { host: b, image: "busybox:latest" }
  r: { host: a }
links:
  - endpoints: ["p:eth1", "q:eth1"]
    vxlan: { vni: 1001 }
  - endpoints: ["p:eth2", "r:eth1"]
"#;
        let lab =
            crate::lab::parse(source, Path::new("spread.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let dot = dot(&lab);
        assert!(
            dot.contains(
                "<tr><td><font point-size=\"10\">busybox:latest</font></td></tr>\
                 <tr><td><font point-size=\"10\">on host b</font></td></tr>"
            ),
            "{dot}"
        );
        assert!(
            dot.contains("  \"p\":p0 -- \"q\":p0 [label=\"vxlan a–b vni 1001\"];\n"),
            "{dot}"
        );
        assert!(dot.contains("  \"p\":p1 -- \"r\":p0;\n"), "{dot}");
        let mermaid = mermaid(&lab);
        assert!(
            mermaid.contains("  n1[\"q<br/>busybox:latest<br/>on host b\"]"),
            "{mermaid}"
        );
    }
}
