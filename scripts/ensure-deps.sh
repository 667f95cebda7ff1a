#!/usr/bin/env bash
# Debian packages the build and the cluster tests need, installed when missing (as root, from
# the Debian archive), as scripts/ensure-chromium.sh does for the browser tests:
#   protoc  (protobuf-compiler) - the etcd-client crate generates etcd's gRPC API at build time;
#   etcd    (etcd-server 3.4)   - the cluster tests start their own etcd (core/tests/cluster.rs).
# Without them the build or those tests fail; nothing is skipped.
set -euo pipefail
missing=()
command -v protoc > /dev/null 2>&1 || missing+=(protobuf-compiler)
command -v etcd > /dev/null 2>&1 || missing+=(etcd-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null 2>&1; then
  echo "ensure-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ensure-deps: installing ${missing[*]} from the Debian archive"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
command -v protoc etcd
