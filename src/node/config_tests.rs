//! The node's configuration read as etcd reads it: flags, ETCD_* variables, --config-file, and
//! etcd's error texts for every mistake.

use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn env(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn no_file(_: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
}

fn ok(list: &[&str]) -> Loaded {
    load(&args(list), &[], no_file).expect("valid configuration")
}

fn err(list: &[&str], vars: &[(&str, &str)]) -> String {
    load(&args(list), &env(vars), no_file).expect_err("invalid configuration").to_string()
}

#[test]
fn defaults_are_etcds() {
    let c = ok(&[]).config;
    assert_eq!(c.name, "default");
    assert_eq!(c.data_dir, PathBuf::from("default.etcd"));
    assert_eq!(c.wal_dir(), PathBuf::from("default.etcd/member/wal"));
    assert_eq!(c.listen_client_urls, vec![EtcdUrl::parse("http://localhost:2379").unwrap()]);
    assert_eq!(c.listen_peer_urls, vec![EtcdUrl::parse("http://localhost:2380").unwrap()]);
    assert_eq!(c.initial_cluster.len(), 1);
    assert_eq!(c.initial_cluster_state, ClusterState::New);
    assert_eq!(c.initial_cluster_token, "etcd-cluster");
    assert_eq!(c.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(c.election_timeout, Duration::from_millis(1000));
    assert_eq!(c.snapshot_count, 100_000);
    assert_eq!(c.quota_bytes(), Some(DEFAULT_QUOTA_BYTES));
    assert_eq!(c.max_request_bytes, 1_572_864);
    assert_eq!(c.max_txn_ops, 128);
    assert_eq!(c.auto_compaction, AutoCompaction::Disabled);
}

#[test]
fn tls_flags_are_checked_as_etcd_checks_them() {
    let c = ok(&[
        "--listen-client-urls",
        "https://127.0.0.1:2379",
        "--advertise-client-urls",
        "https://127.0.0.1:2379",
        "--cert-file",
        "s.crt",
        "--key-file",
        "s.key",
        "--trusted-ca-file",
        "ca.crt",
        "--client-cert-auth",
        "--peer-cert-allowed-cn",
        "etcd-peer",
        "--cipher-suites",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ])
    .config;
    assert_eq!(c.client_tls.cert_file, Some(PathBuf::from("s.crt")));
    assert_eq!(c.client_tls.trusted_ca_file, Some(PathBuf::from("ca.crt")));
    assert!(c.client_tls.client_cert_auth && !c.peer_tls.client_cert_auth);
    assert_eq!(c.peer_tls.allowed_cn.as_deref(), Some("etcd-peer"));
    assert_eq!(c.tls.cipher_suites.len(), 2);
    assert_eq!((c.tls.min_version, c.tls.max_version), (TlsVersion::Tls12, None));

    let https =
        ["--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://a:2379"];
    assert_eq!(
        err(&https, &[]),
        "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 \
         with HTTPS scheme"
    );
    assert!(ok(&[&https[..], &["--auto-tls"]].concat()).config.auto_tls);
    assert_eq!(
        err(&[&https[..], &["--cert-file", "s.crt"]].concat(), &[]),
        "KeyFile and CertFile must both be present[key: , cert: s.crt]"
    );
    let peer = [
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-cluster",
        "default=https://127.0.0.1:2380",
    ];
    assert_eq!(
        err(&peer, &[]),
        "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented"
    );
    assert!(ok(&[&peer[..], &["--peer-auto-tls"]].concat()).config.peer_auto_tls);

    assert_eq!(err(&["--cipher-suites", "TLS_FOO"], &[]), "unexpected TLS cipher suite \"TLS_FOO\"");
    assert!(err(&["--cipher-suites", "TLS_RSA_WITH_AES_128_CBC_SHA"], &[]).contains("is not supported"));
    assert_eq!(
        err(&["--tls-min-version", "TLS1.1"], &[]),
        "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)"
    );
    assert_eq!(
        err(&["--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"], &[]),
        "min version (TLS1.3) is greater than max version (TLS1.2)"
    );
    assert_eq!(
        err(
            &["--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
            &[]
        ),
        "cipher suites cannot be configured when only TLS1.3 is enabled"
    );
    let warned = ok(&["--cert-file", "s.crt", "--key-file", "s.key", "--client-cert-auth"]).warnings;
    assert!(
        warned.iter().any(|w| w.starts_with("scheme is HTTP while key and cert files are present")),
        "{warned:?}"
    );
    assert!(warned.iter().any(|w| w.contains("--client-cert-auth is enabled")), "{warned:?}");
    let vars = env(&[("ETCD_PEER_CLIENT_CERT_AUTH", "true"), ("ETCD_TLS_MIN_VERSION", "TLS1.3")]);
    let c = load(&[], &vars, no_file).expect("variables").config;
    assert!(c.peer_tls.client_cert_auth);
    assert_eq!(c.tls.min_version, TlsVersion::Tls13);
    let yaml = |_: &Path| {
        Ok("cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"
            .to_string())
    };
    let c = load(&args(&["--config-file", "e.yaml"]), &[], yaml).expect("yaml").config;
    assert_eq!(c.tls.cipher_suites.len(), 2);
}

#[test]
fn a_named_member_bootstraps_alone_on_its_own_peer_urls() {
    let c = ok(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls",
        "http://10.0.0.1:2380",
        "--listen-peer-urls",
        "http://10.0.0.1:2380",
    ])
    .config;
    assert_eq!(c.data_dir, PathBuf::from("infra1.etcd"));
    assert_eq!(c.initial_cluster.get("infra1"), Some(&vec![EtcdUrl::parse("http://10.0.0.1:2380").unwrap()]));
}

#[test]
fn a_static_three_member_bootstrap_as_etcds_docs_write_it() {
    let c = ok(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls",
        "http://10.0.1.10:2380",
        "--listen-peer-urls",
        "http://10.0.1.10:2380",
        "--listen-client-urls",
        "http://10.0.1.10:2379,http://127.0.0.1:2379",
        "--advertise-client-urls",
        "http://10.0.1.10:2379",
        "--initial-cluster-token",
        "etcd-cluster-1",
        "--initial-cluster",
        "infra0=http://10.0.1.11:2380,infra1=http://10.0.1.10:2380,infra2=http://10.0.1.12:2380",
        "--initial-cluster-state",
        "new",
    ])
    .config;
    assert_eq!(c.initial_cluster.len(), 3);
    assert_eq!(c.listen_client_urls.len(), 2);
    assert_eq!(c.initial_cluster_token, "etcd-cluster-1");
}

/// etcd's --discovery: the URL is the cluster token, the member starts from itself alone, and the
/// flag conflicts with --initial-cluster (flag or variable) and with joining an existing cluster.
#[test]
fn a_discovery_url_is_the_token_and_conflicts_as_in_etcd() {
    let url = "http://10.0.0.9:2379/v2/keys/discovery/t0k3n";
    let c = ok(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls",
        "http://10.0.0.1:2380",
        "--discovery",
        url,
    ])
    .config;
    assert_eq!(c.discovery.as_deref(), Some(url));
    assert_eq!(c.initial_cluster_token, url);
    assert_eq!(c.discovery_fallback, DiscoveryFallback::Proxy);
    assert_eq!(cluster_text(&c), "infra1=http://10.0.0.1:2380");
    // The default member name works too: its default --initial-cluster is not taken as set.
    assert_eq!(ok(&["--discovery", url]).config.initial_cluster.len(), 1);
    let conflict = r#"multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv""#;
    assert_eq!(
        err(&["--discovery", url, "--initial-cluster", "default=http://localhost:2380"], &[]),
        conflict
    );
    assert_eq!(
        err(&[], &[("ETCD_DISCOVERY", url), ("ETCD_INITIAL_CLUSTER", "default=http://localhost:2380")]),
        conflict
    );
    assert_eq!(
        err(&["--discovery", url, "--initial-cluster-state", "existing"], &[]),
        "discovery URL should not be set when joining existing initial cluster"
    );
    assert_eq!(
        err(&["--discovery-fallback", "stay"], &[]),
        "invalid value \"stay\" for flag -discovery-fallback: invalid value"
    );
    assert_eq!(ok(&["--discovery-fallback", "exit"]).config.discovery_fallback, DiscoveryFallback::Exit);

    // --discovery-srv: the member alone until the records say who else; the token stays its own.
    let c = ok(&["--name", "m1", "--discovery-srv", "example.com", "--discovery-srv-name", "c1"]).config;
    assert_eq!(c.discovery_srv.as_deref(), Some("example.com"));
    assert_eq!(c.discovery_srv_name, "c1");
    assert_eq!(c.initial_cluster_token, "etcd-cluster");
    assert_eq!(cluster_text(&c), "m1=http://localhost:2380");
    let from_env = load(&args(&[]), &env(&[("ETCD_DISCOVERY_SRV", "example.com")]), no_file).expect("valid");
    assert_eq!(from_env.config.discovery_srv.as_deref(), Some("example.com"));
    for both in [
        vec!["--discovery-srv", "example.com", "--discovery", url],
        vec!["--discovery-srv", "example.com", "--initial-cluster", "default=http://localhost:2380"],
    ] {
        assert_eq!(err(&both, &[]), conflict, "{both:?}");
    }
}

#[test]
fn single_dash_long_flags_work_as_in_go() {
    let c = ok(&["-name=infra9", "-snapshot-count", "5"]).config;
    assert_eq!(c.name, "infra9");
    assert_eq!(c.snapshot_count, 5);
}

#[test]
fn environment_fills_unset_flags_and_a_shadowed_variable_is_an_error() {
    let loaded = load(
        &args(&["--name", "a", "--initial-cluster", "a=http://localhost:2380"]),
        &env(&[
            ("ETCD_SNAPSHOT_COUNT", "42"),
            ("ETCD_MAX_TXN_OPS", ""),
            ("ETCD_UNKNOWN_THING", "1"),
            ("PATH", "/bin"),
        ]),
        no_file,
    )
    .unwrap();
    assert_eq!(loaded.config.snapshot_count, 42);
    assert_eq!(loaded.config.max_txn_ops, 128, "an empty variable is skipped");
    assert_eq!(loaded.warnings, vec!["unrecognized environment variable ETCD_UNKNOWN_THING"]);
    assert_eq!(
        err(&["--name", "a"], &[("ETCD_NAME", "b")]),
        "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag \
         (either unset environment variable or disable flag)"
    );
}

#[test]
fn bad_values_name_the_flag_or_variable() {
    assert_eq!(
        err(&["--snapshot-count", "x"], &[]),
        "invalid value \"x\" for flag -snapshot-count: parse error"
    );
    assert_eq!(
        err(&[], &[("ETCD_SNAPSHOT_COUNT", "-1")]),
        "invalid value \"-1\" for ETCD_SNAPSHOT_COUNT: parse error"
    );
    assert_eq!(
        err(&["--heartbeat-interval", "99999999999999999999"], &[]),
        "invalid value \"99999999999999999999\" for flag -heartbeat-interval: value out of range"
    );
    assert_eq!(
        err(&["--initial-cluster-state", "old"], &[]),
        "invalid value \"old\" for flag -initial-cluster-state: invalid value"
    );
    assert_eq!(
        err(&["--listen-peer-urls", "localhost:2380"], &[]),
        "invalid value \"localhost:2380\" for flag -listen-peer-urls: URL scheme must be http, https, unix, or unixs: localhost:2380"
    );
    assert_eq!(err(&["--bogus", "1"], &[]), "flag provided but not defined: -bogus");
    assert_eq!(err(&["stray"], &[]), "'stray' is not a valid flag");
}

#[test]
fn contradictions_get_etcds_messages() {
    assert_eq!(
        err(&["--listen-client-urls", "http://127.0.0.1:2379"], &[]),
        "--advertise-client-urls is required when --listen-client-urls is set explicitly"
    );
    assert_eq!(
        err(&["--heartbeat-interval", "300"], &[]),
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"
    );
    assert_eq!(
        err(&["--election-timeout", "60000"], &[]),
        "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
    );
    assert_eq!(err(&["--heartbeat-interval", "0"], &[]), "--heartbeat-interval must be >0 (set to 0ms)");
    assert_eq!(
        err(&["--heartbeat-interval", "18446744073709551615"], &[]),
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[18446744073709551615ms]"
    );
    assert_eq!(
        err(&["--name", "x", "--initial-cluster", "a=http://localhost:2380"], &[]),
        "couldn't find local name \"x\" in the initial cluster configuration"
    );
    assert_eq!(
        err(&["--initial-cluster", "default=http://localhost:2380,b=http://localhost:2380"], &[]),
        "initial cluster b=http://localhost:2380,default=http://localhost:2380 has duplicate url"
    );
    assert_eq!(
        err(&["--initial-cluster", "default=http://127.0.0.1:2380"], &[]),
        "--initial-cluster has http://127.0.0.1:2380 but missing from --initial-advertise-peer-urls=http://localhost:2380"
    );
    assert_eq!(
        err(&["--listen-peer-urls", "http://example.com:2380"], &[]),
        "expected IP in URL for binding (http://example.com:2380)"
    );
    assert_eq!(
        err(&["--initial-cluster", "default"], &[]),
        "error setting up initial cluster: \"default\" is not in the form name=url"
    );
    assert_eq!(err(&["--auto-compaction-mode", "daily"], &[]), "unknown auto-compaction-mode \"daily\"");
    assert_eq!(
        err(&["--auto-compaction-retention", "soon"], &[]),
        "error parsing CompactionRetention: time: invalid duration \"soon\""
    );
}

#[test]
fn joining_an_existing_cluster_does_not_require_matching_advertised_urls() {
    let c = ok(&[
        "--initial-cluster-state",
        "existing",
        "--initial-cluster",
        "default=http://127.0.0.1:2380,b=http://127.0.0.2:2380",
    ])
    .config;
    assert_eq!(c.initial_cluster_state, ClusterState::Existing);
}

#[test]
fn auto_compaction_as_etcd_reads_it() {
    let mode = |m: &str, r: &str| {
        ok(&["--auto-compaction-mode", m, "--auto-compaction-retention", r]).config.auto_compaction
    };
    assert_eq!(mode("periodic", "1"), AutoCompaction::Periodic(Duration::from_secs(3600)));
    assert_eq!(mode("periodic", "30m"), AutoCompaction::Periodic(Duration::from_secs(1800)));
    assert_eq!(mode("revision", "1000"), AutoCompaction::Revision(1000));
    assert_eq!(mode("periodic", "0"), AutoCompaction::Disabled);
}

#[test]
fn limits_warn_where_etcd_warns() {
    let loaded = ok(&[
        "--snapshot-count",
        "0",
        "--quota-backend-bytes",
        "10000000000",
        "--max-request-bytes",
        "20000000",
    ]);
    assert_eq!(loaded.config.snapshot_count, 100_000);
    assert_eq!(
        loaded.warnings,
        vec![
            "set snapshot count to default 100000",
            "backend quota 10000000000 exceeds maximum recommended quota 8589934592",
            "MaxRequestBytes 20000000 exceeds maximum recommended size 10485760",
        ]
    );
    assert_eq!(ok(&["--quota-backend-bytes", "-1"]).config.quota_bytes(), None);
}

#[test]
fn auth_flags_are_etcds() {
    let c = ok(&[]).config;
    assert_eq!((c.auth_token_ttl, c.bcrypt_cost), (300, 10));
    let loaded = ok(&["--auth-token", "simple", "--auth-token-ttl", "2", "--bcrypt-cost", "4"]);
    assert_eq!((loaded.config.auth_token_ttl, loaded.config.bcrypt_cost), (2, 4));
    // Out of bcrypt's range: etcd warns and uses its default.
    let loaded = ok(&["--bcrypt-cost", "40"]);
    assert_eq!(loaded.config.bcrypt_cost, 10);
    assert_eq!(loaded.warnings, vec!["use default bcrypt-cost 10 instead of the invalid value 40"]);
    assert_eq!(err(&["--auth-token", "magic"], &[]), "auth: invalid auth options");
    assert!(err(&["--auth-token", "jwt,pub-key=/nonexistent"], &[])
        .starts_with("auth: invalid auth options (open /nonexistent:"));
    assert_eq!(err(&["--auth-token", "jwt,ttl=1m"], &[]), "auth: invalid auth options (sign-method \"\")");
    assert_eq!(err(&["--auth-token", "jwt,sign-method=RS256"], &[]), "auth: missing key data");
    assert_eq!(err(&["--auth-token", "jwt,ttl=1m,ttl=2m"], &[]), "auth: invalid auth options");
    assert!(err(&["--auth-token", "jwt,sign-method=ES256,pub-key=/nonexistent.pem"], &[])
        .contains("/nonexistent.pem"));
    assert!(err(&["--auth-token-ttl", "soon"], &[]).contains("auth-token-ttl"));
}

#[test]
fn a_config_file_is_exclusive_and_uses_etcds_keys() {
    let yaml = "name: infra1\n\
                data-dir: /var/lib/etcd\n\
                snapshot-count: 5000\n\
                heartbeat-interval: 50\n\
                election-timeout: 500\n\
                listen-peer-urls: http://10.0.0.1:2380\n\
                listen-client-urls: http://10.0.0.1:2379\n\
                initial-advertise-peer-urls: http://10.0.0.1:2380\n\
                initial-cluster: infra1=http://10.0.0.1:2380\n\
                initial-cluster-state: new\n\
                auto-compaction-mode: revision\n\
                auto-compaction-retention: \"100\"\n";
    let read = |p: &Path| {
        assert_eq!(p, Path::new("/etc/etcd/etcd.conf.yml"));
        Ok(yaml.to_string())
    };
    let loaded = load(
        &args(&["--config-file", "/etc/etcd/etcd.conf.yml", "--name", "ignored"]),
        &env(&[("ETCD_SNAPSHOT_COUNT", "1")]),
        read,
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.name, "infra1");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/etcd"));
    assert_eq!(c.snapshot_count, 5000);
    assert_eq!(c.election_timeout, Duration::from_millis(500));
    assert_eq!(c.auto_compaction, AutoCompaction::Revision(100));
    assert_eq!(
        loaded.warnings,
        vec!["using configuration file /etc/etcd/etcd.conf.yml; ignoring --name, ETCD_SNAPSHOT_COUNT"]
    );
    // ETCD_CONFIG_FILE names it too.
    let from_env = load(&[], &env(&[("ETCD_CONFIG_FILE", "/etc/etcd/etcd.conf.yml")]), read).unwrap();
    assert_eq!(from_env.config.name, "infra1");
}

#[test]
fn config_file_mistakes_are_named() {
    let with = |yaml: &'static str| {
        load(&args(&["--config-file", "/c.yml"]), &[], move |_| Ok(yaml.to_string())).unwrap_err().to_string()
    };
    assert_eq!(with("nmae: x\n"), "config file /c.yml: unknown key \"nmae\"");
    assert_eq!(
        with("snapshot-count: lots\n"),
        "invalid value \"lots\" for snapshot-count in /c.yml: parse error"
    );
    assert_eq!(with("initial-cluster-state: old\n"), "unexpected clusterState \"old\"");
    assert_eq!(with("name: [a, b]\n"), "config file /c.yml: name: expected a single value");
    assert!(with("name: : :\n").starts_with("config file /c.yml: "));
    let missing = load(&args(&["--config-file", "/nope.yml"]), &[], no_file).unwrap_err().to_string();
    assert_eq!(missing, "cannot read config file /nope.yml: no such file");
}

#[test]
fn help_lists_etcds_flags_with_defaults() {
    let ConfigError::Help(text) = load(&args(&["--help"]), &[], no_file).unwrap_err() else {
        panic!("--help is help");
    };
    for s in SETTINGS {
        assert!(text.contains(&format!("--{}", s.name)), "{} missing from help", s.name);
    }
    assert!(text.contains("[default: http://localhost:2379]"));
    assert!(text.contains("--config-file"));
}

#[test]
fn force_new_cluster_is_a_go_boolean_flag() {
    assert!(!ok(&[]).config.force_new_cluster);
    assert!(ok(&["--force-new-cluster"]).config.force_new_cluster);
    assert!(ok(&[]).config.strict_reconfig_check);
    assert!(!ok(&["--strict-reconfig-check=false"]).config.strict_reconfig_check);
    assert!(ok(&["-force-new-cluster", "--name", "x"]).config.force_new_cluster);
    assert!(!ok(&["--force-new-cluster=false"]).config.force_new_cluster);
    assert_eq!(
        err(&["--force-new-cluster=maybe"], &[]),
        "invalid value \"maybe\" for flag -force-new-cluster: parse error"
    );
    assert!(err(&[], &[("ETCD_FORCE_NEW_CLUSTER", "yes")]).contains("ETCD_FORCE_NEW_CLUSTER"));
}
