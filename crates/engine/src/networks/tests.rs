//! The networks' records, checks and plans, without the kernel: nothing
//! here creates a bridge or touches a firewall (the privileged end-to-end
//! tests in tests/daemon/networks.rs do).

use super::*;

use kiln_network::Subnet;

fn net(s: &str) -> Subnet {
    s.parse().expect(s)
}

fn config(bip: &str) -> NetworkConfig {
    NetworkConfig {
        bridge: Some("kt-unit".into()),
        bip: Some(bip.parse().expect("bip")),
        // A pool no host route is likely to cover, so picks are predictable.
        default_address_pools: vec![Pool::new(net("10.213.0.0/16"), 24).expect("pool")],
        ..NetworkConfig::default()
    }
}

fn open(dir: &kiln_testing::ScratchDir, config: &NetworkConfig) -> Arc<Networks> {
    let db = Database::create(dir.path().join("kiln.db")).expect("db");
    let events = Arc::new(Events::default());
    Networks::open(&dir.path().join("run"), config, Arc::new(db), events).expect("networks")
}

fn create(networks: &Networks, name: &str, subnet: Option<&str>) -> NetworkRecord {
    networks
        .create(CreateNetwork {
            name: name.into(),
            subnet: subnet.map(str::to_owned),
            ..CreateNetwork::default()
        })
        .unwrap_or_else(|err| panic!("create {name}: {err}"))
}

fn create_err(networks: &Networks, request: CreateNetwork) -> NetworkError {
    networks.create(request).expect_err("refused")
}

fn endpoint(container: &str, ip: &str) -> Endpoint {
    Endpoint {
        container_id: container.into(),
        container_name: format!("name-{container}"),
        ip: ip.into(),
        prefix_len: 24,
        mac: "02:42:00:00:00:00".into(),
        aliases: Vec::new(),
        host_veth: format!("kv{container}"),
        interface: "eth0".into(),
    }
}

#[test]
fn a_new_daemon_has_bridge_host_and_none_with_the_bip_it_was_given() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let all = networks.list(&BTreeMap::new()).expect("list");
    let names: Vec<&str> = all.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    let bridge = networks.inspect("bridge").expect("bridge");
    assert_eq!(bridge.driver, "bridge");
    assert_eq!(bridge.bridge, "kt-unit");
    assert_eq!(bridge.subnet, "10.77.3.0/24");
    assert_eq!(bridge.gateway, "10.77.3.1");
    assert_eq!(bridge.options[BRIDGE_NAME_OPTION], "kt-unit");
    assert_eq!(networks.inspect("none").expect("none").driver, "null");
    assert_eq!(networks.inspect("host").expect("host").driver, "host");
    assert!(all.iter().all(|n| n.id.len() == 64 && n.is_predefined()));

    // Ids stay across restarts; a new bip moves the unused default bridge.
    let id = bridge.id.clone();
    drop(networks);
    let networks = open(&dir, &config("10.77.4.1/24"));
    let bridge = networks.inspect("bridge").expect("bridge");
    assert_eq!((bridge.id.as_str(), bridge.subnet.as_str()), (id.as_str(), "10.77.4.0/24"));
}

#[test]
fn user_networks_get_a_free_subnet_a_gateway_and_a_bridge_of_their_own() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let first = create(&networks, "kiln-t-one", None);
    let second = create(&networks, "kiln-t-two", None);
    assert_eq!(first.subnet, "10.213.0.0/24");
    assert_eq!(first.gateway, "10.213.0.1");
    assert_eq!(second.subnet, "10.213.1.0/24");
    assert_eq!(first.bridge, format!("kb-{}", &first.id[..12]));
    assert_eq!(first.driver, "bridge");
    assert!(!first.is_predefined());

    let named = networks
        .create(CreateNetwork {
            name: "kiln-t-named".into(),
            subnet: Some("10.88.0.0/16".into()),
            gateway: Some("10.88.0.254".into()),
            ip_range: Some("10.88.5.0/24".into()),
            internal: true,
            options: [(BRIDGE_NAME_OPTION.to_owned(), "kt-mine".to_owned())].into(),
            labels: [("team".to_owned(), "ml".to_owned())].into(),
            ..CreateNetwork::default()
        })
        .expect("create");
    assert_eq!(named.bridge, "kt-mine");
    assert_eq!(named.gateway, "10.88.0.254");
    assert_eq!(named.ip_range.as_deref(), Some("10.88.5.0/24"));
    assert!(named.internal);

    // All of it survives a restart, by name, id and id prefix.
    drop(networks);
    let networks = open(&dir, &config("10.77.3.1/24"));
    assert_eq!(networks.inspect("kiln-t-named").expect("by name"), named);
    assert_eq!(networks.inspect(&named.id).expect("by id"), named);
    assert_eq!(networks.inspect(&named.id[..10]).expect("by prefix"), named);
}

#[test]
fn bad_network_requests_get_dockers_answers() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    create(&networks, "kiln-t-taken", Some("10.90.0.0/16"));
    let request = |name: &str| CreateNetwork { name: name.into(), ..CreateNetwork::default() };
    let cases: Vec<(CreateNetwork, &str, ErrorKind)> = vec![
        (
            request("kiln-t-taken"),
            "network with name kiln-t-taken already exists",
            ErrorKind::Conflict,
        ),
        (
            request("bridge"),
            "bridge is a pre-defined network and cannot be created",
            ErrorKind::PermissionDenied,
        ),
        (
            request("-bad"),
            "invalid network name \"-bad\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            ErrorKind::InvalidArgument,
        ),
        (
            CreateNetwork { driver: Some("overlay".into()), ..request("kiln-t-o") },
            "plugin \"overlay\" not found",
            ErrorKind::NotFound,
        ),
        (
            CreateNetwork { subnet: Some("10.90.3.0/24".into()), ..request("kiln-t-over") },
            "Pool overlaps with other one on this address space",
            ErrorKind::Conflict,
        ),
        (
            CreateNetwork { subnet: Some("10.77.0.0/16".into()), ..request("kiln-t-bip") },
            "Pool overlaps with other one on this address space",
            ErrorKind::Conflict,
        ),
        (
            CreateNetwork {
                subnet: Some("10.91.0.0/24".into()),
                gateway: Some("10.92.0.1".into()),
                ..request("kiln-t-gw")
            },
            "no matching subnet for gateway 10.92.0.1",
            ErrorKind::InvalidArgument,
        ),
        (
            CreateNetwork { subnet: Some("10.91.0.1/24".into()), ..request("kiln-t-host") },
            "invalid subnet 10.91.0.1/24 : it should be 10.91.0.0/24",
            ErrorKind::InvalidArgument,
        ),
        (
            CreateNetwork {
                options: [(BRIDGE_NAME_OPTION.to_owned(), "kt-unit".to_owned())].into(),
                ..request("kiln-t-samebridge")
            },
            "bridge name kt-unit is already used by network bridge",
            ErrorKind::Conflict,
        ),
        (
            CreateNetwork {
                options: [(BRIDGE_NAME_OPTION.to_owned(), "a name too long".to_owned())].into(),
                ..request("kiln-t-longbridge")
            },
            "invalid bridge name \"a name too long\": up to 15 letters, digits, '-', '_' or '.'",
            ErrorKind::InvalidArgument,
        ),
    ];
    for (request, message, kind) in cases {
        let name = request.name.clone();
        let err = create_err(&networks, request);
        assert_eq!(err.to_string(), message, "{name}");
        assert_eq!(err.kind(), kind, "{name}");
    }
    let names: Vec<String> =
        networks.list(&BTreeMap::new()).expect("list").into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge", "host", "kiln-t-taken", "none"], "nothing half-made");
}

#[test]
fn remove_refuses_predefined_networks_and_networks_in_use() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    for name in PREDEFINED {
        let err = networks.remove(name).expect_err("predefined");
        assert_eq!(
            err.to_string(),
            format!("{name} is a pre-defined network and cannot be removed")
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }
    let busy = create(&networks, "kiln-t-busy", None);
    lock(&networks.inner)
        .networks
        .get_mut(&busy.id)
        .expect("record")
        .endpoints
        .insert("c1".into(), endpoint("c1", "10.213.0.2"));
    let err = networks.remove("kiln-t-busy").expect_err("in use");
    assert_eq!(
        err.to_string(),
        format!(
            "error while removing network: network kiln-t-busy id {} has active endpoints",
            busy.id
        )
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    lock(&networks.inner).networks.get_mut(&busy.id).expect("record").endpoints.clear();
    networks.remove("kiln-t-busy").expect("remove");
    let err = networks.inspect("kiln-t-busy").expect_err("gone");
    assert_eq!(err.to_string(), "network kiln-t-busy not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn list_filters_and_prune_follow_docker() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let labelled = |name: &str, labels: &[(&str, &str)]| {
        networks
            .create(CreateNetwork {
                name: name.into(),
                labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                ..CreateNetwork::default()
            })
            .expect("create")
    };
    labelled("kiln-t-a", &[("team", "ml")]);
    let b = labelled("kiln-t-b", &[("team", "web")]);
    labelled("kiln-t-c", &[]);
    networks.add_member(&b.id, "c1", "one", EndpointConfig::default(), false).expect("member");

    let names = |filters: &[(&str, &str)]| -> Vec<String> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in filters {
            map.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        networks.list(&map).expect("list").into_iter().map(|n| n.name).collect()
    };
    assert_eq!(names(&[("type", "custom")]), ["kiln-t-a", "kiln-t-b", "kiln-t-c"]);
    assert_eq!(names(&[("type", "builtin")]), ["bridge", "host", "none"]);
    assert_eq!(names(&[("label", "team")]), ["kiln-t-a", "kiln-t-b"]);
    assert_eq!(names(&[("label", "team=ml")]), ["kiln-t-a"]);
    assert_eq!(names(&[("name", "t-c")]), ["kiln-t-c"]);
    assert_eq!(names(&[("driver", "null")]), ["none"]);
    assert_eq!(names(&[("id", &b.id[..8])]), ["kiln-t-b"]);
    assert!(networks.list(&[("color".to_owned(), vec![])].into()).is_err());

    // Prune: user networks no container is on, with the labels asked for.
    assert_eq!(networks.prune(&["team".into()]).expect("prune"), ["kiln-t-a"]);
    assert_eq!(networks.prune(&[]).expect("prune"), ["kiln-t-c"]);
    assert_eq!(names(&[("type", "custom")]), ["kiln-t-b"]);
    networks.forget("c1");
    assert_eq!(networks.prune(&[]).expect("prune"), ["kiln-t-b"]);
}

#[test]
fn members_keep_their_options_and_a_taken_or_foreign_ip_is_refused() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let net = create(&networks, "kiln-t-m", Some("10.95.0.0/24"));
    let err = networks
        .add_member(
            &net.id,
            "c1",
            "one",
            EndpointConfig { ipv4_address: "10.96.0.5".into(), ..EndpointConfig::default() },
            false,
        )
        .expect_err("outside");
    assert_eq!(
        err.to_string(),
        "invalid address 10.96.0.5: It does not belong to any of this network's subnets"
    );
    let err = networks
        .add_member(
            &net.id,
            "c1",
            "one",
            EndpointConfig { ipv4_address: "10.95.0.1".into(), ..EndpointConfig::default() },
            false,
        )
        .expect_err("the gateway");
    assert_eq!(err.to_string(), "Address already in use");
    let wanted = EndpointConfig { aliases: vec!["db".into()], ipv4_address: "10.95.0.9".into() };
    networks.add_member(&net.id, "c1", "one", wanted.clone(), false).expect("member");
    let err = networks.add_member(&net.id, "c1", "one", wanted.clone(), false).expect_err("twice");
    assert_eq!(err.to_string(), "endpoint with name one already exists in network kiln-t-m");
    let err = networks.add_member("host", "c1", "one", wanted.clone(), false).expect_err("host");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);

    drop(networks);
    let networks = open(&dir, &config("10.77.3.1/24"));
    assert_eq!(networks.inspect("kiln-t-m").expect("net").members["c1"], wanted);
    networks.remove_member("kiln-t-m", "c1", "one").expect("leave");
    let err = networks.remove_member("kiln-t-m", "c1", "one").expect_err("not a member");
    assert_eq!(err.to_string(), "container one is not connected to network kiln-t-m");
}

#[test]
fn the_firewall_plan_holds_networks_in_use_default_first_and_every_published_port() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let user = create(&networks, "kiln-t-fw", Some("10.96.0.0/24"));
    create(&networks, "kiln-t-idle", Some("10.97.0.0/24"));
    let mut inner = lock(&networks.inner);
    assert!(firewall::ruleset(&inner).expect("plan").networks.is_empty(), "nothing in use");
    let bridge_id =
        inner.networks.values().find(|n| n.name == "bridge").expect("bridge").id.clone();
    inner
        .networks
        .get_mut(&user.id)
        .expect("user")
        .endpoints
        .insert("c2".into(), endpoint("c2", "10.96.0.2"));
    inner
        .networks
        .get_mut(&bridge_id)
        .expect("bridge")
        .endpoints
        .insert("c1".into(), endpoint("c1", "10.77.3.2"));
    let binding = ports::parse_publish("127.0.0.1:8080:80").expect("spec")[0];
    let published = sandbox::tests_published(&binding, "10.77.3.2".parse().expect("ip"));
    inner.published.insert("c1".into(), vec![published]);
    let plan = firewall::ruleset(&inner).expect("plan");
    let bridges: Vec<&str> = plan.networks.iter().map(|n| n.bridge()).collect();
    assert_eq!(bridges, ["kt-unit", user.bridge.as_str()], "the idle network is left out");
    assert_eq!(plan.ports.len(), 1);
    assert_eq!(plan.ports[0].host_port, 8080);
    assert_eq!(plan.ports[0].host_ip, Some(Ipv4Addr::LOCALHOST));
    assert_eq!(plan.ports[0].container_ip, "10.77.3.2".parse::<Ipv4Addr>().expect("ip"));
}

#[test]
fn endpoints_survive_a_restart_in_their_files_and_keep_addresses_taken() {
    let dir = kiln_testing::ScratchDir::new().expect("scratch");
    let networks = open(&dir, &config("10.77.3.1/24"));
    let user = create(&networks, "kiln-t-ep", Some("10.98.0.0/24"));
    {
        let mut inner = lock(&networks.inner);
        inner
            .networks
            .get_mut(&user.id)
            .expect("user")
            .endpoints
            .insert("c1".into(), endpoint("c1", "10.98.0.2"));
        networks.save_endpoints(&inner, "c1").expect("save");
    }
    drop(networks);
    let networks = open(&dir, &config("10.77.3.1/24"));
    let record = networks.inspect("kiln-t-ep").expect("net");
    assert_eq!(record.endpoints["c1"], endpoint("c1", "10.98.0.2"));
    let inner = lock(&networks.inner);
    let mut allocator = allocator_of(&inner, &record).expect("allocator");
    assert_eq!(allocator.allocate(), Some("10.98.0.3".parse().expect("ip")), ".2 is taken");
}

#[test]
fn port_bindings_come_from_the_api_map_and_publish_all() {
    let map: BTreeMap<String, Vec<(String, String)>> = [
        ("80/tcp".to_owned(), vec![("127.0.0.1".to_owned(), "8080".to_owned())]),
        ("53/udp".to_owned(), vec![]),
    ]
    .into();
    let exposed = ["80/tcp".to_owned(), "443".to_owned(), "9000-9001/udp".to_owned()];
    let bindings = port_bindings(&map, true, exposed.iter()).expect("bindings");
    let shown: Vec<String> = bindings
        .iter()
        .map(|b| format!("{:?}:{:?}->{}", b.host_ip, b.host_port, b.key()))
        .collect();
    assert_eq!(
        shown,
        [
            "None:None->53/udp",
            "Some(127.0.0.1):Some(8080)->80/tcp",
            "None:None->443/tcp",
            "None:None->9000/udp",
            "None:None->9001/udp",
        ]
    );
    assert_eq!(port_bindings(&map, false, exposed.iter()).expect("bindings").len(), 2);
    let bad: BTreeMap<String, Vec<(String, String)>> =
        [("80/tcp".to_owned(), vec![(String::new(), "70000".to_owned())])].into();
    let err = port_bindings(&bad, false, []).expect_err("bad port");
    assert_eq!(err.to_string(), "invalid hostPort: 70000");
}

#[test]
fn names_macs_and_addresses_parse_as_docker_writes_them() {
    assert!(is_valid_name("kiln-t_net.1"));
    for bad in ["", "-x", ".x", "a b", "a/b", "é"] {
        assert!(!is_valid_name(bad), "{bad:?}");
    }
    let ip: Ipv4Addr = "172.17.0.2".parse().expect("ip");
    assert_eq!(format_mac(mac_for(ip)), "02:42:ac:11:00:02");
    assert_eq!(parse_mac("02:42:AC:11:00:02"), Some(mac_for(ip)));
    assert_eq!(parse_mac("02-42-ac-11-00-02"), Some(mac_for(ip)));
    for bad in ["", "02:42:ac:11:00", "02:42:ac:11:00:zz", "2:42:ac:11:00:02:03"] {
        assert_eq!(parse_mac(bad), None, "{bad:?}");
    }
    assert_eq!(parse_ip("").expect("empty"), None);
    assert_eq!(
        parse_ip("10.0.0.300").expect_err("bad").to_string(),
        "invalid IPv4 address 10.0.0.300"
    );
}
