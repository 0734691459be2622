#!/bin/bash
# Sandbox uname: `uname -n` is the instance's host name as EC2 names it
# (ip-A-B-C-D from its private IP), which kubeadm takes as the node name
# (the kubeadm stand-in names the node so too); anything else is the real uname.
if [ "${1:-}" = -n ]; then
  printf 'ip-%s\n' "${SANDBOX_PRIVATE_IP//./-}"
  exit 0
fi
exec "$SANDBOX_SHARED/tools/uname" "$@"
