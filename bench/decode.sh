#!/usr/bin/env bash
# Decoding Kubernetes objects: a stored Pod of about 4 KB decoded to the API's JSON, then also
# written as YAML, many times over in one process (release build).
#
#   bench/decode.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet --example decode_bench
