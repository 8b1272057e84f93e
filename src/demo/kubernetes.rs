//! The Kubernetes control plane `etcdeck demo --kubernetes` writes into its cluster, from
//! assets/kubernetes/demo.yaml: objects as kube-apiserver stores them (protobuf, custom resources
//! as JSON, one Secret encrypted at rest) under the keys it stores them at.

use serde_json::Value;

use crate::etcd::k8s::encode::encode_stored;
use crate::etcd::k8s::schema::Schema;

const OBJECTS: &str = include_str!("../../assets/kubernetes/demo.yaml");

/// The name suffixes of the ReplicaSet's Pods (its EndpointSlice lists them by these names).
const REPLICAS: [&str; 3] = ["4kq7z", "9xw2m", "tz5rb"];

/// Every key and value the demo writes, in order.
pub fn objects() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for doc in OBJECTS.split("\n---\n") {
        if doc.contains("@NAME") {
            for (i, name) in REPLICAS.iter().enumerate() {
                out.push(entry(&doc.replace("@NAME", name).replace("@N", &(i + 1).to_string()))?);
            }
        } else {
            out.push(entry(doc)?);
        }
    }
    // A Secret encrypted at rest (aescbc with the key named key1), as an apiserver with an
    // EncryptionConfiguration writes it: the console names it, it cannot decrypt it.
    let mut sealed = b"k8s:enc:aescbc:v1:key1:".to_vec();
    sealed.extend((0u32..96).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    out.push(("/registry/secrets/shop/payment-api-key".into(), sealed));
    Ok(out)
}

/// One object's key and stored value.
fn entry(text: &str) -> Result<(String, Vec<u8>), String> {
    let object: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("demo.yaml: {e}"))?;
    let field = |path: &[&str]| {
        path.iter().try_fold(&object, |v, p| v.get(p)).and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    let (api_version, kind) = (field(&["apiVersion"]), field(&["kind"]));
    let (namespace, name) = (field(&["metadata", "namespace"]), field(&["metadata", "name"]));
    let resource = match kind.as_str() {
        "Namespace" => "namespaces",
        "Node" => "minions",
        "Service" => "services/specs",
        "ServiceAccount" => "serviceaccounts",
        "ConfigMap" => "configmaps",
        "Secret" => "secrets",
        "Pod" => "pods",
        "Deployment" => "deployments",
        "ReplicaSet" => "replicasets",
        "EndpointSlice" => "endpointslices",
        "Lease" => "leases",
        "Event" => "events",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "PriorityClass" => "priorityclasses",
        "CustomResourceDefinition" => "apiextensions.k8s.io/customresourcedefinitions",
        "Widget" => "example.com/widgets",
        other => return Err(format!("demo.yaml: no /registry/ resource for {other}")),
    };
    let key = match namespace.as_str() {
        "" => format!("/registry/{resource}/{name}"),
        ns => format!("/registry/{resource}/{ns}/{name}"),
    };
    // Built-in kinds are stored as protobuf; custom resources as the JSON they were sent as.
    let value = if Schema::get().kind(&api_version, &kind).is_some() {
        encode_stored(&object).map_err(|e| format!("demo.yaml: {kind} {name}: {e}"))?
    } else {
        object.to_string().into_bytes()
    };
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::k8s::decode::{decode_value, Decoded, Options};

    #[test]
    fn the_demo_control_plane_decodes_back_to_what_demo_yaml_says() {
        let objects = objects().expect("demo.yaml reads");
        assert!(objects.len() >= 25, "{}", objects.len());
        let options = Options { reveal_secrets: true, resource_version: None };
        let docs: Vec<&str> = OBJECTS.split("\n---\n").collect();
        let mut decoded_pods = 0;
        for (key, value) in &objects {
            match decode_value(value, options) {
                Decoded::Object(object) => {
                    let name = object["metadata"]["name"].as_str().unwrap_or_default();
                    assert!(key.ends_with(&format!("/{name}")), "{key}: {name}");
                    if object["kind"] == "Pod" {
                        decoded_pods += 1;
                        continue;
                    }
                    let source = docs
                        .iter()
                        .map(|d| serde_yaml_ng::from_str::<Value>(d).expect("YAML"))
                        .find(|d| d["kind"] == object["kind"] && d["metadata"]["name"] == name)
                        .expect("its document");
                    assert_eq!(object, source, "{key}");
                }
                Decoded::Encrypted(what) => assert!(what.contains("aescbc"), "{what}"),
                other => panic!("{key}: {other:?}"),
            }
        }
        assert_eq!(decoded_pods, REPLICAS.len());
    }
}
