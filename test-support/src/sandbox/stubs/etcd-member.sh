#!/bin/bash
# Sandbox helper (installed as `sandbox-etcd-member`, a name no real tool
# has): runs REAL etcd members the way kubeadm and the kubelet do, for the
# kubeadm and systemctl stand-ins and for skiff-test-support's EtcdCluster.
#
#   certs PKI_DIR NAME IP
#       kubeadm's certs phase for a stacked etcd member
#       (cmd/kubeadm/app/phases/certs/certlist.go: KubeadmCertEtcdServer,
#       KubeadmCertEtcdPeer, KubeadmCertEtcdHealthcheck): server.crt and
#       peer.crt (serverAuth+clientAuth, SANs: the node name, localhost, the
#       IP, 127.0.0.1) and healthcheck-client.crt (clientAuth), signed by
#       PKI_DIR/ca.crt and ca.key; existing certificates are kept, as
#       kubeadm keeps a certificate that is already on disk.
#   manifest FILE NAME IP DATA_DIR INITIAL_CLUSTER new|existing
#       writes the etcd static pod manifest as kubeadm's getEtcdCommand
#       (cmd/kubeadm/app/phases/etcd/local.go) builds it, with the paths a
#       real node has (/etc/kubernetes/pki/etcd/...).
#   run MANIFEST ROOT PID_DIR LOG   (etcd is $SANDBOX_REAL_ETCD)
#       the kubelet running that static pod: starts etcd with the manifest's
#       flags, node paths mapped under ROOT, records the PID in PID_DIR/<IP>
#       (whoever owns PID_DIR kills it), waits until the client port answers.
#       A member already running for that IP is stopped first (the kubelet
#       replaces the pod).
#   stop PID_DIR IP
#       stops the member recorded for IP (a power-off).
#
# Departures from kubeadm's manifest, because every member of every test
# shares one machine: no https://127.0.0.1:2379 client URL and no metrics
# URL (both would collide between members); each member listens only on
# its own loopback address 127.A.B.C with the real ports 2379 and 2380.
set -euo pipefail

command=${1:?usage: sandbox-etcd-member certs|manifest|run|stop ...}
shift

sign() {
  # sign DIR NAME SUBJECT EXTENSIONS: a P-256 key and a certificate from DIR/ca.*
  local directory=$1 name=$2 subject=$3 extensions=$4
  if [ -s "$directory/$name.crt" ] && [ -s "$directory/$name.key" ]; then
    return 0
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$directory/$name.key" -out "$directory/$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$directory/$name.csr" -CA "$directory/ca.crt" -CAkey "$directory/ca.key" \
    -CAcreateserial -days 365 -out "$directory/$name.crt" -extfile <(printf '%s\n' "$extensions") 2>/dev/null
  rm -f "$directory/$name.csr"
  chmod 600 "$directory/$name.key"
}

case $command in
  certs)
    directory=$1 name=$2 ip=$3
    if [ ! -s "$directory/ca.crt" ] || [ ! -s "$directory/ca.key" ]; then
      echo "couldn't load etcd certificate authority from $directory" >&2
      exit 1
    fi
    both="extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name,DNS:localhost,IP:$ip,IP:127.0.0.1"
    sign "$directory" server "/CN=$name" "$both"
    sign "$directory" peer "/CN=$name" "$both"
    sign "$directory" healthcheck-client "/CN=kube-etcd-healthcheck-client" "extendedKeyUsage=clientAuth"
    ;;
  manifest)
    file=$1 name=$2 ip=$3 data_dir=$4 initial_cluster=$5 state=$6
    mkdir -p "$(dirname "$file")"
    {
      printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n'
      printf '  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://%s:2379\n' "$ip"
      printf 'spec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n'
      printf '    - --%s\n' \
        "name=$name" \
        "listen-client-urls=https://$ip:2379" \
        "advertise-client-urls=https://$ip:2379" \
        "listen-peer-urls=https://$ip:2380" \
        "initial-advertise-peer-urls=https://$ip:2380" \
        "initial-cluster=$initial_cluster" \
        "data-dir=$data_dir" \
        "cert-file=/etc/kubernetes/pki/etcd/server.crt" \
        "key-file=/etc/kubernetes/pki/etcd/server.key" \
        "trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt" \
        "client-cert-auth=true" \
        "peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt" \
        "peer-key-file=/etc/kubernetes/pki/etcd/peer.key" \
        "peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt" \
        "peer-client-cert-auth=true" \
        "snapshot-count=10000"
      if [ "$state" = existing ]; then
        printf '    - --initial-cluster-state=existing\n'
      fi
    } >"$file"
    ;;
  run)
    manifest=$1 root=$2 pid_dir=$3 log=$4
    flags=()
    while IFS= read -r line; do
      flag=${line#    - }
      # Node paths (/etc/..., /var/...) live under the node's root.
      case $flag in
        --*=/*) flag="${flag%%=*}=$root${flag#*=}" ;;
      esac
      flags+=("$flag")
    done < <(grep '^    - --' "$manifest")
    ip=""
    for flag in "${flags[@]}"; do
      case $flag in
        --listen-peer-urls=*)
          ip=${flag#--listen-peer-urls=https://}
          ip=${ip%:2380}
          ;;
      esac
    done
    if [ -z "$ip" ]; then
      echo "sandbox-etcd-member: no --listen-peer-urls in $manifest" >&2
      exit 1
    fi
    "$0" stop "$pid_dir" "$ip" || exit 1
    mkdir -p "$pid_dir"
    setsid "$SANDBOX_REAL_ETCD" "${flags[@]}" </dev/null >>"$log" 2>&1 &
    printf '%s\n' "$!" >"$pid_dir/$ip"
    # The member is up once its client port accepts connections (a learner
    # or a member waiting for quorum listens too).
    for _ in $(seq 1 200); do
      if ! kill -0 "$(cat "$pid_dir/$ip")" 2>/dev/null; then
        echo "etcd for $ip exited; its log ($log):" >&2
        tail -n 20 "$log" >&2
        exit 1
      fi
      if (exec 3<>"/dev/tcp/$ip/2379") 2>/dev/null; then
        exit 0
      fi
      "$SANDBOX_REAL_SLEEP" 0.05
    done
    echo "etcd for $ip did not listen within 10 s" >&2
    exit 1
    ;;
  stop)
    pid_dir=$1 ip=$2
    if [ -s "$pid_dir/$ip" ]; then
      pid=$(cat "$pid_dir/$ip")
      if ! kill "$pid" 2>/dev/null && [ -e "/proc/$pid" ]; then
        echo "sandbox-etcd-member: cannot stop etcd $pid of $ip (another user's process)" >&2
        exit 1
      fi
      for _ in $(seq 1 100); do
        [ -e "/proc/$pid" ] || break
        "$SANDBOX_REAL_SLEEP" 0.05
      done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pid_dir/$ip"
    fi
    ;;
  *)
    echo "sandbox-etcd-member: unknown command $command" >&2
    exit 2
    ;;
esac
