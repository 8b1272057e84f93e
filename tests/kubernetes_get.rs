//! `etcdeck get` and `etcdeck decode` against a real etcd 3.4 holding values as kube-apiserver
//! writes them: protobuf objects, a Secret, a custom resource in JSON, an encrypted value, a value
//! that is not Kubernetes data, and a truncated object.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use etcdeck::etcd::k8s::encode::encode_stored;

use crate::support::{etcd_tools, etcdeck, EtcdCluster};

/// A Pod as `kubectl get pod web-0 -o json` prints one a Deployment made (fields and formats from
/// Kubernetes' published types: Quantity and IntOrString, times, FieldsV1, owner references).
fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-7c5ddbdf54-x2x9k",
            "generateName": "web-7c5ddbdf54-",
            "namespace": "default",
            "uid": "6f8e7c2a-1f0e-4c1b-9a55-2b3c4d5e6f70",
            "creationTimestamp": "2025-12-01T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7c5ddbdf54"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c5ddbdf54",
                "uid": "0a1b2c3d-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true
            }],
            "managedFields": [{
                "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                "time": "2025-12-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}}}
            }]
        },
        "spec": {
            "volumes": [{"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}}],
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/conf.d", "readOnly": true}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": "node-1",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2025-12-01T10:00:05Z"}],
            "hostIP": "10.0.0.11",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "startTime": "2025-12-01T10:00:00Z",
            "containerStatuses": [{
                "name": "nginx",
                "state": {"running": {"startedAt": "2025-12-01T10:00:03Z"}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:0123",
                "containerID": "containerd://abcdef",
                "started": true
            }],
            "qosClass": "Burstable"
        }
    })
}

fn secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default", "uid": "5e6f", "creationTimestamp": "2025-12-01T10:00:00Z"},
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque"
    })
}

/// A custom resource: the apiserver stores those as JSON.
fn widget() -> Value {
    json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "uid": "77", "creationTimestamp": "2025-12-01T10:00:00Z"},
        "spec": {"size": 3, "tags": ["a", "b"]}
    })
}

fn get(cluster: &EtcdCluster, args: &[&str]) -> Output {
    let mut cmd = etcdeck();
    cmd.arg("--endpoints").arg(cluster.client_urls().join(",")).arg("get").args(args);
    cmd.output().expect("run etcdeck get")
}

fn decode(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = etcdeck()
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdeck decode");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("etcdeck decode ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `expected` with the resourceVersion the apiserver would report (the mod revision), in place.
fn with_rv(mut expected: Value, rv: i64) -> Value {
    expected["metadata"]["resourceVersion"] = json!(rv.to_string());
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_decode_print_what_kube_apiserver_stored_as_kubectl_prints_it() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(30));
    let client = etcd_client::Client::connect(cluster.client_urls(), None).await.expect("connect");
    let pod_value = encode_stored(&pod()).expect("encode the Pod");
    let put = |key: &'static str, value: Vec<u8>| {
        let mut client = client.clone();
        async move { client.put(key, value, None).await.expect("put").header().expect("header").revision() }
    };
    let pod_rev = put("/registry/pods/default/web-7c5ddbdf54-x2x9k", pod_value.clone()).await;
    let secret_rev = put("/registry/secrets/default/db", encode_stored(&secret()).expect("encode")).await;
    let widget_rev = put("/registry/example.com/widgets/default/w1", widget().to_string().into_bytes()).await;
    let mut encrypted = b"k8s:enc:aescbc:v1:key1:".to_vec();
    encrypted.extend((0..48u8).map(|b| b.wrapping_mul(37)));
    put("/registry/secrets/default/sealed", encrypted.clone()).await;
    put("/registry/ranges/serviceips", b"not an object".to_vec()).await;

    // One key: the object, with the resourceVersion the apiserver would report.
    let out = get(&cluster, &["/registry/pods/default/web-7c5ddbdf54-x2x9k", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("-o json is JSON");
    assert_eq!(printed, with_rv(pod(), pod_rev));
    assert!(text(&out.stdout)
        .starts_with("{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n    \"metadata\""));
    // YAML holds the same data.
    let out = get(&cluster, &["/registry/pods/default/web-7c5ddbdf54-x2x9k"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml: Value = serde_yaml_ng::from_slice(&out.stdout).expect("-o yaml is YAML");
    assert_eq!(yaml, with_rv(pod(), pod_rev));

    // A Secret's data is masked unless asked for.
    let out = get(&cluster, &["/registry/secrets/default/db", "-o", "json"]);
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed["data"]["password"], "<hidden: 7 bytes>");
    let out = get(&cluster, &["/registry/secrets/default/db", "-o", "json", "--reveal-secrets"]);
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed, with_rv(secret(), secret_rev));

    // A prefix over mixed values: the objects as a List, the rest named on stderr.
    let out = get(&cluster, &["/registry/", "--prefix", "-o", "json"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let list: Value = serde_json::from_slice(&out.stdout).expect("a List is JSON");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    let names: Vec<_> = items.iter().map(|i| i["metadata"]["name"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, ["w1", "web-7c5ddbdf54-x2x9k", "db"]);
    assert_eq!(items[0], with_rv(widget(), widget_rev), "a custom resource prints as stored");
    assert_eq!(items[2]["data"]["password"], "<hidden: 7 bytes>");
    assert!(
        stderr.contains(
            "/registry/secrets/default/sealed: encrypted at rest by aescbc (v1) with key \"key1\", 48 bytes"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("/registry/ranges/serviceips is not Kubernetes data"), "{stderr}");

    // A value that is not Kubernetes data prints as it is.
    let out = get(&cluster, &["/registry/ranges/serviceips"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"not an object");

    // An object cut short: a clear error naming the key and where, and the others still print.
    put("/registry/pods/default/cut", pod_value[..pod_value.len() - 40].to_vec()).await;
    let out = get(&cluster, &["/registry/pods/", "--prefix", "-o", "json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Error: /registry/pods/default/cut: "), "{stderr}");
    assert!(stderr.contains("cut short or damaged"), "{stderr}");
    let list: Value = serde_json::from_slice(&out.stdout).expect("the rest still print");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    // --rev reads the object as it was.
    let mut newer = pod();
    newer["metadata"]["labels"]["app"] = json!("web-v2");
    put("/registry/pods/default/web-7c5ddbdf54-x2x9k", encode_stored(&newer).expect("encode")).await;
    let out = get(
        &cluster,
        &["/registry/pods/default/web-7c5ddbdf54-x2x9k", "-o", "json", "--rev", &pod_rev.to_string()],
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed["metadata"]["labels"]["app"], "web");

    // A missing key is an error.
    let out = get(&cluster, &["/registry/pods/default/none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/registry/pods/default/none: no such key"));

    // decode: the same values from stdin, as etcdctl get --print-value-only writes them.
    let out = decode(&["-o", "json"], &pod_value);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).expect("JSON"), pod());
    let out = decode(&[], &encrypted);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("encrypted at rest by aescbc (v1) with key \"key1\""),
        "{}",
        text(&out.stderr)
    );
    let out = decode(&["-"], b"plain text");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"plain text");
    assert!(text(&out.stderr).contains("stdin is not Kubernetes data; printed as it is"));
    let out = decode(&[], &pod_value[..pod_value.len() / 2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("Error: stdin: "), "{}", text(&out.stderr));
    let out = etcdeck().args(["decode", "/nonexistent/value"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/value: No such file or directory"));
}
