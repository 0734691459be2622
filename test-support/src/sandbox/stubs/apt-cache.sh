#!/bin/bash
# Sandbox apt-cache: `madison` lists a newer release first, then the
# cluster's, as pkgs.k8s.io does, so the script must pick by version.
printf '%s\n' "apt-cache $*" >>"$SANDBOX_LOG"
if [ "$1" = madison ]; then
  printf ' %s | %s | https://pkgs.k8s.io/core:/stable:/v1.99/deb  Packages\n' "$2" "1.99.0-1.1"
  printf ' %s | %s | https://pkgs.k8s.io/core:/stable:/v1.99/deb  Packages\n' "$2" "${SANDBOX_KUBERNETES_VERSION}-1.1"
fi
