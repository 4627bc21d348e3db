use super::*;

fn net(text: &str) -> Ipv4Net {
    text.parse().unwrap()
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

const ETH1: u32 = 11;
const ETH2: u32 = 12;

fn route(destination: &str, gateway: Option<&str>, oif: u32, metric: u32) -> Route {
    Route {
        destination: net(destination),
        kind: RouteKind::Unicast,
        gateway: gateway.map(ip),
        oif: Some(oif),
        metric,
        prefsrc: None,
    }
}

/// A node on 198.18.1.0/24 (eth1) and 198.18.2.0/24 (eth2), with a default
/// route and a more specific one through eth1's router.
fn table() -> Vec<Route> {
    vec![
        route("0.0.0.0/0", Some("198.18.1.254"), ETH1, 0),
        route("198.18.1.0/24", None, ETH1, 0),
        route("198.18.2.0/24", None, ETH2, 0),
        route("198.18.8.0/22", Some("198.18.1.253"), ETH1, 0),
        route("198.18.9.0/24", Some("198.18.1.252"), ETH1, 0),
    ]
}

#[test]
fn the_longest_prefix_wins() {
    let table = table();
    let hop = lookup(&table, ETH1, ip("198.18.9.7")).unwrap();
    assert_eq!(hop.gateway, Some(ip("198.18.1.252")));
    let hop = lookup(&table, ETH1, ip("198.18.10.7")).unwrap();
    assert_eq!(hop.gateway, Some(ip("198.18.1.253")));
}

#[test]
fn the_default_route_takes_the_rest() {
    let table = table();
    let hop = lookup(&table, ETH1, ip("198.19.200.1")).unwrap();
    assert_eq!(hop.destination.prefix_len(), 0);
    assert_eq!(hop.gateway, Some(ip("198.18.1.254")));
}

#[test]
fn a_connected_subnet_is_direct() {
    let table = table();
    let hop = lookup(&table, ETH1, ip("198.18.1.9")).unwrap();
    assert_eq!(hop.gateway, None);
}

#[test]
fn only_routes_out_of_the_interface_count() {
    let table = table();
    // 198.18.2.0/24 is connected on eth2: from eth1 the default route takes it.
    let hop = lookup(&table, ETH1, ip("198.18.2.9")).unwrap();
    assert_eq!(hop.gateway, Some(ip("198.18.1.254")));
    // From eth2 only its own subnet is reachable.
    assert_eq!(
        lookup(&table, ETH2, ip("198.18.2.9")).unwrap().gateway,
        None
    );
    let miss = lookup(&table, ETH2, ip("198.18.9.7")).unwrap_err();
    assert_eq!(
        miss,
        Miss::NoRoute {
            elsewhere: Some(route("198.18.9.0/24", Some("198.18.1.252"), ETH1, 0))
        }
    );
}

#[test]
fn the_lowest_metric_wins_among_equal_prefixes_then_the_first() {
    let table = vec![
        route("0.0.0.0/0", Some("198.18.1.1"), ETH1, 200),
        route("0.0.0.0/0", Some("198.18.1.2"), ETH1, 100),
        route("0.0.0.0/0", Some("198.18.1.3"), ETH1, 100),
    ];
    let hop = lookup(&table, ETH1, ip("198.18.50.1")).unwrap();
    assert_eq!(hop.gateway, Some(ip("198.18.1.2")));
}

#[test]
fn a_longer_reject_route_refuses() {
    let mut table = table();
    table.push(Route {
        kind: RouteKind::Reject("unreachable"),
        oif: None,
        ..route("198.18.9.128/25", None, 0, 0)
    });
    let miss = lookup(&table, ETH1, ip("198.18.9.200")).unwrap_err();
    let error = miss.into_error(ip("198.18.9.200"), "eth1");
    assert_eq!(
        error.to_string(),
        "198.18.9.200 is refused by the route unreachable 198.18.9.128/25 on this node"
    );
    // The rest of the /24 still goes through its gateway.
    assert!(lookup(&table, ETH1, ip("198.18.9.1")).is_ok());
}

#[test]
fn no_route_is_one_line_naming_the_destination() {
    let table = vec![route("198.18.1.0/24", None, ETH1, 0)];
    let miss = lookup(&table, ETH1, ip("198.18.77.1")).unwrap_err();
    let error = miss.into_error(ip("198.18.77.1"), "eth1");
    let text = error.to_string();
    assert_eq!(
        text,
        "no route to 198.18.77.1 out of eth1: add a route for it \
         (the node's `routes` in the lab) or pass --gateway"
    );
    assert!(!text.contains('\n'));
    // An empty table too.
    assert!(matches!(
        lookup(&[], ETH1, ip("198.18.1.1")),
        Err(Miss::NoRoute { elsewhere: None })
    ));
}

#[test]
fn no_route_here_names_the_route_elsewhere() {
    let table = table();
    let error = lookup(&table, ETH2, ip("198.19.0.1"))
        .unwrap_err()
        .into_error(ip("198.19.0.1"), "eth2");
    assert!(
        error
            .to_string()
            .contains("(the best route, default via 198.18.1.254, leaves by another interface)"),
        "{error}"
    );
}

fn interface() -> Interface {
    Interface {
        name: "eth1".into(),
        index: ETH1,
        mac: MacAddr::new(2, 0, 0, 0, 1, 1),
        ipv4: Some(ip("198.18.1.1")),
    }
}

#[test]
fn a_gateway_given_is_the_next_hop_without_the_table() {
    // Index 11 exists in no test namespace: the table is not read.
    let hop = next_hop(&interface(), ip("198.19.3.3"), Some(ip("198.18.1.7"))).unwrap();
    assert_eq!(
        hop,
        NextHop {
            destination: ip("198.19.3.3"),
            address: ip("198.18.1.7"),
            gateway: Some(ip("198.18.1.7")),
            source: Some(ip("198.18.1.1")),
            source_mac: MacAddr::new(2, 0, 0, 0, 1, 1),
        }
    );
}

#[test]
fn the_real_table_reads() {
    // The namespace the tests run in: its main table dumps without error,
    // and nothing in it leaves by `lo` towards a lab address.
    read_table().unwrap();
    let lo = crate::tools::iface::lookup("lo").unwrap();
    let error = next_hop(&lo, ip("198.18.250.250"), None).unwrap_err();
    assert!(matches!(error, RouteError::NoRoute { .. }), "{error}");
}
