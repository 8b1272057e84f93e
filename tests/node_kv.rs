//! The node end to end, in process: etcd-client -> tonic services -> raft driver (WAL, fdatasync) ->
//! MVCC store on sled; KV, leases, watch, maintenance and the HTTP endpoints.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use etcdeck::node::config;
use etcdeck::node::server::{self, Running};

pub struct TestNode {
    pub url: String,
    running: Running,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(&[], Duration::from_millis(200)).await
    }

    /// A node with etcd's flags `extra` added and the watch progress interval given.
    pub async fn start_with(extra: &[&str], progress: Duration) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![
            format!("--data-dir={}", dir.path().join("node").display()),
            "--listen-client-urls=http://127.0.0.1:0".to_string(),
            "--listen-peer-urls=http://127.0.0.1:0".to_string(),
            "--advertise-client-urls=http://127.0.0.1:2379".to_string(),
            "--heartbeat-interval=20".to_string(),
            "--election-timeout=200".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let loaded = config::load(&args, &[], |_| Err(std::io::ErrorKind::NotFound.into())).expect("config");
        let timers =
            server::Timers { progress_interval: progress, revision_compaction: Duration::from_millis(300) };
        let running = server::start_with(&loaded.config, timers).await.expect("node starts");
        let url = format!("http://{}", running.client_addrs[0]);
        TestNode { url, running, _dir: dir }
    }

    pub async fn client(&self) -> Client {
        tokio::time::timeout(Duration::from_secs(5), Client::connect([self.url.as_str()], None))
            .await
            .expect("connect in time")
            .expect("connect")
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("no request may hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_client_puts_gets_deletes_and_runs_txns_against_the_node() {
    let node = TestNode::start().await;
    let mut c = node.client().await;

    let put = within(c.put("foo", "bar", None)).await.expect("put");
    let header = put.header().expect("header");
    assert_eq!(
        (header.revision(), header.cluster_id(), header.member_id()),
        (2, 0xcdf818194e3a8c32, 0x8e9e05c52164694d)
    );
    assert!(header.raft_term() >= 1);
    let prev = within(c.put("foo", "baz", Some(PutOptions::new().with_prev_key()))).await.expect("put");
    assert_eq!(prev.prev_key().map(|kv| kv.value()), Some(&b"bar"[..]));

    let got = within(c.get("foo", None)).await.expect("linearizable get");
    let kv = &got.kvs()[0];
    assert_eq!((kv.value(), kv.create_revision(), kv.mod_revision(), kv.version()), (&b"baz"[..], 2, 3, 2));
    let old = within(c.get("foo", Some(GetOptions::new().with_revision(2).with_serializable())))
        .await
        .expect("get");
    assert_eq!(old.kvs()[0].value(), b"bar");
    assert_eq!(
        old.header().map(|h| h.revision()),
        Some(3),
        "the header says the store's revision, as etcd's"
    );

    for k in ["p/1", "p/2", "p/3"] {
        within(c.put(k, "v", None)).await.expect("put");
    }
    let page = within(c.get("p/", Some(GetOptions::new().with_prefix().with_limit(2)))).await.expect("get");
    assert_eq!((page.kvs().len(), page.more(), page.count()), (2, true, 3));

    let txn = Txn::new()
        .when([Compare::mod_revision("foo", CompareOp::Equal, 3)])
        .and_then([TxnOp::put("foo", "cas", None), TxnOp::get("foo", None)])
        .or_else([TxnOp::get("foo", None)]);
    let r = within(c.txn(txn.clone())).await.expect("txn");
    assert!(r.succeeded());
    match &r.op_responses()[1] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"cas", "a txn reads its own write"),
        other => panic!("{other:?}"),
    }
    assert!(!within(c.txn(txn)).await.expect("txn").succeeded(), "the mod revision moved on");

    let del = within(c.delete("p/", Some(DeleteOptions::new().with_prefix().with_prev_key())))
        .await
        .expect("delete");
    assert_eq!((del.deleted(), del.prev_kvs().len()), (3, 3));

    node.stop().await;
}

/// A compaction's records go a step at a time after it is answered; a physical one is answered
/// once they are gone, as etcd answers it: the space in use no longer moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_physical_compaction_answers_once_its_records_are_gone() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let mut last = 0;
    for i in 0..3500 {
        last =
            within(c.put("k", format!("{i:0>200}"), None)).await.expect("put").header().unwrap().revision();
    }
    let before = within(c.status()).await.expect("status").raft_used_db_size();
    within(c.compact(last, Some(etcd_client::CompactionOptions::new().with_physical())))
        .await
        .expect("compact");
    let after = within(c.status()).await.expect("status").raft_used_db_size();
    assert!(after < before / 10, "{before} bytes in use before, {after} after");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(within(c.status()).await.expect("status").raft_used_db_size(), after);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcds_errors_reach_etcd_client_with_etcds_codes_and_texts() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for v in ["1", "2", "3"] {
        within(c.put("k", v, None)).await.expect("put");
    }
    within(c.compact(3, None)).await.expect("compact");
    let status = |e: etcd_client::Error| match e {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("expected a gRPC status, got {other}"),
    };
    let err = within(c.get("k", Some(GetOptions::new().with_revision(2)))).await.expect_err("compacted");
    assert_eq!(
        status(err),
        (tonic::Code::OutOfRange, "etcdserver: mvcc: required revision has been compacted".into())
    );
    let err = within(c.get("k", Some(GetOptions::new().with_revision(99)))).await.expect_err("future");
    assert_eq!(
        status(err),
        (tonic::Code::OutOfRange, "etcdserver: mvcc: required revision is a future revision".into())
    );
    let err = within(c.put("", "v", None)).await.expect_err("empty key");
    assert_eq!(status(err), (tonic::Code::InvalidArgument, "etcdserver: key is not provided".into()));
    let err = within(c.put("k", "v", Some(PutOptions::new().with_lease(42)))).await.expect_err("no lease");
    assert_eq!(status(err), (tonic::Code::NotFound, "etcdserver: requested lease not found".into()));
    let dup = Txn::new().and_then([TxnOp::put("a", "1", None), TxnOp::put("a", "2", None)]);
    let err = within(c.txn(dup)).await.expect_err("duplicate key");
    assert_eq!(
        status(err),
        (tonic::Code::InvalidArgument, "etcdserver: duplicate key given in txn request".into())
    );
    let err = within(c.compact(3, None)).await.expect_err("compacted again");
    assert_eq!(status(err).1, "etcdserver: mvcc: required revision has been compacted");
    node.stop().await;
}
