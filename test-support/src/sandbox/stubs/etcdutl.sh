#!/bin/bash
# Sandbox etcdutl, found by `ctr images mount` of the etcd image next to the
# real etcdctl. Debian's etcd is 3.4, which has no etcdutl: there the offline
# `snapshot restore` and `snapshot status` are etcdctl's, with the same flags
# (--data-dir, --name, --initial-cluster, --initial-advertise-peer-urls,
# -w simple), so this maps them onto it. Anything else is refused.
if [ -n "${SANDBOX_LOG:-}" ]; then
  printf '%s\n' "etcdutl $*" >>"$SANDBOX_LOG"
fi
case "$1 $2" in
  "snapshot restore" | "snapshot status")
    ETCDCTL_API=3 exec "$(dirname "$0")/etcdctl" "$@"
    ;;
esac
echo "sandbox etcdutl: only 'snapshot restore' and 'snapshot status' are mapped (etcd 3.4)" >&2
exit 2
