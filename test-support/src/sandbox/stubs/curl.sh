#!/bin/bash
# Sandbox curl: the script keeps its production URLs; this decides who answers.
# - instance metadata (169.254.169.254): moto, reached with --connect-to;
#   except the instance ID, which moto answers with one fixed value for all
#   instances, so each sandbox supplies its own
# - the state store: moto, which is the configured S3 endpoint
# - the API server's /readyz: ready once a sandbox ran `kubeadm init`
# - public downloads: fixtures; an unknown URL fails like an HTTP error
url="${!#}"
method=GET
output=""
previous=""
for argument in "$@"; do
  if [ "$previous" = -X ]; then
    method=$argument
  fi
  if [ "$previous" = -o ]; then
    output=$argument
  fi
  previous=$argument
done
printf '%s\n' "curl $method $url" >>"$SANDBOX_LOG"

case $url in
  http://169.254.169.254/latest/meta-data/instance-id)
    printf '%s' "$SANDBOX_INSTANCE_ID"
    exit 0
    ;;
  http://169.254.169.254/*)
    exec "$SANDBOX_REAL_CURL" --connect-to "169.254.169.254:80:127.0.0.1:$SANDBOX_MOTO_PORT" "$@"
    ;;
  "http://127.0.0.1:$SANDBOX_MOTO_PORT/"*)
    exec "$SANDBOX_REAL_CURL" "$@"
    ;;
  https://*/readyz)
    if [ -e "$SANDBOX_SHARED/api-server-ready" ]; then
      printf 'ok'
      exit 0
    fi
    exit 7
    ;;
esac

case $url in
  */Release.key | */repomd.xml.key) fixture=release.key ;;
  */calico.yaml) fixture=calico.yaml ;;
  */kube-flannel.yml) fixture=kube-flannel.yml ;;
  */cilium-linux-*.tar.gz) fixture=cilium.tar.gz ;;
  */cilium-linux-*.tar.gz.sha256sum) fixture=cilium.tar.gz.sha256sum ;;
  *)
    echo "sandbox curl: no fixture for $url" >&2
    exit 22
    ;;
esac
if [ -n "$output" ]; then
  cp "$SANDBOX_SHARED/fixtures/$fixture" "$output"
else
  cat "$SANDBOX_SHARED/fixtures/$fixture"
fi
