//! Run by bench/decode.sh, not a tool: how many stored Pods of about 4 KB a second the decoder turns
//! into the API's JSON, and into YAML as the console shows them.

use std::time::Instant;

use etcdeck::etcd::k8s::decode::{decode_value, to_yaml, Decoded, Options};
use etcdeck::etcd::k8s::encode::encode_stored;

// The allocator etcdeck's binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Pod as a Deployment makes one, with two containers, probes, env, volumes and managed fields:
/// about 4 KB once stored as protobuf.
fn pod() -> serde_json::Value {
    let container = |name: &str| {
        serde_json::json!({
            "name": name, "image": format!("registry.example.com/shop/{name}:2.14.1"),
            "args": ["--port=8080", "--log-level=info", "--metrics-addr=:9090"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}},
                {"name": "LOG_LEVEL", "value": "info"}
            ],
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}, {"name": "kube-api-access-x2x9k", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
        })
    };
    let status = |name: &str| {
        serde_json::json!({
            "name": name, "state": {"running": {"startedAt": "2026-12-05T08:15:04Z"}}, "lastState": {},
            "ready": true, "restartCount": 0, "image": format!("registry.example.com/shop/{name}:2.14.1"),
            "imageID": format!("registry.example.com/shop/{name}@sha256:9c2d7e4f1a3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"),
            "containerID": "containerd://5f0c9a7e3b1d2c4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d11", "started": true
        })
    };
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-6d9f7c8b5d-x2x9k", "generateName": "web-6d9f7c8b5d-", "namespace": "shop",
            "uid": "0e4a1b2c-0009-4000-8000-000000000001", "creationTimestamp": "2026-12-05T08:15:02Z",
            "labels": {"app": "web", "pod-template-hash": "6d9f7c8b5d", "team": "checkout", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-05T08:15:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{\"prometheus.io/scrape\":\"true\"},\"labels\":{\"app\":\"web\",\"team\":\"checkout\"},\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"containers\":[{\"image\":\"registry.example.com/shop/web:2.14.1\",\"name\":\"web\",\"ports\":[{\"containerPort\":8080,\"name\":\"http\"}],\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"512Mi\"},\"requests\":{\"cpu\":\"250m\",\"memory\":\"256Mi\"}}}]}}\n"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d9f7c8b5d", "uid": "0e4a1b2c-0008-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-12-05T08:15:02Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}, "f:ownerReferences": {".": {}, "k:{\"uid\":\"0e4a1b2c-0008-4000-8000-000000000001\"}": {}}}}}]
        },
        "spec": {
            "volumes": [{"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                        {"name": "kube-api-access-x2x9k", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}], "defaultMode": 420}}],
            "initContainers": [container("migrate")],
            "containers": [container("web"), container("sidecar")],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "node-1",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-12-05T08:15:16Z"},
                           {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-12-05T08:15:02Z"}],
            "hostIP": "10.0.0.11", "podIP": "10.244.0.11", "podIPs": [{"ip": "10.244.0.11"}], "startTime": "2026-12-05T08:15:02Z",
            "initContainerStatuses": [status("migrate")],
            "containerStatuses": [status("web"), status("sidecar")], "qosClass": "Burstable"
        }
    })
}

fn main() {
    let stored = match encode_stored(&pod()) {
        Ok(stored) => stored,
        Err(e) => {
            eprintln!("cannot encode the Pod: {e}");
            std::process::exit(2);
        }
    };
    let options = Options { reveal_secrets: false, resource_version: Some(42) };
    let rounds = 20_000;
    // Warm up (the schema is read on first use).
    let _ = decode_value(&stored, options);
    let started = Instant::now();
    let mut fields = 0usize;
    for _ in 0..rounds {
        if let Decoded::Object(object) = decode_value(&stored, options) {
            fields += object.as_object().map_or(0, |o| o.len());
        }
    }
    let decode = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut lines = 0usize;
    for _ in 0..rounds / 4 {
        if let Decoded::Object(object) = decode_value(&stored, options) {
            lines += to_yaml(&object).lines().count();
        }
    }
    let yaml = started.elapsed().as_secs_f64();
    println!(
        "decode: a {}-byte stored Pod, {rounds} times: {:.0} objects/s ({:.1} µs each, {:.0} MB/s of protobuf){}",
        stored.len(),
        rounds as f64 / decode,
        decode * 1e6 / rounds as f64,
        stored.len() as f64 * rounds as f64 / decode / 1e6,
        if fields == 0 { " (no object!)" } else { "" }
    );
    println!(
        "decode and YAML: {:.0} objects/s ({:.1} µs each, {} lines)",
        (rounds / 4) as f64 / yaml,
        yaml * 1e6 / (rounds / 4) as f64,
        lines / (rounds / 4).max(1)
    );
}
