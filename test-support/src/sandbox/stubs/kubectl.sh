#!/bin/bash
# Sandbox kubectl: records the call and keeps a copy of each -f manifest
# (`apply`). For the objects the kubeadm stand-in keeps in the REAL etcd
# (see kubeadm.sh), it answers as the API server would, reading and writing
# etcd directly with a client certificate of the node's etcd CA; it needs a
# --kubeconfig file, as kubectl without a server fails:
# - `get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}`:
#   the stored ClusterConfiguration; `-o yaml`: the ConfigMap, with the key's
#   etcd mod revision as its resourceVersion.
# - `replace -f FILE` of that ConfigMap: refused with kubectl's conflict
#   error when the resourceVersion is not the current one (the API server's
#   optimistic concurrency; here the check and the write are two etcd calls,
#   which the members lease serializes in the tests); then the
#   ClusterConfiguration is stored.
# - `get daemonset kube-proxy -o jsonpath=...`: kube-proxy's image.
# - `delete node NAME`: the Node goes, and with it its kube-apiserver mirror
#   pod ($SANDBOX_SHARED/cluster/apiservers/NAME).
# - The ConfigMap kube-system/skiff-addons (skiff's record of the addons the
#   cluster applied), kept in etcd as `NAME VALUE` lines at
#   /registry/configmaps/kube-system/skiff-addons: `get configmap
#   skiff-addons` with `--ignore-not-found` prints nothing and succeeds when
#   it does not exist (kubectl get's documented flag), else NotFound;
#   `-o name` prints `configmap/skiff-addons`, `-o jsonpath={.data}` the data
#   as a JSON object; `create configmap skiff-addons` creates it empty and
#   fails with AlreadyExists when it exists; `patch configmap skiff-addons
#   --type merge -p '{"data":{"K":"V"}}'` sets K, a null value removes it
#   (RFC 7386 JSON merge patch), NotFound when it does not exist.
# - `apply` and `delete` with `-f FILE` (the addons' server-side apply and
#   delete) are recorded only, the file copied to $SANDBOX_DIR/applied.
# - `get pods -l component=kube-apiserver -o jsonpath=...` (the addons'
#   version gate): "NODE IMAGE" a line, one per kube-apiserver mirror pod
#   ($SANDBOX_SHARED/cluster/apiservers/NODE, `<ip> <version>`), the image
#   registry.k8s.io/kube-apiserver:v<version> as kubeadm names it.
# - Calico's Tigera operator (install_calico_for_windows): an applied file
#   that defines the CRD installations.operator.tigera.io, or an
#   Installation, is recorded in $SANDBOX_SHARED/cluster/calico-operator/;
#   `get installations.operator.tigera.io NAME` then answers as kubectl
#   does (staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go, checkErr):
#   without the CRD, `error: the server doesn't have a resource type
#   "installations" in group "operator.tigera.io"`; without the object,
#   the API server's NotFound; both exit 1.
# - `get nodes -o jsonpath=...` (the node termination processor's listing
#   of name and providerID): the lines of $SANDBOX_SHARED/cluster/nodes,
#   "NAME PROVIDER-ID", which a test writes.
# - `drain NAME`: kubectl drain evicts the node's pods through the Eviction
#   API (unless --disable-eviction), which refuses an eviction that would
#   violate a PodDisruptionBudget (HTTP 429); kubectl retries it until
#   --timeout and then fails (kubectl pkg/drain/drain.go, evictPods). A
#   test blocks a node's drain so with $SANDBOX_SHARED/cluster/pdb-blocks/NAME;
#   a drain that ends is appended to $SANDBOX_SHARED/cluster/drained. A
#   test slows a node's drain (pods taking their grace period) with
#   $SANDBOX_SHARED/cluster/slow-drains/NAME holding the seconds it takes;
#   each drain appends "start NAME" and "end NAME" lines to
#   $SANDBOX_SHARED/cluster/drain-events as it starts and ends.
printf '%s\n' "kubectl $*" >>"$SANDBOX_LOG"
kubeconfig="" output="" file="" patch="" previous="" ignore_not_found=false
words=()
for argument in "$@"; do
  case $previous in
    --kubeconfig) kubeconfig=$argument ;;
    -o) output=$argument ;;
    -f) file=$argument ;;
    -p) patch=$argument ;;
    -n | -l | --type | --field-manager) ;;
    *)
      case $argument in
        --kubeconfig=*) kubeconfig=${argument#*=} ;;
        -o=* | --output=*) output=${argument#*=} ;;
        --ignore-not-found | --ignore-not-found=true) ignore_not_found=true ;;
        -* | KUBECONFIG=*) ;;
        *) words+=("$argument") ;;
      esac
      ;;
  esac
  previous=$argument
done
operator_record="$SANDBOX_SHARED/cluster/calico-operator"
if [ "${words[0]:-}" = delete ] && [ -n "$file" ]; then
  cp "$file" "$SANDBOX_DIR/applied/$(basename "$file")"
fi
if [ "${words[0]:-}" = apply ] && [ -n "$file" ]; then
  cp "$file" "$SANDBOX_DIR/applied/$(basename "$file")"
  if grep -qx '  name: installations.operator.tigera.io' "$file"; then
    mkdir -p "$operator_record" && touch "$operator_record/crd"
  fi
  if grep -qx 'kind: Installation' "$file"; then
    mkdir -p "$operator_record" && touch "$operator_record/installation"
  fi
  exit 0
fi
if [ "${words[0]:-} ${words[1]:-}" = "get installations.operator.tigera.io" ]; then
  if [ ! -e "$operator_record/crd" ]; then
    echo 'error: the server doesn'"'"'t have a resource type "installations" in group "operator.tigera.io"' >&2
    exit 1
  fi
  if [ ! -e "$operator_record/installation" ]; then
    echo "Error from server (NotFound): installations.operator.tigera.io \"${words[2]:-}\" not found" >&2
    exit 1
  fi
  printf 'NAME      AGE\n%s   1m\n' "${words[2]:-}"
  exit 0
fi
case "${words[0]:-} ${words[1]:-}" in
  "get configmap" | "get daemonset" | "get pods" | "replace " | "delete node" | "get nodes" | "drain "* | "create configmap" | "patch configmap") ;;
  *) exit 0 ;;
esac
if [ -z "$kubeconfig" ] || [ ! -s "$kubeconfig" ]; then
  echo "The connection to the server localhost:8080 was refused - did you specify the right host or port?" >&2
  exit 1
fi

readonly CONFIG_KEY=/registry/configmaps/kube-system/kubeadm-config
certificates="$SANDBOX_DIR/kubectl-etcd"
if [ ! -s "$certificates/healthcheck-client.crt" ]; then
  mkdir -p "$certificates"
  cp "$SKIFF_ROOT/etc/kubernetes/pki/etcd/ca.crt" "$SKIFF_ROOT/etc/kubernetes/pki/etcd/ca.key" "$certificates/" ||
    { echo "sandbox kubectl: no etcd CA on this node" >&2; exit 1; }
  sandbox-etcd-member certs "$certificates" kubectl 127.0.0.1 >/dev/null
fi
etcd_client() {
  etcdctl --endpoints="$(tr '\n' ',' <"$SANDBOX_SHARED/etcd-endpoints" | sed 's/,$//')" \
    --cacert="$certificates/ca.crt" --cert="$certificates/healthcheck-client.crt" \
    --key="$certificates/healthcheck-client.key" --dial-timeout=2s --command-timeout=5s "$@"
}
not_found() {
  echo "Error from server (NotFound): $1 not found" >&2
  exit 1
}

readonly ADDONS_KEY=/registry/configmaps/kube-system/skiff-addons
if [ "${words[2]:-}" = skiff-addons ]; then
  exists=false
  if [ -n "$(etcd_client get "$ADDONS_KEY" --keys-only)" ]; then
    exists=true
  fi
  data=$(etcd_client get "$ADDONS_KEY" --print-value-only) || exit 1
  case "${words[0]}" in
    get)
      if ! $exists; then
        $ignore_not_found && exit 0
        not_found 'configmaps "skiff-addons"'
      fi
      case $output in
        name) echo "configmap/skiff-addons" ;;
        'jsonpath={.data}')
          awk 'NF == 2 { printf "%s\"%s\":\"%s\"", (n++ ? "," : "{"), $1, $2 } END { if (n) print "}" }' <<<"$data"
          ;;
        *) echo "sandbox kubectl: output $output of skiff-addons is not modelled" >&2; exit 1 ;;
      esac
      ;;
    create)
      if $exists; then
        echo 'error: failed to create configmap: configmaps "skiff-addons" already exists' >&2
        exit 1
      fi
      # A first line of its own: etcdctl put takes no empty value.
      printf '#skiff-addons\n' | etcd_client put "$ADDONS_KEY" >/dev/null || exit 1
      echo "configmap/skiff-addons created"
      ;;
    patch)
      $exists || not_found 'configmaps "skiff-addons"'
      # {"data":{"K":"V"}} or {"data":{"K":null}}: one key, as skiff sends.
      key=$(sed -n 's/^{"data":{"\([^"]*\)":.*$/\1/p' <<<"$patch")
      value=$(sed -n 's/^{"data":{"[^"]*":"\{0,1\}\([^"}]*\)"\{0,1\}}}$/\1/p' <<<"$patch")
      if [ -z "$key" ] || [ -z "$value" ]; then
        echo "sandbox kubectl: patch $patch is not modelled" >&2
        exit 1
      fi
      data=$(awk -v key="$key" 'NF == 2 && $1 != key' <<<"$data")
      [ "$value" = null ] || data=$(printf '%s\n%s %s' "$data" "$key" "$value")
      { echo '#skiff-addons'; sed '/^$/d' <<<"$data"; } | etcd_client put "$ADDONS_KEY" >/dev/null || exit 1
      echo "configmap/skiff-addons patched"
      ;;
  esac
  exit 0
fi

case "${words[0]} ${words[1]}" in
  "get configmap")
    [ "${words[2]:-}" = kubeadm-config ] || not_found "configmaps \"${words[2]:-}\""
    text=$(etcd_client get "$CONFIG_KEY" --print-value-only) || exit 1
    [ -n "$text" ] || not_found 'configmaps "kubeadm-config"'
    case $output in
      yaml)
        revision=$(etcd_client get "$CONFIG_KEY" -w json | grep -o '"mod_revision":[0-9]*' | cut -d : -f 2)
        printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\n  namespace: kube-system\n  resourceVersion: "%s"\ndata:\n  ClusterConfiguration: |\n' "$revision"
        while IFS= read -r line; do
          printf '    %s\n' "$line"
        done <<<"$text"
        ;;
      *) printf '%s\n' "$text" ;;
    esac
    ;;
  "get daemonset")
    image=$(etcd_client get /registry/daemonsets/kube-system/kube-proxy --print-value-only) || exit 1
    [ -n "$image" ] || not_found 'daemonsets.apps "kube-proxy"'
    printf '%s' "$image"
    ;;
  "replace ")
    [ -s "$file" ] || { echo "error: the path \"$file\" does not exist" >&2; exit 1; }
    wanted=$(sed -n 's/^  resourceVersion: "\([0-9]*\)"$/\1/p' "$file")
    revision=$(etcd_client get "$CONFIG_KEY" -w json | grep -o '"mod_revision":[0-9]*' | cut -d : -f 2)
    if [ "$wanted" != "$revision" ]; then
      echo "Error from server (Conflict): error when replacing \"$file\": Operation cannot be fulfilled on configmaps \"kubeadm-config\": the object has been modified; please apply your changes to the latest version and try again" >&2
      exit 1
    fi
    awk 'found && /^    / { print substr($0, 5); next } found { exit } /^  ClusterConfiguration: \|$/ { found = 1 }' "$file" |
      etcd_client put "$CONFIG_KEY" >/dev/null || exit 1
    echo "configmap/kubeadm-config replaced"
    ;;
  "get pods")
    for apiserver in "$SANDBOX_SHARED/cluster/apiservers"/*; do
      [ -f "$apiserver" ] || continue
      read -r _ version <"$apiserver"
      printf '%s registry.k8s.io/kube-apiserver:v%s\n' "$(basename "$apiserver")" "${version#v}"
    done
    ;;
  "get nodes")
    cat "$SANDBOX_SHARED/cluster/nodes" 2>/dev/null || true
    ;;
  "drain "*)
    node=${words[1]:-}
    printf 'start %s\n' "$node" >>"$SANDBOX_SHARED/cluster/drain-events"
    if [ -s "$SANDBOX_SHARED/cluster/slow-drains/$node" ]; then
      "$SANDBOX_REAL_SLEEP" "$(cat "$SANDBOX_SHARED/cluster/slow-drains/$node")"
    fi
    printf 'end %s\n' "$node" >>"$SANDBOX_SHARED/cluster/drain-events"
    if [ -e "$SANDBOX_SHARED/cluster/pdb-blocks/$node" ] && [[ " $* " != *" --disable-eviction "* ]]; then
      echo "error when evicting pods/\"$(cat "$SANDBOX_SHARED/cluster/pdb-blocks/$node")\" -n \"default\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget." >&2
      echo "There are pending nodes to be drained:" >&2
      echo " $node" >&2
      echo "error: unable to drain node \"$node\" due to error: context deadline exceeded, continuing command..." >&2
      exit 1
    fi
    printf '%s\n' "$node" >>"$SANDBOX_SHARED/cluster/drained"
    echo "node/$node drained"
    ;;
  "delete node")
    if [ -e "$SANDBOX_SHARED/cluster/apiservers/${words[2]:-}" ]; then
      rm -f "$SANDBOX_SHARED/cluster/apiservers/${words[2]}"
      echo "node \"${words[2]}\" deleted"
    fi
    ;;
esac
