#!/bin/bash
# Sandbox curl: the script keeps its production URLs; this decides who answers.
# - instance metadata (169.254.169.254): moto, reached with --connect-to;
#   except what moto answers with one fixed value for all instances, which
#   each sandbox supplies: the instance ID, `local-ipv4` (the node's private
#   IP), `local-hostname` (the private DNS name of the node's instance in the
#   sandbox's EC2) and `autoscaling/target-lifecycle-state` (the node's file, 404 when
#   there is none, as for an instance in no auto scaling group); the
#   instance identity document (`latest/dynamic/instance-identity/document`,
#   AWS's "Instance identity documents": accountId, region, instanceId...),
#   which moto does not serve, with moto's account
# - EC2, Auto Scaling and SQS Query calls: the sandbox's own moto, where its
#   instances (and the node termination queue) are, even when a test points the node's endpoint at another
#   server (the sandbox's nodes are the instances); each also logs
#   `aws <service> <Action>`
# - the state store: moto, which is the configured S3 endpoint
# - the API server's /readyz: ready once a sandbox ran `kubeadm init`;
#   /version: the oldest kube-apiserver the kubeadm stand-in runs
# - the local API server's /metrics (https://kubernetes:6443/metrics, reached
#   at 127.0.0.1 with --connect-to): the stand-in Kubernetes API whose URL
#   the test wrote to $SANDBOX_DIR/api-server-url (plain HTTP, so the TLS
#   options do nothing); without one, nothing listens (curl's exit 7)
# - public downloads: fixtures; an unknown URL fails like an HTTP error
url="${!#}"
method=GET
output=""
previous=""
fail=false
service=""
action=""
for argument in "$@"; do
  if [ "$previous" = -X ]; then
    method=$argument
  fi
  if [ "$previous" = -o ]; then
    output=$argument
  fi
  if [ "$previous" = --aws-sigv4 ]; then
    service=${argument##*:}
  fi
  case $previous in
    -d | --data | --data-urlencode | --data-raw)
      case $argument in
        Action=*)
          action=${argument#Action=}
          action=${action%%&*}
          ;;
      esac
      ;;
  esac
  case $argument in
    --fail | --fail-with-body) fail=true ;;
    --*) ;;
    -*f*) fail=true ;;
  esac
  previous=$argument
done
printf '%s\n' "curl $method $url" >>"$SANDBOX_LOG"
if [ -n "$action" ]; then
  printf '%s\n' "aws ${service:-unsigned} $action" >>"$SANDBOX_LOG"
fi

case $service in
  ec2 | autoscaling | sqs)
    set -- "${@:1:$#-1}" "http://127.0.0.1:$SANDBOX_EC2_PORT/"
    exec "$SANDBOX_REAL_CURL" "$@"
    ;;
esac

case $url in
  http://169.254.169.254/latest/meta-data/instance-id)
    printf '%s' "$SANDBOX_INSTANCE_ID"
    exit 0
    ;;
  http://169.254.169.254/latest/meta-data/local-hostname)
    # "The private IPv4 DNS hostname of the instance" (AWS, instance
    # metadata categories): the sandbox's EC2 instance's privateDnsName.
    response=$("$SANDBOX_REAL_CURL" --silent --fail -X POST \
      --aws-sigv4 aws:amz:us-east-1:ec2 --user test-key:test-secret-key \
      -d "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=$SANDBOX_INSTANCE_ID" \
      "http://127.0.0.1:$SANDBOX_EC2_PORT/") || exit 22
    dns_name=$(grep -o '<privateDnsName>[^<]*</privateDnsName>' <<<"$response" | head -n 1 | sed 's/<[^>]*>//g')
    [ -n "$dns_name" ] || exit 22
    printf '%s' "$dns_name"
    exit 0
    ;;
  http://169.254.169.254/latest/meta-data/local-ipv4)
    printf '%s' "$SANDBOX_PRIVATE_IP"
    exit 0
    ;;
  http://169.254.169.254/latest/meta-data/autoscaling/target-lifecycle-state)
    if [ -f "$SANDBOX_DIR/lifecycle-state" ]; then
      cat "$SANDBOX_DIR/lifecycle-state"
      exit 0
    fi
    if $fail; then
      echo "curl: (22) The requested URL returned error: 404" >&2
      exit 22
    fi
    printf '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>\n'
    exit 0
    ;;
  http://169.254.169.254/latest/dynamic/instance-identity/document)
    printf '{\n  "accountId" : "123456789012",\n  "instanceId" : "%s",\n  "privateIp" : "%s",\n  "region" : "us-east-1"\n}' \
      "$SANDBOX_INSTANCE_ID" "$SANDBOX_PRIVATE_IP"
    exit 0
    ;;
  http://169.254.169.254/*)
    exec "$SANDBOX_REAL_CURL" --connect-to "169.254.169.254:80:127.0.0.1:$SANDBOX_MOTO_PORT" "$@"
    ;;
  "http://127.0.0.1:$SANDBOX_MOTO_PORT/"*)
    exec "$SANDBOX_REAL_CURL" "$@"
    ;;
  https://kubernetes:6443/metrics)
    if [ -s "$SANDBOX_DIR/api-server-url" ]; then
      set -- "${@:1:$#-1}" "$(cat "$SANDBOX_DIR/api-server-url")/metrics"
      exec "$SANDBOX_REAL_CURL" "$@"
    fi
    echo "curl: (7) Failed to connect to 127.0.0.1 port 6443: Connection refused" >&2
    exit 7
    ;;
  https://*/readyz)
    if [ -e "$SANDBOX_SHARED/api-server-ready" ]; then
      printf 'ok'
      exit 0
    fi
    exit 7
    ;;
  https://*/version)
    # The load balancer may send the request to any API server: the oldest
    # that answers (its node's etcd runs) is the one that matters; with none
    # recorded (a test marked the API ready), the version the test marked
    # it with, else this node's.
    version=""
    for file in "$SANDBOX_SHARED"/cluster/apiservers/*; do
      [ -f "$file" ] || continue
      read -r address candidate <"$file"
      [ -e "$SANDBOX_SHARED/etcd-pids/$address" ] || continue
      version=$(printf '%s\n' "$candidate" ${version:+"$version"} | sort -V | head -n 1)
    done
    if [ -z "$version" ] && [ -e "$SANDBOX_SHARED/api-server-ready" ]; then
      version=$(cat "$SANDBOX_SHARED/api-server-ready")
      version=${version:-$SANDBOX_KUBERNETES_VERSION}
    fi
    [ -n "$version" ] || exit 7
    minor=${version#*.}
    printf '{"major": "1", "minor": "%s", "gitVersion": "v%s", "platform": "linux/amd64"}\n' "${minor%%.*}" "$version"
    exit 0
    ;;
esac

case $url in
  */Release.key | */repomd.xml.key) fixture=release.key ;;
  */calico.yaml) fixture=calico.yaml ;;
  */manifests/operator-crds.yaml) fixture=operator-crds.yaml ;;
  */manifests/tigera-operator.yaml) fixture=tigera-operator.yaml ;;
  */hostprocess/calico/kube-proxy/kube-proxy.yml) fixture=windows-kube-proxy.yml ;;
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
