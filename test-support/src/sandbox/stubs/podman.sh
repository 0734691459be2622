#!/bin/bash
# Sandbox podman, for the etcd image a CRI-O node mounts to use its
# etcdctl and etcdutl (podman reads CRI-O's containers/storage):
# - `podman image mount IMAGE`: fails, as podman does, when IMAGE was never
#   pulled (`crictl pull IMAGE` in the commands log); else prints the mount
#   point, which for registry.k8s.io/etcd:* holds the real etcdctl and the
#   etcdutl wrapper (stubs/etcdutl.sh) in usr/local/bin.
# - `podman image unmount IMAGE`: takes them away.
printf '%s\n' "podman $*" >>"$SANDBOX_LOG"
case "${1:-} ${2:-}" in
  "image mount")
    image=${3:?image}
    if ! grep -qxF "crictl pull $image" "$SANDBOX_LOG"; then
      echo "Error: $image: image not known" >&2
      exit 125
    fi
    directory="$SANDBOX_DIR/podman-mounts/$(printf '%s' "$image" | tr '/:' '__')"
    mkdir -p "$directory/usr/local/bin"
    case $image in
      registry.k8s.io/etcd:*)
        ln -sf "$SANDBOX_SHARED/etcd-image/etcdctl" "$directory/usr/local/bin/etcdctl"
        ln -sf "$SANDBOX_SHARED/etcd-image/etcdutl" "$directory/usr/local/bin/etcdutl"
        ;;
    esac
    echo "$directory"
    ;;
  "image unmount")
    image=${3:?image}
    directory="$SANDBOX_DIR/podman-mounts/$(printf '%s' "$image" | tr '/:' '__')"
    rm -rf "$directory"
    echo "$image"
    ;;
  *)
    echo "sandbox podman: unsupported command: $*" >&2
    exit 125
    ;;
esac
