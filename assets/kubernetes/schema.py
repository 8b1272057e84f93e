#!/usr/bin/env python3
"""Writes assets/kubernetes/schema.txt: what etcdeck's decoder needs to know of Kubernetes' types.

Run it on checkouts of four Kubernetes repositories at one release tag:

    assets/kubernetes/schema.py v0.36.2 DIR > assets/kubernetes/schema.txt

where DIR holds api/, apimachinery/, apiextensions-apiserver/ and kube-aggregator/ (each the tree of
k8s.io/<name> at that tag). It reads two sources and checks them against each other:

- each package's generated.proto: the messages, their fields' numbers and wire types (what the
  apiserver writes to etcd);
- the Go types those messages were generated from: each field's JSON name, whether it is a pointer,
  a slice or a map, and whether its json tag says omitempty or inline (what the API prints, and when
  it leaves a field out).

The output is one line per item:

    G <group/version> <proto package>        an API group version and where its kinds are
    M <message> [K | A | S:<special>]         K: a kind (embeds TypeMeta); A: a Go slice type whose
                                             JSON is its `items` field; S: a type with its own JSON
    F <number> <json name> <type> <shape>     a field (json name - : encoding/json leaves it out): type is a scalar, a message or map:<key>:<value>;
                                             shape is V (value), P (pointer), S (slice), M (map),
                                             then o (omitempty) and i (inline) when the tag says so,
                                             and r when the protobuf field is repeated
"""

import os
import re
import sys

SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "raw",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "raw",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON": "raw",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "schemaorarray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray": "schemaorarray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "schemaorbool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool": "schemaorbool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "schemaorstrings",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray": "schemaorstrings",
}
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"}
SKIP_DIRS = ("testapigroup", "runtime/schema", "meta/v1beta1")


def fail(msg):
    sys.exit("schema.py: " + msg)


def parse_proto(path):
    text = open(path).read()
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    go_package = re.search(r'^option go_package = "([^"]+)";', text, re.M).group(1)
    messages = {}
    for m in re.finditer(r"^message (\w+) \{\n(.*?)^\}", text, re.M | re.S):
        fields = []
        for line in m.group(2).splitlines():
            line = line.split("//")[0].strip()
            if not line:
                continue
            f = re.fullmatch(r"(optional|repeated) ([\w.]+) (\w+) = (\d+);", line) or re.fullmatch(
                r"(map)<(\w+), ?([\w.]+)> (\w+) = (\d+);", line
            )
            if not f:
                fail(f"{path}: message {m.group(1)}: cannot read {line!r}")
            if f.group(1) == "map":
                fields.append(("map", (f.group(2), f.group(3)), f.group(4), int(f.group(5))))
            else:
                fields.append((f.group(1), f.group(2), f.group(3), int(f.group(4))))
        messages[m.group(1)] = fields
    return package, go_package, messages


def parse_go_dir(path):
    """Structs (name → [(go name, go type, tag)]), named types (name → underlying) and imports."""
    structs, named, imports = {}, {}, {}
    for name in sorted(os.listdir(path)):
        if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_generated"):
            continue
        text = open(os.path.join(path, name)).read()
        for block in re.findall(r"^import \((.*?)\)", text, re.M | re.S) + re.findall(r'^import (.*)$', text, re.M):
            for imp in re.finditer(r'^\s*(\w+)?\s*"([^"]+)"', block, re.M):
                imports[imp.group(1) or imp.group(2).rsplit("/", 1)[-1]] = imp.group(2)
        for m in re.finditer(r"^type (\w+) struct ?\{\}", text, re.M):
            structs[m.group(1)] = []
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
            fields = []
            for line in m.group(2).splitlines():
                line = line.strip()
                if not line or line.startswith("//"):
                    continue
                f = re.fullmatch(r"(?:(\w+)\s+)?(\S+)\s+`([^`]*)`(?:\s*//.*)?", line)
                if f:
                    fields.append((f.group(1), f.group(2), f.group(3)))
            structs[m.group(1)] = fields
        for m in re.finditer(r"^type (\w+) ([^\s{]+)\s*$", text, re.M):
            named[m.group(1)] = m.group(2)
    return structs, named, imports


def tag(tags, key):
    m = re.search(key + r':"([^"]*)"', tags)
    return m.group(1) if m else None


def main():
    if len(sys.argv) != 3:
        fail("usage: schema.py TAG DIR")
    release, root = sys.argv[1], sys.argv[2]
    protos = []
    for repo in ("api", "apimachinery", "apiextensions-apiserver", "kube-aggregator"):
        for dirpath, _, files in os.walk(os.path.join(root, repo)):
            if "generated.proto" in files and not any(s in dirpath for s in SKIP_DIRS):
                protos.append(os.path.join(dirpath, "generated.proto"))
    protos.sort()
    # Go import path → (proto package, Go types of that directory).
    packages = {}
    for path in protos:
        package, go_package, messages = parse_proto(path)
        packages[go_package] = (package, messages, parse_go_dir(os.path.dirname(path)), os.path.dirname(path))
    by_proto = {p[0]: gp for gp, p in packages.items()}

    def resolve(go_type, go_pkg):
        """The shape of a Go type as encoding/json sees it: P, S, M or V."""
        if go_type.startswith("*"):
            return "P"
        if go_type.startswith("[]"):
            return "S"
        if go_type.startswith("map["):
            return "M"
        pkg, name = go_pkg, go_type
        if "." in go_type:
            alias, name = go_type.split(".", 1)
            imports = packages[go_pkg][2][2]
            pkg = imports.get(alias)
        if pkg in packages and name in packages[pkg][2][1]:
            return resolve(packages[pkg][2][1][name], pkg)
        return "V"

    print(f"# Kubernetes {release} (k8s.io/api, apimachinery, apiextensions-apiserver, kube-aggregator),")
    print("# written by assets/kubernetes/schema.py; the format is described there.")
    for go_pkg in sorted(packages):
        package, messages, (structs, named, imports), directory = packages[go_pkg]
        register = os.path.join(directory, "register.go")
        if os.path.exists(register) and "/apis/meta/" not in go_pkg:
            group = re.search(r'GroupName = "([^"]*)"', open(register).read())
            version = os.path.basename(directory)
            if group:
                gv = f"{group.group(1)}/{version}" if group.group(1) else version
                print(f"G {gv} {package}")
        for msg in sorted(messages):
            full = f"{package}.{msg}"
            fields = messages[msg]
            if full in SPECIAL:
                print(f"M {full} S:{SPECIAL[full]}")
                for label, typ, name, number in fields:
                    print(f"F {number} {name} {qualify(typ, package) if label != 'map' else 'map:' + ':'.join(typ)} {'Sr' if label == 'repeated' else 'V'}")
                continue
            struct_pkg, struct_name = go_pkg, msg
            while struct_name not in packages[struct_pkg][2][0] and "." in packages[struct_pkg][2][1].get(struct_name, ""):
                # type MatchCondition v1.MatchCondition: the same struct, defined in another package
                alias, struct_name = packages[struct_pkg][2][1][struct_name].split(".", 1)
                struct_pkg = packages[struct_pkg][2][2][alias]
            if struct_name not in packages[struct_pkg][2][0]:
                underlying = named.get(msg, "")
                if underlying.startswith("[]") and [f[2] for f in fields] == ["items"]:
                    print(f"M {full} A")
                    label, typ, name, number = fields[0]
                    print(f"F {number} items {qualify(typ, package)} Sr")
                    continue
                fail(f"{full}: no Go struct and no special JSON")
            go_fields = packages[struct_pkg][2][0][struct_name]
            kind = any(t.endswith("TypeMeta") and n is None for n, t, _ in go_fields)
            print(f"M {full}{' K' if kind else ''}")
            by_number = {}
            for go_name, go_type, tags in go_fields:
                pb = tag(tags, "protobuf")
                if pb and pb != "-":
                    by_number[int(pb.split(",")[1])] = (go_name, go_type, tags)
            for label, typ, name, number in fields:
                if number not in by_number:
                    fail(f"{full}.{name} = {number}: no Go field has this number")
                go_name, go_type, tags = by_number[number]
                pb = tag(tags, "protobuf")
                if f"name={name}" not in pb.split(",") and not (go_name is None and "name=" not in pb):
                    fail(f"{full}.{name} = {number}: the Go field's protobuf tag is {pb}")
                js = tag(tags, "json")
                # No json tag: encoding/json names the field as Go does (runtime.Unknown's).
                parts = (js if js is not None else go_name).split(",")
                json_name = parts[0] or (None if "inline" in parts else go_name or go_type.rsplit(".", 1)[-1])
                shape = resolve(go_type, struct_pkg)
                if label == "map":
                    typ_s = f"map:{typ[0]}:{qualify(typ[1], package)}"
                    if shape != "M":
                        fail(f"{full}.{name}: a proto map but Go type {go_type}")
                else:
                    typ_s = qualify(typ, package)
                if label == "repeated" and shape not in ("S",):
                    fail(f"{full}.{name}: repeated but Go type {go_type}")
                if typ == "bytes" and shape == "S" and label != "repeated":
                    pass  # []byte: a slice to encoding/json's omitempty, base64 in JSON
                flags = shape + ("o" if "omitempty" in parts else "") + ("i" if "inline" in parts else "")
                flags += "r" if label == "repeated" else ""
                if json_name is None:
                    json_name = "-"
                print(f"F {number} {json_name} {typ_s} {flags}")


def qualify(typ, package):
    typ = typ.lstrip(".")
    if typ in SCALARS or "." in typ:
        return typ
    return f"{package}.{typ}"


if __name__ == "__main__":
    main()
