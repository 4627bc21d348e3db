//! One test per check: the problem, its position, its wording.

use super::{problems, valid, with_steps, TWO_NODES};

/// Asserts that `source` has exactly the problems `expected`, each given as
/// `"LINE:COL: start of the message"`.
#[track_caller]
fn assert_problems(source: &str, expected: &[&str]) {
    let found = problems(source);
    let matches =
        found.len() == expected.len() && found.iter().zip(expected).all(|(f, e)| f.starts_with(e));
    assert!(
        matches,
        "expected:\n  {}\nfound:\n  {}",
        expected.join("\n  "),
        found.join("\n  ")
    );
}

// --- the file as a whole ---

#[test]
fn empty_file() {
    for source in ["", "\n\n", "# only a comment\n", "~\n"] {
        assert_problems(source, &["1:1: the file is empty (expected a lab"]);
    }
}

#[test]
fn yaml_syntax_error() {
    assert_problems(
        "name: x\nnodes: {a: {}\n",
        &["2:8: invalid YAML: unclosed bracket '{'"],
    );
    assert_problems(
        "name: x\n nodes: {}\n",
        &["2:7: invalid YAML: mapping values are not allowed in this context"],
    );
}

#[test]
fn two_documents() {
    assert_problems(
        "name: x\n---\nname: y\n",
        &["3:1: a second YAML document starts here"],
    );
}

#[test]
fn not_a_mapping() {
    assert_problems(
        "- a\n- b\n",
        &["1:1: the file is a list (expected a mapping with name, nodes, links and steps)"],
    );
}

#[test]
fn missing_name() {
    assert_problems(
        "nodes: {a: {}}\n",
        &["1:1: missing key `name` at the top level (expected a string: the lab's name"],
    );
}

// --- keys and types (the structural pass) ---

#[test]
fn unknown_key_names_the_nearest_known_key() {
    let source = TWO_NODES.replace("  b: {}", "  b:\n    imgae: alpine");
    assert_problems(
        &source,
        &["5:5: unknown key `imgae` in node \"b\" (did you mean `image`?)"],
    );
}

#[test]
fn unknown_key_without_a_near_one_lists_the_known_ones() {
    assert_problems(
        &format!("{TWO_NODES}flavour: x\n"),
        &["5:1: unknown key `flavour` at the top level (expected one of: datalink, description, hosts, links, name, nodes, runtime, steps)"],
    );
}

#[test]
fn keys_from_other_tools_are_recognised() {
    let source = with_steps("  - name: s\n    node: a\n    command: [x]\n");
    // The misspelled `exec` is reported once: not also as "neither exec
    // nor wait".
    assert_problems(
        &source,
        &["8:5: unknown key `command` in step \"s\" (did you mean `exec`?)"],
    );
}

#[test]
fn duplicate_keys() {
    assert_problems(
        "name: x\nnodes:\n  a: {}\n  a: {image: y}\n",
        &["4:3: node \"a\" is defined twice (first at line 3, column 3)"],
    );
    assert_problems(
        "name: x\nname: y\nnodes: {a: {}}\n",
        &["2:1: key `name` is written twice at the top level (first at line 1, column 1"],
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    let source = "name: x\nnodes:\n  a: {env: [A]}\nlinks:\n  - endpoints: [\"a:e1\", \"a:e2\"]\n    mtu: big\n";
    assert_problems(
        source,
        &[
            "3:12: `env` of node \"a\" is a list (expected a mapping)",
            "6:10: `mtu` of link 1 is \"big\" (expected an integer)",
        ],
    );
}

#[test]
fn exec_as_a_shell_string() {
    let source = with_steps("  - name: s\n    node: a\n    exec: lab-ping eth1 198.18.0.2\n");
    assert_problems(
        &source,
        &["8:11: `exec` of step \"s\" is \"lab-ping eth1 198.18.0.2\" (expected a list such as [lab-ping, eth1, 198.18.0.2]: an argv, never a shell string)"],
    );
}

#[test]
fn yaml_1_1_booleans_are_refused() {
    let source = with_steps("  - name: s\n    node: a\n    exec: [x]\n    background: yes\n");
    assert_problems(
        &source,
        &["9:17: `background` of step \"s\" is \"yes\" (expected true or false)"],
    );
}

#[test]
fn unknown_datalink() {
    assert_problems(
        "name: x\ndatalink: afxdp\nnodes: {a: {}}\n",
        &["2:11: `datalink` is \"afxdp\" (expected af_packet, af_xdp or netmap; did you mean \"af_xdp\"?)"],
    );
}

#[test]
fn missing_key_in_an_endpoint() {
    let source =
        "name: x\nnodes: {a: {}}\nlinks:\n  - endpoints: [{node: a, interface: e1}, {node: a}]\n";
    assert_problems(
        source,
        &["4:43: missing key `interface` in endpoint 2 of link 1 (expected an interface name such as eth1)"],
    );
}

#[test]
fn integer_out_of_range_of_its_type() {
    let source =
        "name: x\nnodes: {a: {}}\nlinks:\n  - endpoints: [\"a:e1\", \"a:e2\"]\n    mtu: -1\n";
    assert_problems(
        source,
        &["5:10: `mtu` of link 1 is -1, out of range (expected a whole number from 0 to 4294967295)"],
    );
}

#[test]
fn numbers_are_text_in_argv_env_and_sysctls() {
    let source = "name: x\nnodes:\n  a:\n    env: {N: 3}\n    sysctls: {net.ipv4.ip_forward: 1}\nsteps:\n  - name: s\n    node: a\n    exec: [lab-ping, --count, 3, --flag, true]\n";
    let lab = valid(source);
    assert_eq!(lab.nodes()[0].env["N"], "3");
    assert_eq!(lab.nodes()[0].sysctls["net.ipv4.ip_forward"], "1");
    let crate::lab::Action::Exec { argv, .. } = &lab.steps()[0].action else {
        panic!("not an exec step")
    };
    assert_eq!(argv, &["lab-ping", "--count", "3", "--flag", "true"]);
}

// --- names ---

#[test]
fn lab_name() {
    assert_problems(
        "name: Bad_Name\nnodes: {a: {}}\n",
        &["1:7: invalid lab name \"Bad_Name\": contains the uppercase 'B' (expected 1 to 20 of a-z, 0-9 and '-', not starting with '-')"],
    );
    assert_problems(
        "name: ''\nnodes: {a: {}}\n",
        &["1:7: the lab's name is empty"],
    );
}

#[test]
fn node_name() {
    assert_problems(
        "name: x\nnodes:\n  web_1: {}\n",
        &["3:3: invalid node name \"web_1\": contains '_' (expected 1 to 20 of a-z"],
    );
}

#[test]
fn no_nodes() {
    assert_problems(
        "name: x\nnodes: {}\n",
        &["2:8: the lab has no nodes (expected at least one under `nodes:`"],
    );
    // And no "unknown node" for every endpoint as well.
    assert_problems(
        "name: x\nlinks:\n  - endpoints: [\"a:e1\", \"b:e1\"]\n",
        &["1:1: missing key `nodes` at the top level (expected a mapping of node names to their settings)"],
    );
    // A misspelled `nodes` is reported once.
    assert_problems(
        "name: x\nnodse:\n  a: {}\n",
        &["2:1: unknown key `nodse` at the top level (did you mean `nodes`?)"],
    );
}

#[test]
fn interface_names() {
    let link = |endpoints: &str| format!("{TWO_NODES}links:\n  - endpoints: {endpoints}\n");
    assert_problems(
        &link("[\"a:eth1/2\", \"b:eth1\"]"),
        &["6:17: invalid interface name \"eth1/2\" in link 1: contains '/' (expected 1 to 15 bytes"],
    );
    assert_problems(
        &link("[\"a:this-is-too-long\", \"b:eth1\"]"),
        &["6:17: invalid interface name \"this-is-too-long\" in link 1: is 16 bytes long"],
    );
    assert_problems(
        &link("[{node: a, interface: \"x=y\"}, \"b:eth1\"]"),
        &["6:38: invalid interface name \"x=y\" in link 1: contains '=', which tools cannot read back from LABCTL_DATALINK_<interface>"],
    );
    assert_problems(
        &link("[\"a:b:c\", \"b:eth1\"]"),
        &["6:17: invalid interface name \"b:c\" in link 1: contains ':', which separates node and interface"],
    );
    assert_problems(
        &link("[\"a\", \"b:eth1\"]"),
        &["6:17: invalid endpoint \"a\" in link 1 (expected \"node:interface\", such as \"pinger:eth1\")"],
    );
}

// --- links ---

#[test]
fn unknown_node_in_an_endpoint() {
    assert_problems(
        &format!("{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"bb:eth1\"]\n"),
        &["6:27: link 1 names unknown node \"bb\" (known: a, b)"],
    );
    assert_problems(
        &format!("{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"zzz:eth1\"]\n"),
        &["6:27: link 1 names unknown node \"zzz\" (known: a, b)"],
    );
}

#[test]
fn interface_used_twice() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n  - endpoints: [\"a:eth1\", \"b:eth2\"]\n"
    );
    assert_problems(
        &source,
        &["7:17: interface a:eth1 is used twice (first at line 6, column 17; an interface is one end of one link)"],
    );
}

#[test]
fn endpoint_count() {
    assert_problems(
        &format!("{TWO_NODES}links:\n  - endpoints: [\"a:eth1\"]\n"),
        &["6:16: link 1 has 1 endpoint (expected exactly 2: a veth pair has two ends)"],
    );
}

#[test]
fn bad_cidr() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    ipv4: [198.18.0.1, 198.18.0.300/24]\n"
    );
    assert_problems(
        &source,
        &[
            "7:12: ipv4 \"198.18.0.1\" of a:eth1 has no prefix length (expected a CIDR address such as 198.18.0.1/24)",
            "7:24: ipv4 \"198.18.0.300/24\" of b:eth1 is not an address",
        ],
    );
}

#[test]
fn network_address_is_not_a_host_address() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    ipv4: [198.18.0.0/24, 198.18.0.2/24]\n"
    );
    assert_problems(
        &source,
        &["7:12: ipv4 \"198.18.0.0/24\" of a:eth1 is the network address of its subnet"],
    );
}

#[test]
fn duplicate_addresses() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    ipv4: [198.18.0.1/24, 198.18.0.1/24]\n"
    );
    assert_problems(
        &source,
        &["7:27: address 198.18.0.1 of b:eth1 is already used by a:eth1 (line 7); each interface needs its own"],
    );
}

#[test]
fn address_list_needs_two_entries() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    ipv4: [198.18.0.1/24]\n"
    );
    assert_problems(
        &source,
        &["7:11: link 1 lists 1 ipv4 address (expected 2: one per endpoint, in the same order)"],
    );
}

#[test]
fn address_list_with_mapping_endpoints() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints: [{{node: a, interface: e1}}, \"b:eth1\"]\n    ipv4: [198.18.0.1/24, 198.18.0.2/24]\n"
    );
    assert_problems(
        &source,
        &["7:11: link 1 lists ipv4 addresses, but endpoint 1 is a mapping (give it its own ipv4 key"],
    );
}

#[test]
fn bad_and_multicast_mac() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints:\n      - {{node: a, interface: e1, mac: \"02:00:00:00:00:0g\"}}\n      - {{node: b, interface: e1, mac: \"03:00:00:00:00:01\"}}\n"
    );
    assert_problems(
        &source,
        &[
            "7:39: mac \"02:00:00:00:00:0g\" of a:e1 is not a MAC address (expected six hex bytes",
            "8:39: mac \"03:00:00:00:00:01\" of b:e1 is a multicast address (expected a unicast one",
        ],
    );
}

#[test]
fn duplicate_mac() {
    let source = format!(
        "{TWO_NODES}links:\n  - endpoints:\n      - {{node: a, interface: e1, mac: \"02:00:00:00:00:01\"}}\n      - {{node: b, interface: e1, mac: \"02:00:00:00:00:01\"}}\n"
    );
    assert_problems(
        &source,
        &["8:39: mac 02:00:00:00:00:01 of b:e1 is already used by a:e1 (line 7)"],
    );
}

#[test]
fn mtu_range() {
    let source =
        format!("{TWO_NODES}links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    mtu: 67\n");
    assert_problems(
        &source,
        &["7:10: invalid mtu 67 in link 1 (expected 68 to 65535)"],
    );
}

#[test]
fn netmap_on_one_end_names_both_and_says_why() {
    let source = "name: x\nnodes:\n  a: {datalink: netmap}\n  b: {}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    assert_problems(
        source,
        &["6:16: link 1 uses netmap on one end only (a:eth1 is netmap, b:eth1 is af_packet): a veth pair is one link, and native netmap passes frames only when both of its ends are opened in netmap mode"],
    );
}

#[test]
fn datalink_resolution_order_is_endpoint_node_lab() {
    let source = "name: x\ndatalink: af_xdp\nnodes:\n  a: {}\n  b: {datalink: af_packet}\nlinks:\n  - endpoints: [\"a:e1\", \"b:e1\"]\n  - endpoints:\n      - {node: a, interface: e2, datalink: netmap}\n      - {node: b, interface: e2, datalink: netmap}\n";
    let lab = valid(source);
    let kinds: Vec<String> = lab
        .links()
        .iter()
        .flat_map(|l| l.endpoints.iter().map(|e| e.datalink.to_string()))
        .collect();
    assert_eq!(kinds, ["af_xdp", "af_packet", "netmap", "netmap"]);
}

// --- nodes ---

#[test]
fn environment_names() {
    let source = "name: x\nnodes:\n  a:\n    env: {1X: a, LABCTL_DATALINK_eth1: b, OK: c}\n";
    assert_problems(
        source,
        &[
            "4:11: environment variable \"1X\" in node \"a\" is not a variable name",
            "4:18: environment variable \"LABCTL_DATALINK_eth1\" in node \"a\" is reserved",
        ],
    );
}

#[test]
fn sysctls() {
    let source = "name: x\nnodes:\n  a:\n    sysctls:\n      vm.swappiness: 1\n      forwarding: 1\n      net.ipv4.ip_forward: ''\n";
    assert_problems(
        source,
        &[
            "5:7: sysctl \"vm.swappiness\" in node \"a\" is not namespaced (a container can only set net.*",
            "6:7: sysctl \"forwarding\" in node \"a\" is not a sysctl name (expected a dotted name",
            "7:28: invalid value \"\" for sysctl \"net.ipv4.ip_forward\" in node \"a\" (expected one line",
        ],
    );
}

#[test]
fn empty_image() {
    assert_problems(
        "name: x\nnodes:\n  a: {image: ''}\n",
        &["3:14: invalid image \"\" for node \"a\""],
    );
}

// --- steps ---

#[test]
fn unknown_node_in_a_step() {
    let source = with_steps("  - name: s\n    node: c\n    exec: [x]\n");
    assert_problems(
        &source,
        &["7:11: step \"s\" names unknown node \"c\" (known: a, b)"],
    );
}

#[test]
fn exec_step_without_node() {
    let source = with_steps("  - name: s\n    exec: [x]\n");
    assert_problems(
        &source,
        &["6:5: step \"s\" runs a command but names no node (add node: NAME)"],
    );
}

#[test]
fn exec_and_wait_both_or_neither() {
    let source = with_steps(
        "  - name: bg\n    node: a\n    exec: [x]\n    background: true\n  - name: both\n    node: a\n    exec: [x]\n    wait: bg\n  - name: neither\n    node: a\n",
    );
    assert_problems(
        &source,
        &[
            "13:11: step \"both\" has both exec and wait",
            "14:5: step \"neither\" has none of exec, wait, link and throughput (expected one: exec runs a command, wait ends a background step, link sets a link down or up, throughput searches the rate a path carries)",
        ],
    );
}

#[test]
fn empty_exec() {
    let source = with_steps("  - name: s\n    node: a\n    exec: []\n");
    assert_problems(
        &source,
        &["8:11: exec of step \"s\" is empty (expected [program, args...])"],
    );
}

#[test]
fn step_names_unique() {
    let source = with_steps(
        "  - name: s\n    node: a\n    exec: [x]\n  - name: s\n    node: a\n    exec: [y]\n",
    );
    assert_problems(
        &source,
        &["9:11: step name \"s\" is used twice (first at line 6"],
    );
}

#[test]
fn wait_on_unknown_later_or_foreground_step() {
    let source = with_steps(
        "  - name: fg\n    node: a\n    exec: [x]\n  - name: w1\n    wait: pong\n  - name: w2\n    wait: fg\n  - name: w3\n    wait: late\n  - name: late\n    node: a\n    exec: [x]\n    background: true\n",
    );
    assert_problems(
        &source,
        &[
            "10:11: step \"w1\" waits for \"pong\", which is not a step",
            "12:11: step \"w2\" waits for \"fg\", which is not a background step",
            "14:11: step \"w3\" waits for \"late\", which comes later (steps run in order",
        ],
    );
}

#[test]
fn background_step_waited_twice() {
    let source = with_steps(
        "  - name: bg\n    node: a\n    exec: [x]\n    background: true\n  - name: w1\n    wait: bg\n  - name: w2\n    wait: bg\n",
    );
    assert_problems(
        &source,
        &["13:11: step \"w2\" waits for \"bg\", which step \"w1\" already waits for (line 10)"],
    );
}

#[test]
fn wait_step_takes_no_node_background_or_ready() {
    let source = with_steps(
        "  - name: bg\n    node: a\n    exec: [x]\n    background: true\n  - name: w\n    wait: bg\n    node: a\n    background: true\n    ready: x\n",
    );
    assert_problems(
        &source,
        &[
            "12:11: step \"w\" waits and runs nothing, so it takes no node",
            "13:17: background applies to exec steps; step \"w\" waits",
            "14:12: ready applies to background exec steps; step \"w\" waits",
        ],
    );
}

#[test]
fn ready_on_a_foreground_step() {
    let source = with_steps("  - name: s\n    node: a\n    exec: [x]\n    ready: up\n");
    assert_problems(
        &source,
        &["9:12: ready applies to background steps only (add background: true to step \"s\", or remove ready)"],
    );
}

#[test]
fn invalid_regex() {
    let source = with_steps(
        "  - name: s\n    node: a\n    exec: [x]\n    background: true\n    ready: 'up ('\n  - name: w\n    wait: s\n    expect:\n      stdout:\n        - match: '[a-'\n",
    );
    assert_problems(
        &source,
        &[
            "10:12: invalid regex \"up (\" in ready of step \"s\": unclosed group",
            "15:18: invalid regex \"[a-\" in stdout check 1 of step \"w\": unclosed character class",
        ],
    );
}

#[test]
fn timeouts() {
    let step = |timeout: &str| {
        with_steps(&format!(
            "  - name: s\n    node: a\n    exec: [x]\n    timeout: {timeout}\n"
        ))
    };
    assert_problems(
        &step("'10'"),
        &["9:14: timeout \"10\" of step \"s\" has no unit (expected a duration such as 200ms, 10s or 2m)"],
    );
    assert_problems(&step("0s"), &["9:14: timeout \"0s\" of step \"s\" is zero"]);
    assert_problems(
        &step("2days"),
        &["9:14: timeout \"2days\" of step \"s\" is longer than 24h"],
    );
    assert_problems(
        &step("soon"),
        &["9:14: timeout \"soon\" of step \"s\" is not a duration"],
    );
    let lab = valid(&step("200ms"));
    assert_eq!(lab.steps()[0].timeout.as_millis(), 200);
}

#[test]
fn until_and_every() {
    let step = |keys: &str| with_steps(&format!("  - name: s\n    node: a\n    exec: [x]\n{keys}"));
    let lab = valid(&step("    until: 30s\n    every: 2s\n"));
    let until = lab.steps()[0].until.expect("until");
    assert_eq!((until.within.as_secs(), until.every.as_secs()), (30, 2));
    let lab = valid(&step("    until: 10s\n"));
    assert_eq!(lab.steps()[0].until.map(|u| u.every.as_secs()), Some(1));
    // The default pause never leaves until without a second try.
    let lab = valid(&step("    until: 300ms\n"));
    assert_eq!(lab.steps()[0].until.map(|u| u.every.as_millis()), Some(300));
    assert!(valid(&step("")).steps()[0].until.is_none());
    assert_problems(
        &step("    until: 1s\n    every: 2s\n"),
        &["10:12: every \"2s\" of step \"s\" is longer than its until 1s"],
    );
    assert_problems(
        &step("    every: 2s\n"),
        &["9:12: every of step \"s\" is the pause between tries, which needs until"],
    );
    assert_problems(
        &step("    until: 2days\n"),
        &["9:12: until \"2days\" of step \"s\" is longer than 24h"],
    );
    assert_problems(
        &step("    background: true\n    until: 5s\n    every: 1s\n"),
        &[
            "10:12: until applies to foreground exec steps; step \"s\" runs in the background",
            "11:12: every applies to foreground exec steps; step \"s\" runs in the background",
        ],
    );
}

#[test]
fn count_on_contains_says_how_to_count_lines() {
    let source = with_steps(
        "  - name: s\n    node: a\n    exec: [x]\n    expect:\n      stdout:\n        - contains: '3 packets'\n          count: 3\n",
    );
    assert_problems(
        &source,
        &["12:18: count applies to match checks only, not to contains in stdout check 1 of step \"s\" (contains looks for a substring of the whole output; to count lines, use match with an escaped regex"],
    );
}

#[test]
fn check_with_both_or_neither_pattern() {
    let source = with_steps(
        "  - name: s\n    node: a\n    exec: [x]\n    expect:\n      stderr:\n        - {match: a, contains: b}\n        - {count: 1}\n",
    );
    assert_problems(
        &source,
        &[
            "11:11: stderr check 1 of step \"s\" has both match and contains",
            "12:11: stderr check 2 of step \"s\" has neither match nor contains",
        ],
    );
}

#[test]
fn exit_code_range() {
    let source = with_steps("  - name: s\n    node: a\n    exec: [x]\n    expect: {exit: 256}\n");
    assert_problems(
        &source,
        &["9:20: exit 256 of step \"s\" is not an exit code (expected 0 to 255)"],
    );
}

#[test]
fn expect_on_a_background_step() {
    let source = with_steps(
        "  - name: s\n    node: a\n    exec: [x]\n    background: true\n    expect: {exit: 0}\n",
    );
    assert_problems(
        &source,
        &["10:13: expect of step \"s\" would never be checked: a background step's output is checked by the step that waits for it"],
    );
}

// --- several problems at once ---

#[test]
fn structural_and_semantic_problems_are_reported_together() {
    let source = "name: x\nnodes:\n  a:\n    imgae: alpine\nlinks:\n  - endpoints: [\"a:eth1\", \"c:eth1\"]\n    ipv4: [198.18.0.1/24, 198.18.0.999/24]\n";
    assert_problems(
        source,
        &[
            "4:5: unknown key `imgae` in node \"a\" (did you mean `image`?)",
            "6:27: link 1 names unknown node \"c\"",
            "7:27: ipv4 \"198.18.0.999/24\" of c:eth1 is not an address",
        ],
    );
}

#[test]
fn a_wrong_type_does_not_hide_the_semantic_checks() {
    // What serde cannot read is left out, as if it was not written: the
    // rest of the file is still checked, in the same run.
    let source = "name: Bad\nnodes:\n  a: {}\nlinks:\n  - endpoints: [\"a:e1\", \"a:e2\"]\n    mtu: [1]\n    mut: 1\n";
    assert_problems(
        source,
        &[
            "1:7: invalid lab name \"Bad\"",
            "6:10: `mtu` of link 1 is a list (expected an integer)",
            "7:5: unknown key `mut` in link 1 (did you mean `mtu`?)",
        ],
    );
}

#[test]
fn a_bad_enum_value_does_not_hide_the_semantic_checks_nor_echo() {
    let source = with_steps(
        "  - name: s\n    node: zz\n    exec: lab-ping eth1\n  - name: cut\n    link: a:eth1\n    state: sideways\n",
    )
    .replace("name: x\n", "name: x\ndatalink: afxdp\n");
    assert_problems(
        &source,
        &[
            "2:11: `datalink` is \"afxdp\"",
            // No "has none of exec, wait and link": exec was left out.
            "8:11: step \"s\" names unknown node \"zz\"",
            "9:11: `exec` of step \"s\" is \"lab-ping eth1\"",
            "11:11: step \"cut\" sets link \"a:eth1\", which is no endpoint of the lab (there are none)",
            // No "but no state": state was left out.
            "12:12: `state` of step \"cut\" is \"sideways\" (expected down or up)",
        ],
    );
}

#[test]
fn missing_keys_do_not_stop_the_semantic_checks() {
    let source = "nodes:\n  a: {}\nlinks:\n  - ipv4: [198.18.0.1/24]\n  - endpoints: [\"a:e1\", \"b:e1\"]\nsteps:\n  - node: a\n    exec: [x]\n";
    assert_problems(
        source,
        &[
            "1:1: missing key `name` at the top level",
            "4:5: missing key `endpoints` in link 1 (expected a list of two endpoints)",
            "4:11: link 1 lists 1 ipv4 address",
            "5:25: link 2 names unknown node \"b\" (known: a)",
            "7:5: missing key `name` in step 1 (expected a string such as \"ping\"",
        ],
    );
}

#[test]
fn an_empty_key_is_not_a_key() {
    assert_problems(
        "name: x\nnodes: {a: {}}\n: x\n",
        &["3:1: a key at the top level is empty (expected a plain key such as `name`)"],
    );
}

#[test]
fn control_characters_from_the_file_are_escaped() {
    let source = "name: x\nnodes: {a: {}}\n\"bad\\e[31mkey\": 1\n";
    assert_problems(
        source,
        &["3:1: unknown key `bad\\u{1b}[31mkey` at the top level"],
    );
}

#[test]
fn a_problem_in_a_step_does_not_spill_into_the_steps_that_wait_for_it() {
    let source = with_steps(
        "  - name: pong\n    node: c\n    exec: [lab-pong, eth1]\n    background: true\n  - name: w\n    wait: pong\n",
    );
    assert_problems(&source, &["7:11: step \"pong\" names unknown node \"c\""]);
}

// --- routes ---

/// `a` and `b` on one link, 198.18.1.0/24; `a`'s settings from line 3.
fn routed(a: &str) -> String {
    format!(
        "name: x\nnodes:\n  a:\n{a}  b: {{}}\n  c: {{}}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n    ipv4: [198.18.1.1/24, 198.18.1.254/24]\n"
    )
}

#[test]
fn routes_resolve_with_their_interface() {
    let lab = valid(&routed(
        "    routes:\n      - {to: 198.18.2.0/24, via: 198.18.1.254}\n      - {to: default, via: 198.18.1.254}\n",
    ));
    let routes = &lab.nodes()[0].routes;
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].to.to_string(), "198.18.2.0/24");
    assert_eq!(routes[0].via.to_string(), "198.18.1.254");
    assert_eq!(routes[0].interface, "eth1");
    assert!(routes[1].is_default() && !routes[0].is_default());
}

#[test]
fn route_errors() {
    assert_problems(
        &routed("    routes:\n      - {to: 198.18.2.1/24, via: 198.18.1.254}\n"),
        &["5:14: `to` \"198.18.2.1/24\" of route 1 of node \"a\" has host bits set (expected its network, 198.18.2.0/24)"],
    );
    assert_problems(
        &routed("    routes:\n      - {to: somewhere, via: 198.18.1.254}\n"),
        &["5:14: `to` \"somewhere\" of route 1 of node \"a\" is not a CIDR network"],
    );
    assert_problems(
        &routed("    routes:\n      - {to: default, via: 198.18.9.1}\n"),
        &["5:28: `via` 198.18.9.1 of route 1 of node \"a\" is on none of the node's subnets (eth1 198.18.1.0/24; a next hop is a neighbour on one of the node's links)"],
    );
    assert_problems(
        &routed("    routes:\n      - {to: default, via: 198.18.1.1}\n"),
        &["5:28: `via` 198.18.1.1 of route 1 of node \"a\" is the node's own address on eth1"],
    );
    assert_problems(
        &routed("    routes:\n      - {to: default, via: router}\n"),
        &["5:28: `via` \"router\" of route 1 of node \"a\" is not an IPv4 address"],
    );
    assert_problems(
        &routed("    routes:\n      - {to: default, via: 198.18.1.254}\n      - {to: 0.0.0.0/0, via: 198.18.1.254}\n"),
        &["6:14: route 2 of node \"a\" goes to default, as the route at line 5 does"],
    );
    assert_problems(
        &routed("    routes:\n      - {via: 198.18.1.254}\n").replace(
            "  c: {}",
            "  c:\n    routes: [{to: default, via: 198.18.1.254}]",
        ),
        &[
            "5:9: missing key `to` in route 1 of node \"a\" (expected a string)",
            "8:13: node \"c\" has routes but no interfaces",
        ],
    );
}

#[test]
fn a_route_via_a_node_without_addresses() {
    let source = "name: x\nnodes:\n  a:\n    routes: [{to: default, via: 198.18.1.254}]\n  b: {}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    assert_problems(
        source,
        &["4:33: `via` 198.18.1.254 of route 1 of node \"a\" is on none of the node's subnets: its interfaces have no ipv4 addresses"],
    );
}

// --- kernel, binds, limits, privileged, runtime ---

#[test]
fn node_settings_and_their_defaults() {
    let lab = valid("name: x\nnodes:\n  a: {}\n  b:\n    kernel: normal\n    privileged: true\n    limits: {pids: 64, memory: 1GiB}\n    binds: [\"src:/src\", \"./Cargo.toml:/etc/c.toml:rw\"]\n");
    let [a, b] = lab.nodes() else { panic!() };
    assert_eq!(a.kernel, crate::lab::KernelMode::Quiet);
    assert_eq!(a.limits, crate::lab::Limits::DEFAULT);
    assert!(!a.privileged && a.binds.is_empty());
    assert_eq!(b.kernel, crate::lab::KernelMode::Normal);
    assert!(b.privileged);
    assert_eq!(b.limits.pids, 64);
    assert_eq!(b.limits.memory, 1 << 30);
    let root = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
    assert_eq!(b.binds[0].host, root.join("src"));
    assert_eq!(b.binds[0].target, std::path::Path::new("/src"));
    assert!(b.binds[0].read_only);
    assert_eq!(b.binds[1].host, root.join("Cargo.toml"));
    assert!(!b.binds[1].read_only);
    assert_eq!(lab.runtime(), crate::lab::RuntimeKind::Docker);
}

#[test]
fn bind_errors() {
    let bind = |b: &str| format!("name: x\nnodes:\n  a:\n    binds:\n      - {b}\n");
    assert_problems(
        &bind("./no/such/file:/x"),
        &["5:9: bind 1 of node \"a\": the host path \"./no/such/file\" does not exist (looked for "],
    );
    assert_problems(
        &bind("src:usr/bin"),
        &["5:9: bind 1 of node \"a\" (\"src:usr/bin\") has the NODE path \"usr/bin\", which is not absolute"],
    );
    assert_problems(
        &bind("src:/src:rx"),
        &["5:9: bind 1 of node \"a\" (\"src:/src:rx\") has the mode \"rx\" (expected HOST:NODE, HOST:NODE:ro or HOST:NODE:rw"],
    );
    assert_problems(
        &bind("src:/lab/bin"),
        &["5:9: bind 1 of node \"a\" (\"src:/lab/bin\") has the NODE path \"/lab/bin\", under /lab"],
    );
    assert_problems(
        &bind("src:/x\n      - Cargo.toml:/x"),
        &["6:9: bind 2 of node \"a\" mounts onto /x, as a bind at line 5 does"],
    );
}

#[test]
fn binds_start_at_the_lab_files_directory() {
    let source = "name: x\nnodes:\n  a:\n    binds: [\"icmp.yaml:/lab.yaml\"]\n";
    let labs = concat!(env!("CARGO_MANIFEST_DIR"), "/labs/t.yaml");
    let lab =
        crate::lab::parse(source, std::path::Path::new(labs)).unwrap_or_else(|e| panic!("{e}"));
    assert!(lab.nodes()[0].binds[0].host.ends_with("labs/icmp.yaml"));
    assert!(crate::lab::parse(source, std::path::Path::new("t.yaml")).is_err());
}

#[test]
fn limit_errors() {
    let limits = |l: &str| format!("name: x\nnodes:\n  a:\n    limits: {l}\n");
    assert_problems(
        &limits("{pids: 2}"),
        &["4:20: pids limit 2 of node \"a\" is out of range (expected 16 to 4194304"],
    );
    assert_problems(
        &limits("{memory: 256}"),
        &["4:22: memory limit \"256\" of node \"a\" has no unit (expected a size such as 256MiB or 2GiB)"],
    );
    assert_problems(
        &limits("{memory: 1MiB}"),
        &["4:22: memory limit \"1MiB\" of node \"a\" is less than 16MiB"],
    );
    assert_problems(
        &limits("{cpus: 2}"),
        &["4:14: unknown key `cpus` in `limits` of node \"a\" (expected one of: memory, pids)"],
    );
}

#[test]
fn an_image_under_netns() {
    assert_problems(
        "name: x\nruntime: netns\nnodes:\n  a: {image: 'alpine:3'}\n  b: {}\n",
        &["4:14: node \"a\" has an image, but runtime: netns makes nodes as network namespaces on the host, which run no image"],
    );
    let lab = valid("name: x\nruntime: netns\nnodes:\n  a: {binds: ['src:/src']}\n");
    assert_eq!(lab.runtime(), crate::lab::RuntimeKind::Netns);
    let docker = valid("name: x\nnodes:\n  a: {image: 'alpine:3'}\n");
    let refused = docker
        .with_runtime(crate::lab::RuntimeKind::Netns)
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "lab `x` cannot run on the netns runtime: node a names an image, and netns nodes are network namespaces on the host, without images (use --runtime docker)"
    );
    assert_problems(
        "name: x\nruntime: netnz\nnodes: {a: {}}\n",
        &["2:10: `runtime` is \"netnz\" (expected docker or netns; did you mean \"netns\"?)"],
    );
}

#[test]
fn cmd_is_the_argv_of_a_nodes_own_image() {
    let lab = valid(
        "name: x\nnodes:\n  a: {image: 'my-lb:1', cmd: [my-lb, --config, /etc/lb.conf]}\n  b: {image: 'my-lb:1', cmd: []}\n  c: {image: 'my-lb:1'}\n",
    );
    let cmd = |n: &str| lab.node(n).unwrap().cmd.clone();
    assert_eq!(cmd("a").unwrap(), ["my-lb", "--config", "/etc/lb.conf"]);
    assert_eq!(cmd("b"), Some(Vec::new()));
    assert_eq!(cmd("c"), None);
    assert_problems(
        "name: x\nnodes:\n  a: {cmd: [lab-pong]}\n",
        &["3:12: node \"a\" has a cmd but no image"],
    );
    // `--runtime netns` refuses it with the image it needs.
    assert!(lab.with_runtime(crate::lab::RuntimeKind::Netns).is_err());
}

// --- impairments ---

#[test]
fn impairments_both_ways_and_per_endpoint() {
    let lab = valid("name: x\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints:\n      - {node: a, interface: e1, impair: {rate: 10mbit}}\n      - b:e1\n    impair: {rate: 100mbit, loss: 1%, delay: 10ms, jitter: 2ms}\n  - endpoints: [a:e2, b:e2]\n");
    let [a, b] = &lab.links()[0].endpoints;
    let a = a.impair.unwrap();
    let b = b.impair.unwrap();
    assert_eq!(a.rate, Some(10_000_000));
    assert_eq!(b.rate, Some(100_000_000));
    assert_eq!(a.loss, Some(0.01));
    assert_eq!(b.delay, Some(std::time::Duration::from_millis(10)));
    assert_eq!(a.jitter, Some(std::time::Duration::from_millis(2)));
    assert!(a.needs_netem());
    assert_eq!(
        a.to_string(),
        "rate 10mbit, loss 1%, delay 10ms, jitter 2ms"
    );
    assert!(!lab.links()[1].is_impaired());
}

#[test]
fn netem_keys_merge_per_direction() {
    // The reorder is b's own, the delay the link's: valid together.
    let lab = valid("name: x\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints:\n      - {node: a, interface: e1, impair: {duplicate: 100%}}\n      - {node: b, interface: e1, impair: {reorder: 25%, corrupt: 0.1%}}\n    impair: {delay: 10ms, duplicate: 1%}\n");
    let [a, b] = &lab.links()[0].endpoints;
    let (a, b) = (a.impair.unwrap(), b.impair.unwrap());
    assert_eq!((a.duplicate, a.reorder, a.corrupt), (Some(1.0), None, None));
    assert_eq!(
        (b.duplicate, b.reorder, b.corrupt),
        (Some(0.01), Some(0.25), Some(0.001))
    );
    assert!(a.needs_netem() && b.needs_netem());
    assert_eq!(
        b.to_string(),
        "delay 10ms, duplicate 1%, reorder 25%, corrupt 0.1%"
    );
    for key in ["duplicate: 1%", "reorder: 1%, delay: 1ms", "corrupt: 1%"] {
        let lab = valid(&format!(
            "name: x\nnodes: {{a: {{}}, b: {{}}}}\nlinks:\n  - endpoints: [a:e1, b:e1]\n    impair: {{{key}}}\n"
        ));
        assert!(
            lab.links()[0].endpoints[0].impair.unwrap().needs_netem(),
            "{key}"
        );
    }
}

#[test]
fn impairment_errors() {
    let impair = |i: &str| {
        format!("name: x\nnodes: {{a: {{}}, b: {{}}}}\nlinks:\n  - endpoints: [a:e1, b:e1]\n    impair: {i}\n")
    };
    assert_problems(
        &impair("{rate: 100}"),
        &["5:20: rate \"100\" of link 1 has no unit (expected a rate such as 100mbit, 1gbit or 500kbit)"],
    );
    assert_problems(
        &impair("{rate: 100mb}"),
        &["5:20: rate \"100mb\" of link 1 has the unknown unit \"mb\""],
    );
    assert_problems(
        &impair("{loss: 0.01}"),
        &["5:20: loss \"0.01\" of link 1 has no % sign (expected a percentage such as 1% or 0.5%)"],
    );
    assert_problems(
        &impair("{loss: 120%}"),
        &["5:20: loss \"120%\" of link 1 is more than 100%"],
    );
    assert_problems(
        &impair("{delay: 10}"),
        &["5:21: delay \"10\" of link 1 has no unit (expected a duration such as 10ms or 1s)"],
    );
    assert_problems(
        &impair("{jitter: 2ms}"),
        &["5:22: jitter 2ms has no delay to vary (add delay, such as delay: 10ms)"],
    );
    assert_problems(
        &impair("{duplicate: 1}"),
        &["5:25: duplicate \"1\" of link 1 has no % sign (expected a percentage such as 1% or 0.5%)"],
    );
    assert_problems(
        &impair("{corrupt: 200%}"),
        &["5:23: corrupt \"200%\" of link 1 is more than 100%"],
    );
    assert_problems(
        &impair("{reorder: 25%}"),
        &["5:23: reorder 25% has no delay to skip (netem reorders by sending those frames without the delay; add delay, such as delay: 10ms)"],
    );
    assert_problems(&impair("{reorder: 25%, delay: 0ms}"), &[
        "5:23: reorder 25% has no delay to skip (netem reorders by sending those frames without the delay; add delay, such as delay: 10ms)",
    ]);
    assert_problems(
        &impair("{rtae: 1mbit}"),
        &["5:14: unknown key `rtae` in `impair` of link 1 (did you mean `rate`?)"],
    );
    let endpoint = "name: x\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints:\n      - {node: a, interface: e1, impair: {loss: lots}}\n      - b:e1\n";
    assert_problems(
        endpoint,
        &["5:49: loss \"lots\" of endpoint a:e1 is not a percentage"],
    );
}

// --- link-state steps ---

/// [`TWO_NODES`] on one link a:eth1 -- b:eth1, `steps:` on line 7.
fn with_link_steps(steps: &str) -> String {
    format!("{TWO_NODES}links:\n  - endpoints: [a:eth1, b:eth1]\nsteps:\n{steps}")
}

#[test]
fn link_state_steps() {
    let lab = valid(&with_link_steps(
        "  - name: cut\n    link: a:eth1\n    state: down\n  - name: restore\n    link: \"a:eth1\"\n    state: up\n",
    ));
    let crate::lab::Action::SetLink {
        node,
        interface,
        state,
    } = &lab.steps()[0].action
    else {
        panic!("{:?}", lab.steps()[0].action)
    };
    assert_eq!((node.as_str(), interface.as_str()), ("a", "eth1"));
    assert_eq!(*state, crate::lab::LinkState::Down);
}

#[test]
fn link_state_step_errors() {
    assert_problems(
        &with_link_steps("  - name: cut\n    link: a:eth2\n    state: down\n"),
        &["9:11: step \"cut\" sets link \"a:eth2\", which is no endpoint of the lab (did you mean \"a:eth1\"?)"],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    link: zz:eth9\n    state: down\n"),
        &["9:11: step \"cut\" sets link \"zz:eth9\", which is no endpoint of the lab (known: a:eth1, b:eth1)"],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    link: eth1\n    state: down\n"),
        &["9:11: link \"eth1\" of step \"cut\" is not \"node:interface\""],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    link: a:eth1\n"),
        &["8:5: step \"cut\" sets link \"a:eth1\" but no state (add state: down or up)"],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    link: a:eth1\n    state: off\n"),
        &["10:12: `state` of step \"cut\" is \"off\" (expected down or up)"],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    node: a\n    link: a:eth1\n    state: down\n    expect: {exit: 0}\n"),
        &[
            "9:11: step \"cut\" sets a link and runs nothing, so it takes no node",
            "12:13: expect applies to exec and wait steps; step \"cut\" sets a link",
        ],
    );
    assert_problems(
        &with_link_steps("  - name: cut\n    node: a\n    exec: [x]\n    link: a:eth1\n"),
        &["11:11: step \"cut\" has both exec and link (expected one: exec runs a command"],
    );
    assert_problems(
        &with_link_steps("  - name: s\n    node: a\n    exec: [x]\n    state: up\n"),
        &["11:12: state applies to link-state steps; step \"s\" has no link"],
    );
}

// --- numeric checks ---

fn checked(check: &str) -> String {
    with_steps(&format!(
        "  - name: s\n    node: a\n    exec: [x]\n    expect:\n      stdout:\n        - {check}\n"
    ))
}

#[test]
fn numeric_bounds() {
    let lab = valid(&checked(
        "{match: 'sent ([0-9]+) frames', at_least: 150000, at_most: 2e5}",
    ));
    let bounds = lab.steps()[0].expect.stdout[0].bounds.unwrap();
    assert_eq!(bounds.at_least, Some(150000.0));
    assert_eq!(bounds.at_most, Some(200000.0));
    assert!(bounds.admits(150000.0) && !bounds.admits(149999.0) && !bounds.admits(2e5 + 1.0));
    assert_eq!(bounds.to_string(), "from 150000 to 200000");
}

#[test]
fn numeric_bound_errors() {
    assert_problems(
        &checked("{match: 'sent [0-9]+ frames', at_least: 1}"),
        &["11:19: match \"sent [0-9]+ frames\" of stdout check 1 of step \"s\" has no capture group, so at_least and at_most have no number to read"],
    );
    assert_problems(
        &checked("{contains: 'sent', at_most: 1}"),
        &["11:39: at_most applies to match checks only, not to contains in stdout check 1 of step \"s\""],
    );
    assert_problems(
        &checked("{match: '([0-9]+)', at_least: lots}"),
        &["11:41: `at_least` of stdout check 1 of step \"s\" is \"lots\" (expected a number, such as 150000 or 0.5)"],
    );
    // The YAML reader refuses .nan and .inf before the bounds are checked.
    assert_eq!(
        problems(&checked("{match: '([0-9]+)', at_least: .inf}")).len(),
        1
    );
    assert_problems(
        &checked("{match: '([0-9]+)', at_least: 5, at_most: 1}"),
        &["11:41: at_least 5 is more than at_most 1 in stdout check 1 of step \"s\", so no number can pass"],
    );
}

// --- capabilities ---

#[test]
fn capabilities_are_kept_in_file_order_and_default_to_none() {
    let lab = valid("name: x\nnodes:\n  a: {}\n  b:\n    capabilities: [NET_BIND_SERVICE, NET_ADMIN, SYS_ADMIN]\n  c: {capabilities: []}\n");
    let [a, b, c] = lab.nodes() else { panic!() };
    assert!(a.capabilities.is_empty() && c.capabilities.is_empty());
    let names: Vec<&str> = b.capabilities.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["NET_BIND_SERVICE", "NET_ADMIN", "SYS_ADMIN"]);
    // Whether SYS_ADMIN may be granted is the runtime's to say.
    assert!(!b.privileged);
}

#[test]
fn capability_errors() {
    let caps = |list: &str| format!("name: x\nnodes:\n  a:\n    capabilities: {list}\n");
    assert_problems(
        &caps("[NET_ADMN]"),
        &["4:20: unknown capability \"NET_ADMN\" in node \"a\" (did you mean \"NET_ADMIN\"?)"],
    );
    assert_problems(
        &caps("[CAP_NET_ADMIN]"),
        &["4:20: capability \"CAP_NET_ADMIN\" in node \"a\" is written with its prefix: write NET_ADMIN "],
    );
    // The prefix and a typo: the suggestion is the nearest name.
    assert_problems(
        &caps("[cap_sys_admn]"),
        &["4:20: capability \"cap_sys_admn\" in node \"a\" is written with its prefix: write SYS_ADMIN "],
    );
    assert_problems(
        &caps("[all]"),
        &["4:20: capability \"all\" in node \"a\" is refused: a node holds only the capabilities it names (ALL is root on the host, which is what `privileged: true`"],
    );
    assert_problems(
        &caps("[NET_RAW, BPF, NET_RAW]"),
        &["4:34: capability \"NET_RAW\" is listed twice in node \"a\" (first at line 4, column 20)"],
    );
    assert_problems(
        &caps("[FLY]"),
        &["4:20: unknown capability \"FLY\" in node \"a\" (expected a name from capabilities(7) without CAP_"],
    );
    // Not a list of names: the structural pass says so.
    assert_eq!(problems(&caps("NET_ADMIN")).len(), 1);
}

// --- hosts ---

/// Hosts a (unix socket) and b (ssh), nodes p on a and q on b: lines 1 to
/// 7, then `extra` from line 8.
fn across_hosts(extra: &str) -> String {
    format!(
        "name: x\nhosts:\n  a: {{docker: 'unix:///var/run/docker.sock', underlay: 198.19.0.1}}\n  b: {{docker: 'ssh://lab@b.example:2222', underlay: 198.19.0.2}}\nnodes:\n  p: {{host: a}}\n  q: {{host: b}}\n{extra}"
    )
}

#[test]
fn hosts_resolve_in_file_order_with_each_nodes_host() {
    let lab = valid(&across_hosts(
        "  r: {host: a}\nlinks:\n  - endpoints: [p:e1, q:e1]\n    vxlan: {vni: 1001, port: 4789}\n  - endpoints: [p:e2, r:e1]\n  - endpoints: [p:e3, q:e2]\n",
    ));
    let names: Vec<&str> = lab.hosts().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let b = lab.host("b").unwrap();
    assert_eq!(
        b.docker,
        crate::lab::DockerEndpoint::Ssh {
            user: Some("lab".to_owned()),
            host: "b.example".to_owned(),
            port: Some(2222)
        }
    );
    assert_eq!(
        b.underlay,
        "198.19.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(b.tls, None);
    assert!(lab.host("c").is_none());
    assert_eq!(lab.node("q").unwrap().host.as_deref(), Some("b"));
    assert_eq!(lab.node("r").unwrap().host.as_deref(), Some("a"));
    let links = lab.links();
    assert_eq!(
        links[0].vxlan,
        Some(crate::lab::Vxlan {
            vni: Some(1001),
            port: Some(4789)
        })
    );
    let across = |i: usize| lab.link_hosts(&links[i]).map(|[x, y]| [&x.name, &y.name]);
    assert_eq!(across(0), Some([&"a".to_owned(), &"b".to_owned()]));
    // One host: a veth pair.
    assert_eq!(across(1), None);
    // Across hosts without `vxlan`: still a tunnel, the runtime picks.
    assert_eq!(links[2].vxlan, None);
    assert!(across(2).is_some());
    assert!(
        lab.summary().ends_with(", hosts: a, b"),
        "{}",
        lab.summary()
    );
}

#[test]
fn without_hosts_nothing_changes() {
    let lab = valid("name: x\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints: [a:e1, b:e1]\n");
    assert!(lab.hosts().is_empty());
    assert!(lab.nodes().iter().all(|n| n.host.is_none()));
    assert_eq!(lab.links()[0].vxlan, None);
    assert_eq!(lab.link_hosts(&lab.links()[0]), None);
    assert!(!lab.summary().contains("hosts"));
}

#[test]
fn host_and_vxlan_need_hosts() {
    assert_problems(
        "name: x\nnodes:\n  a: {host: h}\n  b: {}\nlinks:\n  - endpoints: [a:e1, b:e1]\n    vxlan: {vni: 5}\n",
        &[
            "3:13: node \"a\" has host \"h\", but the lab has no hosts (host needs a hosts: map",
            "7:12: link 1 has vxlan, but the lab has no hosts (a link on one host is a veth pair",
        ],
    );
}

#[test]
fn with_hosts_every_node_names_a_known_one() {
    assert_problems(
        &across_hosts("  r: {}\n  s: {host: bb}\n  t: {host: 'no'}\n"),
        &[
            "8:3: node \"r\" has no host (a lab with hosts runs each node on one of them: add host: NAME; known: a, b)",
            "9:13: node \"s\" names unknown host \"bb\" (known: a, b)",
            "10:13: node \"t\" names unknown host \"no\" (known: a, b)",
        ],
    );
    assert_problems(
        "name: x\nhosts:\n  west: {docker: 'unix:///d.sock', underlay: 198.19.0.1}\nnodes: {a: {host: wset}}\n",
        &["4:19: node \"a\" names unknown host \"wset\" (did you mean \"west\"?)"],
    );
    assert_problems(
        "name: x\nhosts: {}\nnodes: {a: {}}\n",
        &["2:8: `hosts` is empty"],
    );
}

#[test]
fn host_names_follow_the_node_rule_and_keys_are_known() {
    assert_problems(
        "name: x\nhosts:\n  B: {docker: 'unix:///d.sock', underlay: 198.19.0.1, dockr: x}\n  a: {docker: 'unix:///d.sock'}\n  a: {docker: 'unix:///e.sock', underlay: 198.19.0.3}\nnodes: {n: {host: a}}\n",
        &[
            "3:3: invalid host name \"B\": contains the uppercase 'B'",
            "3:55: unknown key `dockr` in host \"B\" (did you mean `docker`?)",
            "4:6: missing key `underlay` in host \"a\"",
            "5:3: host \"a\" is defined twice (first at line 4, column 3",
        ],
    );
}

#[test]
fn docker_endpoints_of_the_wrong_form() {
    let endpoint = |docker: &str| {
        problems(&format!(
            "name: x\nhosts:\n  a: {{docker: '{docker}', underlay: 198.19.0.1}}\nnodes: {{n: {{host: a}}}}\n"
        ))
    };
    let forms = "(expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT], such as unix:///var/run/docker.sock)";
    assert_eq!(
        endpoint("http://h:2375"),
        [format!(
            "3:15: docker \"http://h:2375\" of host \"a\" has the scheme http:// {forms}"
        )]
    );
    assert_eq!(
        endpoint(""),
        [format!("3:15: docker \"\" of host \"a\" is empty {forms}")]
    );
    assert_eq!(
        endpoint("npipe:////./pipe/docker_engine"),
        [format!(
            "3:15: docker \"npipe:////./pipe/docker_engine\" of host \"a\" has the scheme npipe:// {forms}"
        )]
    );
    assert_eq!(
        endpoint("/var/run/docker.sock"),
        [format!(
            "3:15: docker \"/var/run/docker.sock\" of host \"a\" is not a URL {forms}"
        )]
    );
    assert!(endpoint("tcp://h")[0].contains("has no port"));
    assert!(endpoint("unix://docker.sock")[0].contains("which is not absolute"));
    assert!(endpoint("ssh://h:0")[0].contains("has the port \"0\""));
    assert!(endpoint("tcp://fd00::1:2376")[0].contains("IPv6 address without brackets"));
    for good in [
        "unix:///run/docker.sock",
        "tcp://198.19.0.2:2375",
        "tcp://[fd00::2]:2376",
        "ssh://h",
        "ssh://lab@h.example:22",
    ] {
        assert_eq!(endpoint(good), Vec::<String>::new(), "{good}");
    }
}

#[test]
fn underlays_are_unicast_addresses_each_once() {
    assert_problems(
        "name: x\nhosts:\n  a: {docker: 'unix:///d.sock', underlay: 198.19.0.1/24}\n  b: {docker: 'unix:///d.sock', underlay: 198.19.0.2}\n  c: {docker: 'unix:///d.sock', underlay: 198.19.0.2}\n  d: {docker: 'unix:///d.sock', underlay: 'ff02::1'}\n  e: {docker: 'unix:///d.sock', underlay: eth0}\n  f: {docker: 'unix:///d.sock', underlay: '::ffff:198.19.0.2'}\nnodes: {n: {host: b}}\n",
        &[
            "3:43: underlay \"198.19.0.1/24\" of host \"a\" is a CIDR (expected the host's own address",
            "5:43: underlay 198.19.0.2 of host \"c\" is already host \"b\"'s (line 4); each host needs its own",
            "6:43: underlay \"ff02::1\" of host \"d\" is not a unicast address",
            "7:43: underlay \"eth0\" of host \"e\" is not an IPv4 or IPv6 address",
            "8:43: underlay ::ffff:198.19.0.2 of host \"f\" is already host \"b\"'s (line 4)",
        ],
    );
}

#[test]
fn tls_goes_with_tcp_and_holds_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    for file in ["ca.pem", "cert.pem"] {
        std::fs::write(certs.join(file), "").unwrap();
    }
    let file = dir.path().join("lab.yaml");
    let check = |docker: &str, tls: &str| {
        let source = format!(
            "name: x\nhosts:\n  a: {{docker: '{docker}', underlay: 198.19.0.1, tls: {tls}}}\nnodes: {{n: {{host: a}}}}\n"
        );
        crate::lab::parse(&source, &file)
    };
    let message = |r: Result<crate::lab::Lab, crate::lab::LabErrors>| {
        r.err().map(|e| e.problems[0].message.clone()).unwrap()
    };
    assert!(message(check("tcp://h:2376", "certs")).starts_with(
        "the tls directory \"certs\" of host \"a\" lacks key.pem (expected ca.pem, cert.pem and key.pem"
    ));
    assert!(message(check("tcp://h:2376", "./none"))
        .starts_with("the tls directory \"./none\" of host \"a\" does not exist (looked for "));
    assert_eq!(
        message(check("unix:///d.sock", "certs")),
        "host \"a\" has tls, but its docker endpoint is unix:// (tls is for tcp:// only; a unix socket is guarded by its file's permissions: remove tls)"
    );
    assert!(message(check("ssh://h", "certs")).contains("ssh:// is secured by SSH itself"));
    std::fs::write(certs.join("key.pem"), "").unwrap();
    let lab = check("tcp://h:2376", "./certs").unwrap_or_else(|e| panic!("{e}"));
    let tls = lab.host("a").unwrap().tls.clone().unwrap();
    assert!(tls.is_absolute(), "{}", tls.display());
    assert_eq!(tls, certs.canonicalize().unwrap());
}

#[test]
fn vxlan_only_across_hosts_in_range_each_vni_once() {
    assert_problems(
        &across_hosts(
            "  r: {host: a}\nlinks:\n  - endpoints: [p:e1, r:e1]\n    vxlan: {}\n  - endpoints: [p:e2, q:e1]\n    vxlan: {vni: 0, port: 0}\n  - endpoints: [p:e3, q:e2]\n    vxlan: {vni: 16777216, port: 65536}\n  - endpoints: [p:e4, q:e3]\n    vxlan: {vni: 7}\n  - endpoints: [p:e5, q:e4]\n    vxlan: {vni: 7}\n",
        ),
        &[
            "11:12: link 1 has vxlan, but both its ends are on host \"a\" (a link on one host is a veth pair, not a VXLAN tunnel: remove vxlan)",
            "13:18: invalid vni 0 in link 2 (expected 1 to 16777215",
            "13:27: invalid vxlan port 0 in link 2 (expected 1 to 65535)",
            "15:18: invalid vni 16777216 in link 3",
            "15:34: invalid vxlan port 65536 in link 3",
            "19:18: vni 7 of link 5 is already used by link 4 (line 17); each VXLAN link needs its own",
        ],
    );
}

#[test]
fn a_tunnel_runs_over_one_ip_version() {
    // p is on a (IPv4), r on c (IPv6).
    let lab = across_hosts(
        "  r: {host: c}\nlinks:\n  - endpoints: [p:e1, r:e1]\n  - endpoints: [q:e1, r:e2]\n",
    )
    .replace(
        "nodes:",
        "  c: {docker: 'tcp://[fd00::3]:2375', underlay: 'fd00::3'}\nnodes:",
    );
    assert_problems(
        &lab,
        &[
            "11:16: link 1 joins host \"a\" (underlay 198.19.0.1) and host \"c\" (underlay fd00::3): a VXLAN tunnel runs over one IP version",
            "12:16: link 2 joins host \"b\" (underlay 198.19.0.2) and host \"c\" (underlay fd00::3)",
        ],
    );
}

#[test]
fn hosts_cannot_run_on_netns() {
    assert_problems(
        &across_hosts("").replace("name: x\n", "name: x\nruntime: netns\n"),
        &["2:10: runtime: netns cannot run a lab with hosts: netns nodes are network namespaces on this host (remove runtime: netns, or hosts)"],
    );
    let refused = valid(&across_hosts(""))
        .with_runtime(crate::lab::RuntimeKind::Netns)
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "lab `x` cannot run on the netns runtime: it spans hosts a, b, and netns nodes are network namespaces on this host (use --runtime docker)"
    );
    assert!(matches!(
        refused,
        crate::lab::RuntimeMismatch::HostsUnderNetns { .. }
    ));
    assert!(valid(&across_hosts(""))
        .with_runtime(crate::lab::RuntimeKind::Docker)
        .is_ok());
}
