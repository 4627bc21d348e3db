//! `labctl inspect [LAB] [--json]`.

use std::process::ExitCode;

use labctl::runtime::registry;
use labctl::runtime::{LabStatus, Scope};

use super::{block_on, lab_name, CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// A lab file, a lab name (its every instance) or an instance name;
    /// every lab when omitted
    lab: Option<String>,
    /// Print JSON: {"labs": [{name, instance, file, run, nodes: [...]}]}
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> VerbResult {
    let scope = match &args.lab {
        Some(lab) => Scope::Named(lab_name(lab)?),
        None => Scope::All {
            prefix: String::new(),
        },
    };
    super::check_privileges("inspect")?;
    block_on(async move {
        // Every runtime that answers; one that does not (no Docker
        // daemon) is an error only when the others have nothing.
        let everywhere = registry::everywhere(&scope)
            .await
            .map_err(CliError::from_runtime)?;
        let mut labs = Vec::new();
        for runtime in &everywhere.up {
            labs.extend(
                runtime
                    .inspect(&scope)
                    .await
                    .map_err(CliError::from_runtime)?,
            );
        }
        labs.sort_by(|a, b| a.name.cmp(&b.name));
        match everywhere.unreachable() {
            Some(e) if labs.is_empty() => return Err(CliError::from_runtime(e)),
            _ => {}
        }
        if args.json {
            let json = serde_json::json!({ "labs": labs });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).map_err(CliError::runtime)?
            );
        } else if labs.is_empty() {
            eprintln!("{}: nothing deployed", scope.describe());
        } else {
            print!("{}", table(&labs));
        }
        Ok(ExitCode::SUCCESS)
    })
}

const HEADER: [&str; 10] = [
    "LAB",
    "NODE",
    "CONTAINER",
    "STATE",
    "PID",
    "INTERFACE",
    "DATALINK",
    "LINK",
    "ADDRESSES",
    "PEER",
];

/// One row per interface (a node without interfaces gets one row); node
/// columns are left blank on a node's further rows.
fn table(labs: &[LabStatus]) -> String {
    let mut rows: Vec<[String; 10]> = vec![HEADER.map(String::from)];
    for lab in labs {
        for node in &lab.nodes {
            let pid = node
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            let mut node_columns = [
                lab.instance.clone(),
                node.node.clone(),
                node.container.clone(),
                node.state.clone(),
                pid,
            ];
            if node.interfaces.is_empty() {
                let [a, b, c, d, e] = std::mem::take(&mut node_columns);
                rows.push([
                    a,
                    b,
                    c,
                    d,
                    e,
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
            }
            for iface in &node.interfaces {
                let (link, addresses) = match &iface.live {
                    Some(live) => (
                        if live.up { "up" } else { "down" }.to_owned(),
                        live.addresses.join(","),
                    ),
                    None => ("-".to_owned(), iface.ipv4.clone().unwrap_or_default()),
                };
                let [a, b, c, d, e] = std::mem::take(&mut node_columns);
                rows.push([
                    a,
                    b,
                    c,
                    d,
                    e,
                    iface.name.clone(),
                    iface.datalink.to_string(),
                    link,
                    if addresses.is_empty() {
                        "-".into()
                    } else {
                        addresses
                    },
                    iface.peer.clone(),
                ]);
            }
        }
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
