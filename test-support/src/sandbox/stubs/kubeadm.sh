#!/bin/bash
# Sandbox kubeadm: records the call and keeps a copy of the --config file
# (the script deletes it afterwards). `init` behaves like the real one where
# it matters: without --skip-token-print it prints the token, and afterwards
# the API server "answers" (a marker every node of the test cluster sees).
printf '%s\n' "kubeadm $*" >>"$SANDBOX_LOG"
config=""
skip_token_print=false
previous=""
for argument in "$@"; do
  if [ "$previous" = --config ]; then
    config=$argument
  fi
  if [ "$argument" = --skip-token-print ]; then
    skip_token_print=true
  fi
  previous=$argument
done
if [ -n "$config" ]; then
  count=$(find "$SANDBOX_DIR/kubeadm-configs" -type f | wc -l)
  cp "$config" "$SANDBOX_DIR/kubeadm-configs/$((count + 1))-$1.yaml"
fi
case $1 in
  init)
    if ! $skip_token_print; then
      token=$(sed -n 's/^ *- token: "\(.*\)"$/\1/p' "$config")
      echo "kubeadm join api:443 --token $token --discovery-token-ca-cert-hash sha256:0000"
    fi
    mkdir -p "$SKIFF_ROOT/etc/kubernetes"
    printf 'sandbox admin kubeconfig\n' >"$SKIFF_ROOT/etc/kubernetes/admin.conf"
    touch "$SANDBOX_SHARED/api-server-ready"
    echo "Your Kubernetes control-plane has initialized successfully!"
    ;;
  join)
    echo "This node has joined the cluster."
    ;;
esac
