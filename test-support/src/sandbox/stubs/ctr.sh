#!/bin/bash
# Sandbox ctr (containerd's CLI), for the etcd image the script mounts to
# use its etcdctl and etcdutl:
# - `ctr [--namespace k8s.io] images mount IMAGE DIR`: fails, as ctr does,
#   when IMAGE was never pulled (`crictl pull IMAGE` in the commands log);
#   for registry.k8s.io/etcd:* puts the real etcdctl and the etcdutl
#   wrapper (stubs/etcdutl.sh) in DIR/usr/local/bin; other images mount empty.
# - `ctr [--namespace k8s.io] images unmount DIR`: takes them away.
printf '%s\n' "ctr $*" >>"$SANDBOX_LOG"
arguments=()
while [ $# -gt 0 ]; do
  case $1 in
    --namespace | -n)
      shift 2
      ;;
    --namespace=*)
      shift
      ;;
    *)
      arguments+=("$1")
      shift
      ;;
  esac
done
case "${arguments[0]:-} ${arguments[1]:-}" in
  "images mount" | "image mount" | "i mount")
    image=${arguments[2]:?image}
    directory=${arguments[3]:?target directory}
    if ! grep -qxF "crictl pull $image" "$SANDBOX_LOG"; then
      echo "ctr: image \"$image\": not found" >&2
      exit 1
    fi
    mkdir -p "$directory/usr/local/bin"
    case $image in
      registry.k8s.io/etcd:*)
        ln -sf "$SANDBOX_SHARED/etcd-image/etcdctl" "$directory/usr/local/bin/etcdctl"
        ln -sf "$SANDBOX_SHARED/etcd-image/etcdutl" "$directory/usr/local/bin/etcdutl"
        ;;
    esac
    echo "$directory"
    ;;
  "images unmount" | "image unmount" | "i unmount")
    directory=${arguments[2]:?target directory}
    rm -f "$directory/usr/local/bin/etcdctl" "$directory/usr/local/bin/etcdutl"
    ;;
  *)
    echo "sandbox ctr: unsupported command: ${arguments[*]}" >&2
    exit 1
    ;;
esac
