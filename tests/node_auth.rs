//! Auth, as etcd's tests/common/auth_test.go exercises it: one etcdctl 3.4 session run against real
//! etcd and against `etcdeck node` must print the same — users and roles, enabling auth, root and
//! limited users, key / range / prefix / from-key grants applied to get, put, del, txn, watch and
//! leases, revoked roles and permissions taking effect at once, password changes, disabling auth.
//! Then what etcdctl cannot show: token expiry through a client that keeps its token, nested
//! transactions, the checks this node adds beyond etcd 3.4 (as later etcd releases have them),
//! and a scan of the data dir and the log for the passwords used.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp};

use crate::support::pki::{arg, Pki, Use};
use crate::support::{
    etcd_tools, etcdctl_command as etcdctl, free_port, record_step, run_etcdctl, transcript_step, words,
    EtcdCluster, EtcdeckNode, ServerTls,
};

const ROOT: &str = "--user=root:rootpw";
const U: &str = "--user=u:upw";

/// (credentials flag or "", etcdctl arguments, stdin). `{lease}` is the last lease granted.
fn session() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    vec![
        ("", "auth enable", None),
        ("", "user add root --new-user-password=rootpw", None),
        // (etcdctl's auth enable would add the root role and grant it itself.)
        ("", "user grant-role root root", None),
        ("", "user add u --new-user-password=upw", None),
        ("", "user add u --new-user-password=other", None),
        ("", "user add np --no-password", None),
        ("", "role add r", None),
        ("", "role add r", None),
        ("", "role add \"\"", None),
        ("", "user grant-role u missing", None),
        ("", "user grant-role nobody r", None),
        ("", "role grant-permission r read k", None),
        ("", "role grant-permission r readwrite --prefix p/", None),
        ("", "role grant-permission r write a c", None),
        ("", "role grant-permission r read --from-key x", None),
        ("", "role get r", None),
        ("", "role revoke-permission r nothing", None),
        ("", "user grant-role u r", None),
        ("", "user get u", None),
        ("", "user get nobody", None),
        ("", "user list", None),
        ("", "role list", None),
        ("", "auth enable", None),
        ("", "get k", None),
        ("", "put k v", None),
        ("--user=root:wrong", "get k", None),
        ("--user=nobody:pw", "get k", None),
        ("--user=np:", "get k", None),
        (ROOT, "put k v", None),
        (ROOT, "put p/1 v1", None),
        (ROOT, "put b v", None),
        (ROOT, "put x1 v", None),
        (ROOT, "put z v", None),
        (ROOT, "put secret s", None),
        (U, "get k", None),
        (U, "put k v2", None),
        (U, "get p/ --prefix", None),
        (U, "put p/2 v2", None),
        (U, "del p/2", None),
        (U, "get a c", None),
        (U, "put b v2", None),
        (U, "del a c --prev-kv", None),
        (U, "del a c", None),
        (U, "get --from-key x", None),
        (U, "get --from-key w", None),
        (U, "get z", None),
        (U, "get \"\" --prefix", None),
        (U, "get secret", None),
        (U, "put p/3 v --prev-kv", None),
        (U, "txn", Some("value(\"k\") = \"v\"\n\nput p/4 yes\n\nput p/4 no\n\n")),
        (U, "txn", Some("value(\"k\") = \"v\"\n\nput p/5 yes\n\nput k no\n\n")),
        (U, "txn", Some("value(\"secret\") = \"s\"\n\nput p/6 yes\n\n\n")),
        (U, "txn", Some("\nget secret\n\n\n")),
        (U, "watch k --rev 1", Some("watch:1")),
        (U, "watch --prefix p/ --rev 1", Some("watch:4")),
        (U, "watch secret", Some("watch:1")),
        (U, "lease grant 100", None),
        (U, "put p/l v --lease={lease}", None),
        (U, "lease timetolive {lease} --keys", None),
        // A key the user may not write, attached to the lease: the user may not revoke it.
        (ROOT, "put q v --lease={lease}", None),
        (U, "lease revoke {lease}", None),
        (ROOT, "lease revoke {lease}", None),
        (U, "lease grant 100", None),
        (ROOT, "put a1 v --lease={lease}", None),
        (U, "lease revoke {lease}", None),
        (ROOT, "get q", None),
        (U, "user get u", None),
        (U, "user get root", None),
        (U, "role get r", None),
        (U, "user list", None),
        (U, "role list", None),
        (U, "user add v --new-user-password=v", None),
        (U, "auth disable", None),
        (ROOT, "user revoke-role u r", None),
        (U, "get k", None),
        (ROOT, "user revoke-role u r", None),
        (ROOT, "user grant-role u r", None),
        (U, "get k", None),
        (ROOT, "role revoke-permission r k", None),
        (U, "get k", None),
        (ROOT, "user delete root", None),
        (ROOT, "user revoke-role root root", None),
        (ROOT, "role delete root", None),
        (ROOT, "user passwd u --interactive=false", Some("newpw\n")),
        (U, "get p/1", None),
        ("--user=u:newpw", "get p/1", None),
        (ROOT, "role delete r", None),
        ("--user=u:newpw", "get p/1", None),
        (ROOT, "user delete np", None),
        (ROOT, "user list", None),
        (ROOT, "auth disable", None),
        ("", "get k", None),
        ("", "put k after", None),
        ("", "auth disable", None),
        ("", "user list", None),
    ]
}

fn transcript(tool: &Path, endpoint: &str) -> String {
    let mut out = String::new();
    let mut lease = String::new();
    for (user, text, input) in session() {
        let args: Vec<String> = words(text).into_iter().map(|w| w.replace("{lease}", &lease)).collect();
        let mut cmd = etcdctl(tool, endpoint);
        if !user.is_empty() {
            cmd.arg(user);
        }
        cmd.args(&args);
        let watch = input.and_then(|i| i.strip_prefix("watch:")).and_then(|n| n.parse::<usize>().ok());
        let feed = input.filter(|_| watch.is_none());
        let answer = transcript_step(cmd, feed, watch.map(|lines| (lines, Duration::from_secs(3))));
        let shown = if user.is_empty() { String::new() } else { format!("{user} ") };
        record_step(&mut out, &mut lease, &format!("{shown}{text}"), answer);
    }
    let host = endpoint.trim_start_matches("http://");
    let out = out.replace(host, "<endpoint>");
    regex::Regex::new(r"remaining\(\d+s\)")
        .expect("pattern")
        .replace_all(&out, "remaining(<n>s)")
        .into_owned()
}

fn compare(expected: &str, got: &str, log: &str) {
    if expected == got {
        return;
    }
    let diff: Vec<String> = expected
        .lines()
        .zip(got.lines())
        .filter(|(a, b)| a != b)
        .take(20)
        .map(|(a, b)| format!("etcd:    {a}\netcdeck: {b}"))
        .collect();
    panic!("transcripts differ:\n{}\n\n--- etcd ---\n{expected}\n--- etcdeck ---\n{got}\n--- node log ---\n{log}", diff.join("\n"));
}

#[test]
fn an_auth_session_prints_the_same_against_etcd_and_etcdeck_and_leaves_no_password_behind() {
    let Some(tools) = etcd_tools() else { return };
    let etcd = EtcdCluster::start(&tools, 1);
    etcd.wait_healthy(Duration::from_secs(20));
    let expected = transcript(&tools.etcdctl, &etcd.members[0].client_url);
    drop(etcd);

    // A low bcrypt cost keeps the debug build's hashing quick; the cost is checked below.
    let node = EtcdeckNode::start("auth", &["--bcrypt-cost=6"]);
    let got = transcript(&tools.etcdctl, &node.client_url);
    compare(&expected, &got, &node.log_text());
    if std::env::var_os("ETCDECK_SHOW_TRANSCRIPT").is_some() {
        eprintln!("{got}");
    }

    // No password used in the session is anywhere in the data dir (raft log and store) or the log.
    let mut files = vec![node.data_dir.with_extension("log")];
    let mut dirs = vec![node.data_dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut hashes = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for password in ["rootpw", "upw", "newpw", "wrong"] {
            assert!(
                !bytes.windows(password.len()).any(|w| w == password.as_bytes()),
                "{} holds the password {password:?}",
                file.display()
            );
        }
        hashes += bytes.windows(4).filter(|w| *w == b"$2b$").count();
    }
    assert!(files.len() > 3, "the scan found the node's files: {files:?}");
    assert!(hashes > 0, "the bcrypt hashes are stored");
}

/// Sets up root, a user `u` whose role reads and writes `p/`, and enables auth.
pub(crate) async fn setup(endpoint: &str) {
    let client = Client::connect([endpoint], None).await.expect("connect");
    let mut auth = client.auth_client();
    auth.user_add("root", "rootpw", None).await.expect("add root");
    auth.user_grant_role("root", "root").await.expect("grant root");
    auth.user_add("u", "upw", None).await.expect("add u");
    auth.role_add("r").await.expect("add role");
    let perm = etcd_client::Permission::read_write("p/").with_prefix();
    auth.role_grant_permission("r", perm).await.expect("grant");
    auth.user_grant_role("u", "r").await.expect("grant r");
    auth.auth_enable().await.expect("enable");
}

/// What a client holding a token sees: requests until the token's TTL passes unused, then etcd's
/// "invalid auth token"; and nested transactions checked all the way down.
async fn token_and_txn(endpoint: &str) -> Vec<String> {
    let options = || Some(ConnectOptions::new().with_user("u", "upw"));
    let mut out = Vec::new();
    let mut client = Client::connect([endpoint], options()).await.expect("connect as u");
    let show = |r: Result<String, etcd_client::Error>| match r {
        Ok(s) => s,
        Err(etcd_client::Error::GRpcStatus(s)) => format!("{:?}: {}", s.code(), s.message()),
        Err(e) => e.to_string(),
    };
    out.push(show(client.put("p/a", "1", None).await.map(|_| "put ok".into())));
    let nested = |inner_key: &str| {
        let inner = Txn::new().and_then([TxnOp::put(inner_key, "n", None)]);
        Txn::new().when([Compare::version("p/a", CompareOp::Greater, 0)]).and_then([TxnOp::txn(inner)])
    };
    out.push(show(client.txn(nested("p/b")).await.map(|r| format!("nested txn ok: {}", r.succeeded()))));
    out.push(show(client.txn(nested("q/b")).await.map(|_| "nested txn outside p/ allowed".into())));
    // etcd sweeps expired tokens once a second: past the TTL plus a sweep.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    out.push(show(client.get("p/a", None).await.map(|_| "get ok after the TTL".into())));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_after_their_ttl_and_nested_transactions_are_checked_as_in_etcd() {
    let Some(tools) = etcd_tools() else { return };
    let etcd = EtcdCluster::start_full(&tools, 1, None, &["--auth-token-ttl=2"]);
    etcd.wait_healthy(Duration::from_secs(20));
    let endpoint = etcd.members[0].client_url.clone();
    setup(&endpoint).await;
    let expected = token_and_txn(&endpoint).await;
    drop(etcd);

    let node = EtcdeckNode::start("tokens", &["--auth-token-ttl=2", "--bcrypt-cost=4"]);
    setup(&node.client_url).await;
    let got = token_and_txn(&node.client_url).await;
    // etcd 3.4.23 does not look inside a nested transaction (later releases do): this node does.
    assert_eq!(expected[..2], got[..2], "node log:\n{}", node.log_text());
    assert_eq!(expected[3], got[3]);
    assert_eq!(got[3], "Unauthenticated: etcdserver: invalid auth token");
    assert_eq!(got[2], "PermissionDenied: etcdserver: permission denied");
}

/// What this node checks beyond etcd 3.4.23, as later etcd releases (3.4.26+, 3.5.9+) do or go
/// further: a lease's key names, the member list, alarms, compaction, maintenance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_key_names_members_alarms_and_maintenance_are_guarded() {
    let node = EtcdeckNode::start("guarded", &["--bcrypt-cost=4"]);
    setup(&node.client_url).await;
    let root =
        Client::connect([node.client_url.as_str()], Some(ConnectOptions::new().with_user("root", "rootpw")))
            .await
            .expect("root");
    let mut u =
        Client::connect([node.client_url.as_str()], Some(ConnectOptions::new().with_user("u", "upw")))
            .await
            .expect("u");
    let mut anon = Client::connect([node.client_url.as_str()], None).await.expect("anonymous");
    let mut root = root;
    let lease = root.lease_grant(100, None).await.expect("grant").id();
    root.put("secret", "s", Some(etcd_client::PutOptions::new().with_lease(lease))).await.expect("put");
    let code = |r: Result<(), etcd_client::Error>| match r {
        Ok(()) => "ok".to_string(),
        Err(etcd_client::Error::GRpcStatus(s)) => format!("{:?}: {}", s.code(), s.message()),
        Err(e) => e.to_string(),
    };
    let ttl = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.lease_time_to_live(lease, Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()))
                .await
                .map(|_| ())
        }
    };
    assert_eq!(code(ttl(&mut u).await), "PermissionDenied: etcdserver: permission denied");
    assert_eq!(code(ttl(&mut anon).await), "InvalidArgument: etcdserver: user name is empty");
    assert_eq!(code(ttl(&mut root).await), "ok");
    assert_eq!(code(u.member_list().await.map(|_| ())), "ok");
    assert_eq!(code(anon.member_list().await.map(|_| ())), "InvalidArgument: etcdserver: user name is empty");
    let alarms = etcd_client::AlarmOptions::new();
    let list = |c: &mut Client| {
        let mut c = c.clone();
        let alarms = alarms.clone();
        async move {
            c.alarm(etcd_client::AlarmAction::Get, etcd_client::AlarmType::None, Some(alarms))
                .await
                .map(|_| ())
        }
    };
    assert_eq!(code(list(&mut u).await), "ok");
    assert_eq!(code(list(&mut anon).await), "InvalidArgument: etcdserver: user name is empty");
    let disarm = u.alarm(etcd_client::AlarmAction::Deactivate, etcd_client::AlarmType::Nospace, None).await;
    assert_eq!(code(disarm.map(|_| ())), "PermissionDenied: etcdserver: permission denied");
    assert_eq!(
        code(anon.compact(1, None).await.map(|_| ())),
        "InvalidArgument: etcdserver: user name is empty"
    );
    let without_keys = u.lease_time_to_live(lease, None).await.map(|_| ());
    assert_eq!(code(without_keys), "ok", "without the keys, the TTL is anyone's (etcd 3.5)");
    assert_eq!(code(u.defragment().await.map(|_| ())), "PermissionDenied: etcdserver: permission denied");
    assert_eq!(code(u.hash_kv(0).await.map(|_| ())), "PermissionDenied: etcdserver: permission denied");
    assert_eq!(code(root.hash_kv(0).await.map(|_| ())), "ok");
    let add = u.member_add(["http://127.0.0.1:1"], None).await;
    assert_eq!(code(add.map(|_| ())), "PermissionDenied: etcdserver: permission denied");
    // Status stays open, as in every etcd release.
    assert_eq!(code(anon.status().await.map(|_| ())), "ok");
    // AuthStatus (etcd 3.5's; etcd-client has no call for it): the root role's, as in etcd.
    let token = root.auth_client().authenticate("root".into(), "rootpw".into()).await.expect("token");
    let status = |token: Option<String>| {
        let url = node.client_url.clone();
        async move {
            let channel =
                tonic::transport::Channel::from_shared(url).expect("url").connect().await.expect("dial");
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let mut req = tonic::Request::new(etcdeck::node::rpc::auth::Empty {});
            if let Some(t) = token {
                req.metadata_mut().insert("token", t.parse().expect("token metadata"));
            }
            let path = tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.Auth/AuthStatus");
            let codec = tonic_prost::ProstCodec::<
                etcdeck::node::rpc::auth::Empty,
                etcdeck::node::rpc::auth::AuthStatusResponse,
            >::default();
            grpc.unary(req, path, codec).await.map(|r| r.into_inner())
        }
    };
    let got = status(Some(token.token().to_string())).await.expect("auth status as root");
    assert!(got.enabled);
    assert!(got.auth_revision >= 6, "six changes were made: {}", got.auth_revision);
    let refused = status(None).await.expect_err("anonymous");
    assert_eq!(refused.message(), "etcdserver: user name is empty");
}

/// Under --client-cert-auth, a request without a token is its certificate's CN (etcd's
/// AuthInfoFromTLS); a token still wins. The same steps against etcd and the node.
#[test]
fn a_client_certificates_cn_is_the_user_when_no_token_is_given() {
    let Some(tools) = etcd_tools() else { return };
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let (crt, key) = pki.leaf(&ca, "server", "etcd-server", &["127.0.0.1", "localhost"], Use::Both, (-1, 2));
    let cert = |cn: &str| pki.leaf(&ca, cn, cn, &[], Use::Client, (-1, 2));
    let certs = [("root", cert("root")), ("u", cert("u")), ("nobody", cert("nobody"))];
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("root", vec!["user", "add", "root", "--new-user-password=rootpw"]),
        ("root", vec!["user", "grant-role", "root", "root"]),
        ("root", vec!["user", "add", "u", "--new-user-password=upw"]),
        ("root", vec!["role", "add", "r"]),
        ("root", vec!["role", "grant-permission", "r", "readwrite", "--prefix", "p/"]),
        ("root", vec!["user", "grant-role", "u", "r"]),
        ("root", vec!["auth", "enable"]),
        ("u", vec!["put", "p/1", "v"]),
        ("u", vec!["put", "q", "v"]),
        ("u", vec!["--user=root:rootpw", "put", "q", "v"]),
        ("nobody", vec!["get", "p/1"]),
        ("root", vec!["get", "q", "--print-value-only"]),
        ("root", vec!["user", "list"]),
        ("u", vec!["user", "list"]),
    ];
    let run = |url: &str| -> String {
        let mut out = String::new();
        for (who, args) in &steps {
            let (c, k) = &certs.iter().find(|(n, _)| n == who).expect("cert").1;
            let flags = [arg("cacert", &ca.cert), arg("cert", c), arg("key", k)];
            let all: Vec<&str> = flags.iter().map(String::as_str).chain(args.iter().copied()).collect();
            let (ok, stdout, stderr) = run_etcdctl(&tools.etcdctl, &[url.to_string()], &all);
            let stderr: String =
                stderr.lines().filter(|l| !l.starts_with('{')).map(|l| format!("{l}\n")).collect();
            out.push_str(&format!("$ [{who}] {}\n{stdout}{stderr}ok: {ok}\n", args.join(" ")));
        }
        out
    };
    let wait = |url: &str, log: &dyn Fn() -> String| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (c, k) = &certs[0].1;
        let flags = [arg("cacert", &ca.cert), arg("cert", c), arg("key", k)];
        loop {
            let all: Vec<&str> = flags.iter().map(String::as_str).chain(["endpoint", "health"]).collect();
            let (ok, _, _) = run_etcdctl(&tools.etcdctl, &[url.to_string()], &all);
            if ok {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{url} never healthy:\n{}", log());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let server = ServerTls { cert: crt.clone(), key: key.clone(), ca: ca.cert.clone() };
    let etcd = EtcdCluster::start_with(&tools, 1, Some(&server));
    let url = etcd.members[0].client_url.clone();
    wait(&url, &|| etcd.log_tail(0));
    let expected = run(&url);
    drop(etcd);

    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("https://127.0.0.1:{}", free_port());
    let flags = [
        arg("cert-file", &crt),
        arg("key-file", &key),
        arg("trusted-ca-file", &ca.cert),
        "--client-cert-auth".to_string(),
        "--bcrypt-cost=4".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = EtcdeckNode::spawn_at("cn", &dir.path().join("cn"), &client, &flags);
    wait(&client, &|| node.log_text());
    let got = run(&client);
    let (expected, got) = (expected.replace(&url, "<url>"), got.replace(&client, "<url>"));
    compare(&expected, &got, &node.log_text());
    assert!(got.contains("$ [u] put q v\nError: etcdserver: permission denied"), "{got}");
}

/// A Range on `url` with `token` in the metadata, as any etcd client sends it.
pub(crate) async fn range_with_token(url: &str, token: &str, key: &str) -> Result<usize, tonic::Status> {
    use etcd_client::proto::{PbRangeRequest, PbRangeResponse};
    let channel =
        tonic::transport::Channel::from_shared(url.to_string()).expect("url").connect().await.expect("dial");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut req = tonic::Request::new(PbRangeRequest { key: key.as_bytes().to_vec(), ..Default::default() });
    req.metadata_mut().insert("token", token.parse().expect("token metadata"));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Range");
    let codec = tonic_prost::ProstCodec::<PbRangeRequest, PbRangeResponse>::default();
    grpc.unary(req, path, codec).await.map(|r| r.into_inner().kvs.len())
}

/// The claims of a JWT, as JSON.
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// --auth-token jwt with the same ES256 key pair on etcd and on the node: the tokens carry the same
/// claims, expire after the JWT ttl, and a token etcd signed is accepted by the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_match_etcds_and_a_token_etcd_signed_works_on_the_node() {
    let Some(tools) = etcd_tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let (private, public) = (dir.path().join("jwt.key"), dir.path().join("jwt.pub"));
    std::fs::write(&private, key.serialize_pem()).expect("write");
    std::fs::write(&public, key.public_key_pem()).expect("write");
    let flag = format!(
        "--auth-token=jwt,pub-key={},priv-key={},sign-method=ES256,ttl=2s",
        public.display(),
        private.display()
    );
    let run = |url: String| async move {
        setup(&url).await;
        let client = Client::connect([url.as_str()], None).await.expect("connect");
        let token = client.auth_client().authenticate("u".into(), "upw".into()).await.expect("token");
        let token = token.token().to_string();
        let before = range_with_token(&url, &token, "p/a").await.map_err(|s| s.message().to_string());
        let other = range_with_token(&url, &token, "q").await.map_err(|s| s.message().to_string());
        (token, before, other)
    };
    let etcd = EtcdCluster::start_full(&tools, 1, None, &[flag.as_str()]);
    etcd.wait_healthy(Duration::from_secs(20));
    let etcd_url = etcd.members[0].client_url.clone();
    let (etcd_token, etcd_before, etcd_other) = run(etcd_url.clone()).await;

    let node = EtcdeckNode::start("jwt", &[flag.as_str(), "--bcrypt-cost=4"]);
    let (node_token, node_before, node_other) = run(node.client_url.clone()).await;
    assert_eq!((&etcd_before, &etcd_other), (&node_before, &node_other), "node log:\n{}", node.log_text());
    assert_eq!(node_other, Err("etcdserver: permission denied".to_string()));
    let (a, b) = (claims(&etcd_token), claims(&node_token));
    let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&a), keys(&b), "the same claims: {a} {b}");
    assert_eq!((&a["username"], &a["revision"]), (&b["username"], &b["revision"]));
    // etcd's token, checked by the node with the same key.
    assert_eq!(
        range_with_token(&node.client_url, &etcd_token, "p/a").await.map_err(|s| s.message().to_string()),
        node_before
    );
    // Past the ttl: invalid on both.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let expired = |url: String, token: String| async move {
        range_with_token(&url, &token, "p/a").await.map_err(|s| (s.code(), s.message().to_string()))
    };
    let on_etcd = expired(etcd_url.clone(), etcd_token.clone()).await;
    let on_node = expired(node.client_url.clone(), node_token.clone()).await;
    assert_eq!(on_etcd, on_node);
    assert_eq!(on_node, Err((tonic::Code::Unauthenticated, "etcdserver: invalid auth token".to_string())));
    drop(etcd);
}
