#!/bin/bash
# Sandbox kubeadm: records the call and keeps a copy of the --config file
# (the script deletes it afterwards), and behaves like the real one where a
# script depends on it. Each rule cites the kubeadm source it follows
# (kubernetes/kubernetes, cmd/kubeadm/app/...):
# - `init`: preflight's DirAvailable--var-lib-etcd (preflight/checks.go:
#   DirAvailableCheck, added for a local etcd by RunInitNodeChecks) fails
#   when <root>/var/lib/etcd is not empty, unless --ignore-preflight-errors
#   names it or `all` (case-insensitive, as RunChecks compares). Then the
#   certs phase (phases/certs/certlist.go) signs etcd's server, peer and
#   healthcheck-client certificates with pki/etcd/ca.{crt,key} (generating a
#   CA when there is none, as kubeadm does), the etcd phase
#   (phases/etcd/local.go: getEtcdCommand) writes the static pod manifest,
#   and the kubelet runs it: a REAL etcd member on the node's private IP,
#   ports 2379/2380, data dir <root>/var/lib/etcd (restored data is kept).
#   Its client URL replaces the shared etcd-endpoints file (the real kubeadm
#   learns endpoints from the etcd pods' annotations through the API). Without
#   --skip-token-print it prints the token; afterwards the API server
#   "answers" (a marker every node of the test cluster sees).
# - `join` with controlPlane in its config: the same preflight check
#   (cmd/phases/join/preflight.go runs RunInitNodeChecks for a control
#   plane); the check-etcd phase (cmd/phases/join/checketcd.go ->
#   phases/etcd/local.go CheckLocalEtcdClusterStatus -> util/etcd/etcd.go
#   NewFromCluster, Sync, CheckClusterHealth): the endpoints, synced with the
#   member list, must each answer a status call, or the join fails with
#   "etcd cluster is not healthy"; then (phases/etcd/local.go
#   CreateStackedEtcdStaticPodManifestFile, util/etcd/etcd.go addMember and
#   MemberPromote) the member is added as a LEARNER (skipped when its peer
#   URL is already listed; retried while etcd refuses, e.g. "too many
#   learner members"), its etcd starts with --initial-cluster-state existing
#   and an initial cluster of every member (unnamed ones by hex ID), it is
#   promoted (retried until in sync), and every endpoint must answer again
#   (WaitForClusterAvailable). kubeadm's retries run for the EtcdAPICall
#   timeout (2 minutes); here SANDBOX_ETCD_API_TIMEOUT seconds (default 10).
#   The join logs `kubeadm-join start <epoch ms>` and `kubeadm-join end
#   <epoch ms>` and lasts at least a second, so overlapping joins show.
#   A worker's join only records.
# - External etcd (§2.1.5, §2.1.7 of the setup guide):
#   `init phase certs etcd-server|etcd-peer|etcd-healthcheck-client
#   --config F` signs the member's certificates with pki/etcd/ca.{crt,key}
#   (cmd/phases/init/certs.go; the CA must be there, as on a host the guide
#   copied it to); `init phase etcd local --config F` writes the member's
#   static pod from F's etcd.local.extraArgs (name, initial-cluster,
#   initial-cluster-state; phases/etcd/local.go
#   CreateLocalEtcdStaticPodManifestFile with getEtcdCommand, where
#   extraArgs override kubeadm's defaults), which the kubelet runs. `init`
#   with etcd.external in its config starts no member and signs no etcd
#   certificate (cmd/phases/init/certs.go skips the etcd-ca certificates,
#   cmd/phases/init/etcd.go has nothing to do for external etcd), checks
#   every endpoint with the configured client certificate (preflight/
#   checks.go ExternalEtcdVersionCheck) and stores the ClusterConfiguration
#   there; a control-plane `join` whose stored ClusterConfiguration names
#   etcd.external adds no member (phases/etcd/local.go is for stacked
#   members only).
# - `reset`: records; stops the node's etcd member, deletes the manifests
#   and the etcd data dir (reset's cleanup; the member is not removed from
#   the cluster here).
# - `config images list --kubernetes-version vX.Y.Z`: the images of that
#   version, etcd's tag as constants/constants.go SupportedEtcdVersion has it.
# - The cluster's ClusterConfiguration, as kubeadm keeps it: `init`
#   uploads the ClusterConfiguration of its --config (phases/uploadconfig/
#   uploadconfig.go UploadConfiguration, into the kube-system/kubeadm-config
#   ConfigMap); here it is the REAL etcd's key
#   /registry/configmaps/kube-system/kubeadm-config holding that document,
#   so it is shared cluster state and is in every backup a restore brings
#   back (the API server would store the ConfigMap as protobuf; the stand-ins
#   keep the text). A control-plane `join` takes kubernetesVersion from
#   there, never from its own file (util/config/cluster.go
#   FetchInitConfigurationFromCluster, called by cmd/join.go for a
#   control-plane join), and writes its static pods at that version.
# - Version preflight of `init` and of a control-plane `join`
#   (cmd/phases/join/preflight.go runs preflight.RunInitNodeChecks with the
#   cluster's configuration; preflight/checks.go): KubernetesVersionCheck
#   fails when the control-plane version's minor is above kubeadm's own;
#   KubeletVersionCheck fails when the kubelet's minor (or major) is above
#   the control plane's ("the kubelet version is higher than the control
#   plane version"). kubeadm and the kubelet are the packages the node
#   installed: $SANDBOX_KUBERNETES_VERSION. A worker's join checks neither
#   (its JoinConfiguration carries no Kubernetes version).
# - What it deploys is recorded in $SANDBOX_SHARED/cluster/: static-pods.log
#   (`<node> <component> <version>` for kube-apiserver, kube-controller-manager,
#   kube-scheduler and etcd, phases/controlplane/manifests.go and
#   phases/etcd/local.go, images from constants/constants.go; the
#   kube-apiserver manifest also lists the ClusterConfiguration's
#   apiServer.extraArgs as flags and extraVolumes as comments, from --config
#   on init and from the stored copy on a control-plane join), addons.log
#   (`<node> kube-proxy|coredns <image>`; kube-proxy at the cluster's
#   version, phases/addons/proxy/proxy.go, CoreDNS at kubeadm's own
#   CoreDNSVersion, constants/constants.go and phases/addons/dns/dns.go),
#   kubelets.log (`<node> kubelet <version> apiserver <version>`: the API
#   server the kubelet talks to: on a control-plane node its own, as
#   kubeadm's ControlPlaneKubeletLocalMode feature has it, cmd/kubeadm/app/
#   features/features.go, beta and on by default since 1.33; on a
#   worker the oldest API server that answers), and apiservers/<node>
#   (`<ip> <version>`: the kube-apiserver mirror pod, gone with the Node:
#   `kubectl delete node`, `kubeadm reset`). The addons live in etcd too:
#   /registry/daemonsets/kube-system/kube-proxy and
#   /registry/deployments/kube-system/coredns hold their images.
# - `upgrade node phase addon all` (cmd/phases/upgrade/node/addons.go):
#   upgrades kube-proxy and CoreDNS to the stored version only when every
#   kube-apiserver mirror pod runs this node's version
#   (phases/upgrade/postupgrade.go UnupgradedControlPlaneInstances; fails
#   when this node has none), else prints that it skips them.
# - `kubeconfig user --config F --client-name N --org O`: prints a
#   kubeconfig; needs <root>/etc/kubernetes/pki/ca.key (cmd/kubeconfig.go
#   signs with the cluster CA).
# - The kubelet's configuration (phases/kubelet/config.go): `init` keeps
#   the KubeletConfiguration of its --config, unpatched, as the cluster's
#   kubelet-config ConfigMap (CreateConfigMap; here the file
#   $SANDBOX_SHARED/cluster/configmaps/kubelet-config.yaml, as a worker has
#   no etcd client certificate to read the stand-in's etcd), and every
#   `init` and `join` writes <root>/var/lib/kubelet/config.yaml from that
#   ConfigMap (a join never from its own file: cmd/phases/join/kubelet.go
#   runKubeletStartJoinPhase fetches it from the cluster) with the patches
#   of target kubeletconfiguration from its --config's patches.directory
#   applied, in file-name order (WriteConfigToDisk,
#   applyKubeletConfigPatches; util/patches/patches.go: file names
#   `target[suffix][+patchtype].(yaml|json)`, other files ignored with a
#   message, patch type `merge` is RFC 7386's JSON merge patch and the
#   default `strategic` merges a struct's maps the same way; `json` patches
#   are not modelled and fail). The merge handles the shapes a
#   KubeletConfiguration has here: top-level scalars, lists (replaced) and
#   maps one level deep (merged key by key; null deletes). A join without
#   a ConfigMap (no control plane in the test) writes no configuration.
# - `config images pull`: records; fails when the test made it fail
#   ($SANDBOX_DIR/fail/kubeadm-images-pull), as an unreachable registry would;
#   likewise a control-plane `join` after its preflight
#   ($SANDBOX_DIR/fail/kubeadm-join), before it touches etcd.
# - `certs check-expiration` prints kubeadm's two tables: each certificate
#   with a file under /etc/kubernetes/pki shows that file's expiry, the
#   others the time in $SANDBOX_DIR/certificates-expire (epoch seconds; a
#   year from now when absent); `certs renew all` re-signs the files for a
#   year (with etcd.external, i.e. on a control plane without a local etcd
#   manifest, no etcd certificate: renewal/manager.go NewManager uses
#   GetCertsWithoutEtcd), moves that time a year ahead and appends the time
#   to $SANDBOX_DIR/certificates-renewed; `certs renew NAME` (etcd-server,
#   etcd-peer, etcd-healthcheck-client, apiserver-etcd-client, ...) re-signs
#   that one file.
# - The kubelet's flags (phases/kubelet/flags.go): every `init` and `join`
#   writes <root>/var/lib/kubelet/kubeadm-flags.env, KUBELET_KUBEADM_ARGS
#   with `--hostname-override=<nodeRegistration.name>` when that name is not
#   the host's (buildKubeletArgs: "Make sure the node name we're passed will
#   work with Kubelet") and then nodeRegistration.kubeletExtraArgs, as
#   flags (WriteKubeletDynamicEnvFile; a map in v1beta3, a list of
#   {name, value} in v1beta4). The other flags kubeadm derives (the
#   runtime endpoint, the pause image) are not modelled.
# - `init` and `join` first run preflight's ContainerRuntimeCheck
#   (preflight/checks.go): the runtime at the config's criSocket must be
#   running (here: the node started the service serving that socket).
printf '%s\n' "kubeadm $*" >>"$SANDBOX_LOG"
config=""
skip_token_print=false
ignored=""
kubernetes_version=""
previous=""
for argument in "$@"; do
  case $previous in
    --config) config=$argument ;;
    --ignore-preflight-errors) ignored="$ignored,$argument" ;;
    --kubernetes-version) kubernetes_version=$argument ;;
  esac
  case $argument in
    --skip-token-print) skip_token_print=true ;;
    --ignore-preflight-errors=*) ignored="$ignored,${argument#*=}" ;;
    --kubernetes-version=*) kubernetes_version=${argument#*=} ;;
  esac
  previous=$argument
done
if [ -n "$config" ] && { [ "$1" = init ] || [ "$1" = join ]; }; then
  count=$(find "$SANDBOX_DIR/kubeadm-configs" -type f | wc -l)
  cp "$config" "$SANDBOX_DIR/kubeadm-configs/$((count + 1))-$1.yaml"
fi

ip=${SANDBOX_PRIVATE_IP:-}
name="ip-${ip//./-}"
pki="$SKIFF_ROOT/etc/kubernetes/pki/etcd"
manifest="$SKIFF_ROOT/etc/kubernetes/manifests/etcd.yaml"
pids="$SANDBOX_SHARED/etcd-pids"
endpoints_file="$SANDBOX_SHARED/etcd-endpoints"
timeout=${SANDBOX_ETCD_API_TIMEOUT:-10}
external_etcd=false

now_ms() {
  date +%s%3N
}

cluster="$SANDBOX_SHARED/cluster"
mkdir -p "$cluster/apiservers"
readonly CONFIG_KEY=/registry/configmaps/kube-system/kubeadm-config
# What the node installed: kubeadm and the kubelet at one version.
own_version=${SANDBOX_KUBERNETES_VERSION:?}

minor() {
  local rest=${1#*.}
  printf '%s' "${rest%%.*}"
}

# constants/constants.go: the CoreDNS and etcd versions of a kubeadm release.
coredns_version() {
  case $(minor "$1") in
    33) echo v1.12.0 ;;
    34) echo v1.12.1 ;;
    *) echo v1.13.1 ;;
  esac
}

etcd_version() {
  case $(minor "$1") in
    31) echo 3.5.15-0 ;;
    32) echo 3.5.16-0 ;;
    33) echo 3.5.21-0 ;;
    34) echo 3.6.4-0 ;;
    *) echo 3.6.6-0 ;;
  esac
}

# preflight/checks.go KubernetesVersionCheck and KubeletVersionCheck.
preflight_versions() {
  local version=$1 errors=""
  if [ "${version%%.*}" -gt "${own_version%%.*}" ] || [ "$(minor "$version")" -gt "$(minor "$own_version")" ]; then
    errors="$errors\t[ERROR KubernetesVersion]: Kubernetes version is greater than kubeadm version. Please consider to upgrade kubeadm. Kubernetes version: $version. Kubeadm version: ${own_version%.*}.x\n"
  fi
  if [ "${own_version%%.*}" -gt "${version%%.*}" ] || [ "$(minor "$own_version")" -gt "$(minor "$version")" ]; then
    errors="$errors\t[ERROR KubeletVersion]: the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"$own_version\" Control plane version: \"$version\"\n"
  fi
  if [ -n "$errors" ]; then
    printf 'error execution phase preflight: [preflight] Some fatal errors occurred:\n%b' "$errors" >&2
    echo "To see the stack trace of this error execute with --v=5 or higher" >&2
    exit 1
  fi
}

# The control plane this node now runs, at VERSION: static pods, the
# kube-apiserver mirror pod, the kubelet (which talks to the local API server).
deploy_control_plane() {
  local version=$1 document=$2 component
  mkdir -p "$SKIFF_ROOT/etc/kubernetes/manifests"
  for component in kube-apiserver kube-controller-manager kube-scheduler; do
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n  containers:\n  - name: %s\n    image: registry.k8s.io/%s:v%s\n' \
      "$component" "$component" "$component" "$version" >"$SKIFF_ROOT/etc/kubernetes/manifests/$component.yaml"
    printf '%s %s %s\n' "$name" "$component" "$version" >>"$cluster/static-pods.log"
  done
  # kube-apiserver's command carries the ClusterConfiguration's
  # apiServer.extraArgs as --name=value flags, and its pod the extraVolumes
  # as hostPath volumes (phases/controlplane/manifests.go:
  # getAPIServerCommand, GetStaticPodSpecs; volumes.go getHostPathVolumesForTheControlPlane).
  # extraArgs is a map in v1beta3 and a list of {name, value} in v1beta4
  # (apis/kubeadm/v1beta3/types.go, v1beta4/types.go ControlPlaneComponent).
  {
    printf '    command:\n    - kube-apiserver\n'
    api_server_extras "$document"
  } >>"$SKIFF_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml"
  if ! $external_etcd; then
    printf '%s etcd %s\n' "$name" "$(etcd_version "$version")" >>"$cluster/static-pods.log"
  fi
  printf '%s %s\n' "$ip" "$version" >"$cluster/apiservers/$name"
  printf '%s kubelet %s apiserver %s\n' "$name" "$own_version" "$version" >>"$cluster/kubelets.log"
  mkdir -p "$SKIFF_ROOT/etc/kubernetes"
  # As kubeadm writes it (phases/kubeconfig/kubeconfig.go): the client
  # certificate and key embedded, base64 (not a real certificate here).
  printf 'apiVersion: v1\nkind: Config\n# sandbox admin kubeconfig\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
    "$(printf 'sandbox admin certificate' | openssl base64 -A)" "$(printf 'sandbox admin client key' | openssl base64 -A)" \
    >"$SKIFF_ROOT/etc/kubernetes/admin.conf"
}

# api_server_extras DOCUMENT: kube-apiserver's extra flags and host folders
# from a ClusterConfiguration, as manifest lines.
api_server_extras() {
  awk '
    /^apiServer:/ { api = 1; next }
    api && /^[^ ]/ { api = 0 }
    api && /^  [^ ]/ { section = $1 }
    !api || /^  [^ ]/ { next }
    { line = $0; gsub(/"/, "", line) }
    section == "extraArgs:" && match(line, /^    - name: /) { argument = substr(line, RLENGTH + 1); next }
    section == "extraArgs:" && match(line, /^      value: /) { print "    - --" argument "=" substr(line, RLENGTH + 1); next }
    section == "extraArgs:" && match(line, /^    [^ -][^:]*: /) { split(substr(line, 5), pair, ": "); print "    - --" pair[1] "=" substr(line, 5 + length(pair[1]) + 2); next }
    section == "extraVolumes:" && match(line, /^      hostPath: /) { print "    # hostPath volume " substr(line, RLENGTH + 1) }
    section == "extraVolumes:" && match(line, /^      readOnly: /) { print "    #   readOnly " substr(line, RLENGTH + 1) }
  ' <<<"$1"
}

# The cluster's kubelet-config ConfigMap (see the header).
kubelet_configmap="$SANDBOX_SHARED/cluster/configmaps/kubelet-config.yaml"

# kubelet_document FILE: the KubeletConfiguration document of a kubeadm
# configuration file, without comments.
kubelet_document() {
  awk '/^---/ { if (keep) exit; text = ""; next } /^kind: KubeletConfiguration/ { keep = 1 } /^ *#/ { next } { text = text $0 "\n" } END { if (keep) printf "%s", text }' "$1"
}

# merge_patch BASE PATCH: BASE (a KubeletConfiguration's YAML) with PATCH
# applied as a JSON merge patch (RFC 7386, util/patches/patches.go
# MergePatchType -> jsonpatch.MergePatch) for the shapes the header names.
merge_patch() {
  awk '
    function unquote(text) { gsub(/^"|"$/, "", text); return text }
    # One document into keys[], kinds[] (scalar, map, list), values[] and
    # the entries of maps: entry_keys[key, i], entry_values[key, i].
    function read(file, prefix,    line, key, count) {
      while ((getline line <file) > 0) {
        if (line ~ /^ *#/ || line ~ /^---/ || line ~ /^ *$/) continue
        if (line ~ /^[^ ]/) {
          key = line; sub(/:.*/, "", key)
          order[prefix, ++counts[prefix]] = key
          value = line; sub(/^[^:]*: */, "", value)
          kinds[prefix, key] = (value == "") ? "block" : "scalar"
          values[prefix, key] = value
          entries[prefix, key] = 0
          continue
        }
        if (line ~ /^  - /) { kinds[prefix, key] = "list"; values[prefix, key] = values[prefix, key] line "\n"; continue }
        if (match(line, /^  [^ ][^:]*: /)) {
          kinds[prefix, key] = "map"
          count = ++entries[prefix, key]
          entry_keys[prefix, key, count] = unquote(substr(line, 3, RLENGTH - 4))
          entry_values[prefix, key, count] = substr(line, RLENGTH + 1)
        }
      }
      close(file)
    }
    function show(prefix, key,    i) {
      if (kinds[prefix, key] == "scalar") { print key ": " values[prefix, key]; return }
      print key ":"
      if (kinds[prefix, key] == "list") { printf "%s", values[prefix, key]; return }
      for (i = 1; i <= entries[prefix, key]; i++)
        if (entry_values[prefix, key, i] != "null") print "  " entry_keys[prefix, key, i] ": " entry_values[prefix, key, i]
    }
    BEGIN {
      read(ARGV[1], "base"); read(ARGV[2], "patch")
      for (i = 1; i <= counts["patch"]; i++) {
        key = order["patch", i]
        if (!(("base", key) in kinds)) { order["base", ++counts["base"]] = key; kinds["base", key] = "absent" }
        if (kinds["patch", key] == "scalar" && values["patch", key] == "null") { kinds["base", key] = "deleted"; continue }
        if (kinds["patch", key] == "map" && kinds["base", key] == "map") {
          for (j = 1; j <= entries["patch", key]; j++) {
            found = 0
            for (k = 1; k <= entries["base", key]; k++)
              if (entry_keys["base", key, k] == entry_keys["patch", key, j]) { entry_values["base", key, k] = entry_values["patch", key, j]; found = 1 }
            if (!found) {
              n = ++entries["base", key]
              entry_keys["base", key, n] = entry_keys["patch", key, j]; entry_values["base", key, n] = entry_values["patch", key, j]
            }
          }
          continue
        }
        kinds["base", key] = kinds["patch", key]; values["base", key] = values["patch", key]
        entries["base", key] = entries["patch", key]
        for (j = 1; j <= entries["patch", key]; j++) {
          entry_keys["base", key, j] = entry_keys["patch", key, j]; entry_values["base", key, j] = entry_values["patch", key, j]
        }
      }
      for (i = 1; i <= counts["base"]; i++) {
        key = order["base", i]
        if (kinds["base", key] != "deleted" && kinds["base", key] != "absent") show("base", key)
      }
    }
  ' "$1" "$2"
}

# write_kubelet_flags: kubeadm-flags.env (see the header).
write_kubelet_flags() {
  local node_name host flags
  node_name=$(awk '/^nodeRegistration:/ { inside = 1; next } inside && /^[^ ]/ { inside = 0 }
    inside && /^  name: / { sub(/^  name: */, ""); gsub(/"/, ""); print; exit }' "$config")
  host=$(uname -n | tr '[:upper:]' '[:lower:]')
  flags=""
  if [ -n "$node_name" ] && [ "$node_name" != "$host" ]; then
    flags="--hostname-override=$node_name"
  fi
  flags="$flags $(awk '
    /^nodeRegistration:/ { registration = 1; next }
    registration && /^[^ ]/ { registration = 0 }
    registration && /^  kubeletExtraArgs:/ { arguments = 1; next }
    arguments && /^  [^ ]/ { arguments = 0 }
    arguments && /^    - name: / { name = $3; gsub(/"/, "", name); next }
    arguments && /^      value: / { value = substr($0, index($0, "value: ") + 7); gsub(/"/, "", value); printf "--%s=%s ", name, value; next }
    arguments && /^    [a-z-]+: / { key = $1; sub(/:$/, "", key); value = substr($0, index($0, ": ") + 2); gsub(/"/, "", value); printf "--%s=%s ", key, value }
  ' "$config")"
  mkdir -p "$SKIFF_ROOT/var/lib/kubelet"
  printf 'KUBELET_KUBEADM_ARGS="%s"\n' "$(sed 's/^ *//; s/ *$//' <<<"$flags")" >"$SKIFF_ROOT/var/lib/kubelet/kubeadm-flags.env"
}

# write_kubelet_config: the kubelet-start phase (see the header).
write_kubelet_config() {
  write_kubelet_flags
  local directory file name base="$SANDBOX_DIR/kubelet-config.base" patched="$SANDBOX_DIR/kubelet-config.patched"
  if [ ! -s "$kubelet_configmap" ]; then
    echo "[kubelet-start] (sandbox) no kubelet-config ConfigMap: no control plane runs in this test"
    return 0
  fi
  cp "$kubelet_configmap" "$base"
  directory=$(awk '/^patches:/ { inside = 1; next } inside && /^  directory: / { sub(/^  directory: */, ""); gsub(/"/, ""); print; exit } /^[^ ]/ { inside = 0 }' "$config")
  if [ -n "$directory" ]; then
    echo "[patches] Reading patches from path \"$directory\""
    for file in "$SKIFF_ROOT$directory"/*; do
      [ -f "$file" ] || continue
      name=${file##*/}
      case $name in
        kubeletconfiguration*+json.yaml | kubeletconfiguration*+json.json)
          fail_phase kubelet-start "the sandbox kubeadm does not apply json patches ($name)" ;;
        kubeletconfiguration*.yaml | kubeletconfiguration*.json)
          merge_patch "$base" "$file" >"$patched" && mv "$patched" "$base"
          echo "[patches] Applied patch of type \"application/merge-patch+json\" to target \"kubeletconfiguration\"" ;;
        *) echo "[patches] Ignoring file \"$name\": unknown target" ;;
      esac
    done
  fi
  mkdir -p "$SKIFF_ROOT/var/lib/kubelet"
  cp "$base" "$SKIFF_ROOT/var/lib/kubelet/config.yaml"
  echo "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
}

# phases/addons/proxy and dns: kube-proxy at the cluster's version, CoreDNS
# at this kubeadm's.
deploy_addons() {
  local endpoints=$1 version=$2 proxy coredns
  proxy="registry.k8s.io/kube-proxy:v$version"
  coredns="registry.k8s.io/coredns/coredns:$(coredns_version "$own_version")"
  if ! etcd_client --endpoints="$endpoints" put /registry/daemonsets/kube-system/kube-proxy "$proxy" >/dev/null ||
    ! etcd_client --endpoints="$endpoints" put /registry/deployments/kube-system/coredns "$coredns" >/dev/null; then
    fail_phase addon/kube-proxy "could not update the addons"
  fi
  printf '%s kube-proxy %s\n%s coredns %s\n' "$name" "$proxy" "$name" "$coredns" >>"$cluster/addons.log"
  echo "[addons] Applied essential addon: CoreDNS"
  echo "[addons] Applied essential addon: kube-proxy"
}

# The stored ClusterConfiguration's kubernetesVersion (without the v).
stored_version() {
  etcd_client --endpoints="$1" get "$CONFIG_KEY" --print-value-only |
    sed -n 's/^kubernetesVersion: *"\{0,1\}v\([0-9.]*\)"\{0,1\}$/\1/p' | head -n 1
}

# The oldest API server that answers (its etcd runs: the node is on).
oldest_apiserver() {
  local file address version oldest=""
  for file in "$cluster"/apiservers/*; do
    [ -f "$file" ] || continue
    read -r address version <"$file"
    [ -e "$SANDBOX_SHARED/etcd-pids/$address" ] || continue
    oldest=$(printf '%s\n' "$version" ${oldest:+"$oldest"} | sort -V | head -n 1)
  done
  printf '%s' "$oldest"
}

# etcdctl as kubeadm's etcd client: the healthcheck-client certificate, or
# the API server's client certificate for an external etcd
# (etcd.external.certFile and keyFile).
client_certificate="$pki/healthcheck-client.crt"
client_key="$pki/healthcheck-client.key"
etcd_client() {
  etcdctl --cacert="$pki/ca.crt" --cert="$client_certificate" \
    --key="$client_key" --dial-timeout=2s --command-timeout=3s "$@"
}

# config_value KEY: the first `KEY: value` of the --config file, unquoted.
config_value() {
  sed -n "s/^ *$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$config" | head -n 1
}

# extra_arg NAME: etcd.local.extraArgs' NAME in the --config file: a map in
# v1beta3, a list of {name, value} in v1beta4.
extra_arg() {
  awk -v wanted="$1" '
    /^    extraArgs:/ { inside = 1; next }
    inside && !/^      / { inside = 0 }
    !inside { next }
    { line = $0; gsub(/"/, "", line) }
    match(line, /^      - name: /) { argument = substr(line, RLENGTH + 1); next }
    match(line, /^        value: /) { if (argument == wanted) print substr(line, RLENGTH + 1); next }
    match(line, /^      [^ -][^:]*: /) { split(substr(line, 7), pair, ": "); if (pair[1] == wanted) print substr(line, 7 + length(pair[1]) + 2) }
  ' "$config"
}

# external_endpoints: etcd.external.endpoints of the --config file, joined by commas.
external_endpoints() {
  awk '
    /^  external:/ { inside = 1; next }
    inside && /^  [^ ]/ { inside = 0 }
    inside && /^    [^ ]/ { list = ($0 ~ /^    endpoints:/) }
    inside && list && /^      - / { line = $0; sub(/^      - /, "", line); gsub(/"/, "", line); printf "%s%s", separator, line; separator = "," }
  ' "$config"
}

# use_external_client: the certificate of etcd.external (node paths under the root).
use_external_client() {
  client_certificate="$SKIFF_ROOT$(config_value certFile)"
  client_key="$SKIFF_ROOT$(config_value keyFile)"
}

fail_phase() {
  echo "error execution phase $1: $2" >&2
  echo "To see the stack trace of this error execute with --v=5 or higher" >&2
  exit 1
}

preflight_etcd_data_dir() {
  local data_dir="$SKIFF_ROOT/var/lib/etcd"
  if [ -d "$data_dir" ] && [ -n "$(find "$data_dir" -mindepth 1 -maxdepth 1 | head -n 1)" ]; then
    case ",${ignored,,}," in
      *,diravailable--var-lib-etcd,* | *,all,*)
        printf '\t[WARNING DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty\n' >&2
        ;;
      *)
        printf '%s\n\t%s\n%s\n' \
          "error execution phase preflight: [preflight] Some fatal errors occurred:" \
          "[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty" \
          "[preflight] If you know what you are doing, you can make a check non-fatal with \`--ignore-preflight-errors=...\`" >&2
        echo "To see the stack trace of this error execute with --v=5 or higher" >&2
        exit 1
        ;;
    esac
  fi
}

# The kubelet runs the static pod.
run_etcd_static_pod() {
  if ! sandbox-etcd-member run "$manifest" "$SKIFF_ROOT" "$pids" "$SANDBOX_SHARED/etcd-members.log"; then
    fail_phase wait-control-plane "the etcd static pod of $name did not start"
  fi
}

# util/etcd/etcd.go Sync: the endpoints become the client URLs of the
# started voting members (go.etcd.io/etcd/client/v3 Client.Sync skips
# learners and unstarted members).
synced_endpoints() {
  local known
  known=$(paste_endpoints)
  etcd_client --endpoints="$known" member list -w simple |
    awk -F', ' '$2 == "started" && $6 != "true" { print $5 }' | tr '\n' ',' | sed 's/,$//'
}

paste_endpoints() {
  tr '\n' ',' <"$endpoints_file" | sed 's/,$//'
}

# util/etcd/etcd.go getClusterStatus: a status call to every endpoint,
# each retried until the timeout.
check_cluster_health() {
  local endpoints=$1 endpoint deadline error
  for endpoint in ${endpoints//,/ }; do
    deadline=$(($(date +%s) + timeout))
    until error=$(etcd_client --endpoints="$endpoint" endpoint status 2>&1); do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        printf '%s\n' "$error" >&2
        return 1
      fi
      "$SANDBOX_REAL_SLEEP" 0.5
    done
  done
}

require_etcd_ca() {
  if [ ! -s "$pki/ca.crt" ] || [ ! -s "$pki/ca.key" ]; then
    fail_phase control-plane-prepare/certs \
      "error creating PKI assets: failure loading etcd/ca certificate authority: couldn't load the certificate file /etc/kubernetes/pki/etcd/ca.crt: open /etc/kubernetes/pki/etcd/ca.crt: no such file or directory"
  fi
}

if [ "$1 ${2:-}" = "init phase" ]; then
  case "${3:-} ${4:-}" in
    "certs etcd-server" | "certs etcd-peer" | "certs etcd-healthcheck-client")
      require_etcd_ca
      # Signs the three at once (each call keeps what exists, as kubeadm
      # keeps a certificate already on disk).
      sandbox-etcd-member certs "$pki" "$name" "$ip"
      echo "[certs] Generating \"$4\" certificate and key"
      exit 0
      ;;
    "etcd local")
      member=$(extra_arg name)
      initial=$(extra_arg initial-cluster)
      state=$(extra_arg initial-cluster-state)
      version=$(config_value kubernetesVersion)
      version=${version#v}
      sandbox-etcd-member manifest "$manifest" "${member:-$name}" "$ip" /var/lib/etcd \
        "${initial:-${member:-$name}=https://$ip:2380}" "${state:-new}"
      printf '%s etcd %s\n' "$name" "$(etcd_version "${version:-$own_version}")" >>"$cluster/static-pods.log"
      echo "[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\""
      exit 0
      ;;
  esac
  echo "sandbox kubeadm: phase ${3:-} ${4:-} is not modelled" >&2
  exit 1
fi

case "$1 ${2:-}" in
  "config images")
    version=${kubernetes_version#v}
    if [ "${3:-}" = pull ]; then
      if [ -e "$SANDBOX_DIR/fail/kubeadm-images-pull" ]; then
        echo "failed to pull image \"registry.k8s.io/kube-apiserver:v$version\": rpc error: code = Unknown desc = failed to resolve reference" >&2
        exit 1
      fi
      echo "[config/images] Pulled registry.k8s.io/kube-apiserver:v$version"
      exit 0
    fi
    for component in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
      echo "registry.k8s.io/$component:v$version"
    done
    echo "registry.k8s.io/coredns/coredns:$(coredns_version "$own_version")"
    echo "registry.k8s.io/pause:3.10.1"
    echo "registry.k8s.io/etcd:$(etcd_version "$version")"
    exit 0
    ;;
  "kubeconfig user")
    if [ ! -s "$SKIFF_ROOT/etc/kubernetes/pki/ca.key" ]; then
      echo "couldn't create a kubeconfig; the CA files couldn't be loaded: open /etc/kubernetes/pki/ca.key: no such file or directory" >&2
      exit 1
    fi
    printf 'apiVersion: v1\nkind: Config\n# sandbox kubeconfig (%s)\n' "$*"
    exit 0
    ;;
  "upgrade node")
    # kubeadm upgrade node phase addon all [--kubeconfig FILE]
    if [ ! -s "$cluster/apiservers/$name" ]; then
      fail_phase addon/coredns "failed to determine whether all the control plane instances have been upgraded: cannot find kube-apiserver image for current control plane instance $name"
    fi
    read -r _ mine <"$cluster/apiservers/$name"
    unupgraded=""
    for file in "$cluster"/apiservers/*; do
      read -r _ version <"$file"
      [ "$version" = "$mine" ] || unupgraded="$unupgraded $(basename "$file")"
    done
    if [ -n "$unupgraded" ]; then
      echo "[upgrade/addon] Skipping upgrade of addons because control plane instances [${unupgraded# }] have not been upgraded"
      exit 0
    fi
    endpoints=$(paste_endpoints)
    deploy_addons "$endpoints" "$(stored_version "$endpoints")"
    exit 0
    ;;
  "certs check-expiration")
    # kubeadm reads each certificate from its file (cmd/kubeadm/app/phases/
    # certs/renewal/manager.go: GetCertificateExpirationInfo) and prints two
    # tables, certificates then authorities (cmd/kubeadm/app/cmd/certs.go).
    # Here a certificate with a file under /etc/kubernetes/pki reports that
    # file's notAfter; the others (the stand-in writes no real kubeconfigs)
    # the time in $SANDBOX_DIR/certificates-expire.
    expires=$(cat "$SANDBOX_DIR/certificates-expire" 2>/dev/null || echo $(($(date +%s) + 365 * 86400)))
    row() {
      local when days
      when=$(date -u -d "@$2" '+%b %d, %Y %H:%M UTC')
      days=$((($2 - $(date +%s)) / 86400))
      if [ -n "$3" ]; then
        printf '%-26s %-25s %-15s %-23s %s\n' "$1" "$when" "${days}d" "$3" no
      else
        printf '%-26s %-25s %-15s %s\n' "$1" "$when" "${days}d" no
      fi
    }
    file_expiry() {
      local file="$SKIFF_ROOT/etc/kubernetes/pki/$1"
      if [ -e "$file" ]; then
        date -u -d "$(openssl x509 -enddate -noout -in "$file" | cut -d = -f 2)" +%s
      else
        echo "$2"
      fi
    }
    printf '%-26s %-25s %-15s %-23s %s\n' CERTIFICATE EXPIRES "RESIDUAL TIME" "CERTIFICATE AUTHORITY" "EXTERNALLY MANAGED"
    for certificate in admin.conf apiserver apiserver-etcd-client apiserver-kubelet-client controller-manager.conf \
      etcd-healthcheck-client etcd-peer etcd-server front-proxy-client scheduler.conf super-admin.conf; do
      case $certificate in
        etcd-*) authority=etcd-ca file=etcd/${certificate#etcd-}.crt ;;
        front-proxy-*) authority=front-proxy-ca file=$certificate.crt ;;
        *.conf) authority=ca file="" ;;
        *) authority=ca file=$certificate.crt ;;
      esac
      if [ -n "$file" ]; then
        row "$certificate" "$(file_expiry "$file" "$expires")" "$authority"
      else
        row "$certificate" "$expires" "$authority"
      fi
    done
    echo
    printf '%-26s %-25s %-15s %s\n' "CERTIFICATE AUTHORITY" EXPIRES "RESIDUAL TIME" "EXTERNALLY MANAGED"
    ten_years=$(($(date +%s) + 3650 * 86400))
    row ca "$(file_expiry ca.crt "$ten_years")"
    row etcd-ca "$(file_expiry etcd/ca.crt "$ten_years")"
    row front-proxy-ca "$(file_expiry front-proxy-ca.crt "$ten_years")"
    exit 0
    ;;
  "certs renew")
    # `renew all` re-issues every leaf certificate for a year with its
    # authority, keeping its names and usages
    # (cmd/kubeadm/app/phases/certs/renewal/manager.go: RenewUsingLocalCA;
    # renewal/filerenewer.go). The stand-in re-signs the files that exist;
    # the etcd ones keep working for the real etcd members.
    # `renew NAME` renews that certificate alone (cmd/kubeadm/app/cmd/
    # certs.go: one subcommand per certificate of the manager). With
    # etcd.external the manager knows no etcd certificate at all
    # (renewal/manager.go NewManager: GetCertsWithoutEtcd), so `renew all`
    # leaves apiserver-etcd-client and etcd/* alone; the stand-in reads
    # etcd.external off the node: a control plane without a local etcd
    # manifest (kubeadm writes one for every stacked member).
    case ${3:-} in
      all)
        files="apiserver.crt apiserver-kubelet-client.crt apiserver-etcd-client.crt front-proxy-client.crt etcd/server.crt etcd/peer.crt etcd/healthcheck-client.crt"
        if [ -e "$SKIFF_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml" ] &&
          [ ! -e "$SKIFF_ROOT/etc/kubernetes/manifests/etcd.yaml" ]; then
          files="apiserver.crt apiserver-kubelet-client.crt front-proxy-client.crt"
        fi
        ;;
      etcd-server) files=etcd/server.crt ;;
      etcd-peer) files=etcd/peer.crt ;;
      etcd-healthcheck-client) files=etcd/healthcheck-client.crt ;;
      apiserver-etcd-client) files=apiserver-etcd-client.crt ;;
      apiserver | apiserver-kubelet-client | front-proxy-client) files=$3.crt ;;
      *)
        echo "sandbox kubeadm: certs renew ${3:-} is not modelled" >&2
        exit 1
        ;;
    esac
    for file in $files; do
      path="$SKIFF_ROOT/etc/kubernetes/pki/$file"
      [ -e "$path" ] || continue
      case $file in
        etcd/*) authority="$pki/ca" ;;
        front-proxy-*) authority="$SKIFF_ROOT/etc/kubernetes/pki/front-proxy-ca" ;;
        *) authority="$SKIFF_ROOT/etc/kubernetes/pki/ca" ;;
      esac
      if [ -s "$authority.crt" ] && [ -s "$authority.key" ] && [ -s "${path%.crt}.key" ]; then
        openssl x509 -x509toreq -copy_extensions copyall -in "$path" -signkey "${path%.crt}.key" \
          -out "$path.csr" 2>/dev/null
        openssl x509 -req -copy_extensions copyall -in "$path.csr" -CA "$authority.crt" \
          -CAkey "$authority.key" -days 365 -out "$path" 2>/dev/null
        rm -f "$path.csr"
      else
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
          -keyout "${path%.crt}.key" -out "$path" -subj "/CN=${file##*/}" -days 365 2>/dev/null
      fi
    done
    [ "${3:-}" != all ] || echo $(($(date +%s) + 365 * 86400)) >"$SANDBOX_DIR/certificates-expire"
    date +%s >>"$SANDBOX_DIR/certificates-renewed"
    echo "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
    exit 0
    ;;
esac

# preflight/checks.go ContainerRuntimeCheck (run for init and join): the
# CRI runtime at nodeRegistration.criSocket must answer. In the sandbox a
# socket answers once the node started the service that serves it
# (containerd: /run/containerd/containerd.sock; CRI-O: /var/run/crio/crio.sock).
preflight_cri() {
  local socket service=""
  [ -n "$config" ] || return 0
  socket=$(sed -n 's/^ *criSocket: *//p' "$config" | head -n 1 | tr -d '"')
  # No criSocket: kubeadm detects one (util/runtime DetectCRISocket); the
  # sandbox models no sockets to detect, so there is nothing to check.
  [ -n "$socket" ] || return 0
  case $socket in
    unix:///run/containerd/containerd.sock | unix:///var/run/containerd/containerd.sock) service=containerd ;;
    unix:///var/run/crio/crio.sock | unix:///run/crio/crio.sock) service=crio ;;
  esac
  if [ -z "$service" ] || ! grep -qxE "systemctl (re)?start $service" "$SANDBOX_LOG"; then
    printf 'error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR CRI]: container runtime is not running: validate service connection: validate CRI v1 runtime API for endpoint "%s": the runtime is not running\n' "$socket" >&2
    exit 1
  fi
}

case $1 in
  init | join) preflight_cri ;;
esac

case $1 in
  init)
    preflight_etcd_data_dir
    version=$(sed -n 's/^kubernetesVersion: *"\{0,1\}v\([0-9.]*\)"\{0,1\}$/\1/p' "$config" | head -n 1)
    # No version given: kubeadm defaults it (to its own release, offline).
    version=${version:-$own_version}
    preflight_versions "$version"
    if grep -q '^  external:' "$config"; then
      external_etcd=true
      etcd_endpoints=$(external_endpoints)
      use_external_client
      if [ ! -s "$client_certificate" ] || [ ! -s "$client_key" ]; then
        fail_phase preflight "[ERROR ExternalEtcdClientCertificates]: $(config_value certFile) doesn't exist"
      fi
      if ! check_cluster_health "$etcd_endpoints"; then
        fail_phase preflight "[ERROR ExternalEtcdVersion]: Get \"${etcd_endpoints%%,*}/version\": the external etcd does not answer"
      fi
      tr ',' '\n' <<<"$etcd_endpoints" >"$endpoints_file"
    else
      external_etcd=false
      if [ ! -s "$pki/ca.crt" ] || [ ! -s "$pki/ca.key" ]; then
        mkdir -p "$pki"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
          -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj /CN=etcd-ca -days 3650 2>/dev/null
      fi
      sandbox-etcd-member certs "$pki" "$name" "$ip"
      sandbox-etcd-member manifest "$manifest" "$name" "$ip" /var/lib/etcd "$name=https://$ip:2380" new
      run_etcd_static_pod
      if ! check_cluster_health "https://$ip:2379"; then
        fail_phase wait-control-plane "etcd on $ip did not become healthy"
      fi
      etcd_endpoints="https://$ip:2379"
      printf 'https://%s:2379\n' "$ip" >"$endpoints_file"
    fi
    # upload-config: create or update, so a restore's init overwrites it.
    document=$(awk '/^---/ { if (keep) exit; text = ""; next } /^kind: ClusterConfiguration/ { keep = 1 } { text = text $0 "\n" } END { if (keep) printf "%s", text }' "$config")
    document=${document:-kind: ClusterConfiguration}
    grep -q '^kubernetesVersion:' <<<"$document" || document="$document"$'\n'"kubernetesVersion: v$version"
    printf '%s\n' "$document" | etcd_client --endpoints="$etcd_endpoints" put "$CONFIG_KEY" >/dev/null ||
      fail_phase upload-config/kubeadm "could not store the ClusterConfiguration (defaulted as kubeadm defaults it)"
    deploy_control_plane "$version" "$document"
    mkdir -p "${kubelet_configmap%/*}"
    kubelet_document "$config" >"$kubelet_configmap"
    write_kubelet_config
    deploy_addons "$etcd_endpoints" "$version"
    if ! $skip_token_print; then
      token=$(sed -n 's/^ *- token: "\(.*\)"$/\1/p' "$config")
      echo "kubeadm join api:443 --token $token --discovery-token-ca-cert-hash sha256:0000"
    fi
    touch "$SANDBOX_SHARED/api-server-ready"
    echo "Your Kubernetes control-plane has initialized successfully!"
    ;;
  join)
    if [ -n "$config" ] && grep -q '^controlPlane:' "$config"; then
      started=$(now_ms)
      printf '%s\n' "kubeadm-join start $started" >>"$SANDBOX_LOG"
      # An external etcd's control plane has the API server's client
      # certificate and no etcd certificates of its own.
      if [ -s "$SKIFF_ROOT/etc/kubernetes/pki/apiserver-etcd-client.crt" ] && [ ! -s "$pki/server.crt" ]; then
        require_etcd_ca
        client_certificate="$SKIFF_ROOT/etc/kubernetes/pki/apiserver-etcd-client.crt"
        client_key="$SKIFF_ROOT/etc/kubernetes/pki/apiserver-etcd-client.key"
      else
        preflight_etcd_data_dir
        require_etcd_ca
        sandbox-etcd-member certs "$pki" "$name" "$ip"
      fi
      if [ ! -s "$endpoints_file" ]; then
        fail_phase preflight "could not retrieve the list of etcd endpoints"
      fi
      version=$(stored_version "$(paste_endpoints)")
      if [ -z "$version" ]; then
        fail_phase preflight "unable to fetch the kubeadm-config ConfigMap: configmaps \"kubeadm-config\" not found"
      fi
      echo "[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
      preflight_versions "$version"
      if [ -e "$SANDBOX_DIR/fail/kubeadm-join" ]; then
        fail_phase control-plane-prepare/certs "failing as the test asked ($SANDBOX_DIR/fail/kubeadm-join)"
      fi
      stored=$(etcd_client --endpoints="$(paste_endpoints)" get "$CONFIG_KEY" --print-value-only)
      if grep -q '^  external:' <<<"$stored"; then
        external_etcd=true
        deploy_control_plane "$version" "$stored"
        printf '%s\n' "kubeadm-join end $(now_ms)" >>"$SANDBOX_LOG"
        write_kubelet_config
        echo "This node has joined the cluster."
        exit 0
      fi
      echo "[check-etcd] Checking that the etcd cluster is healthy"
      endpoints=$(synced_endpoints)
      if [ -z "$endpoints" ]; then
        fail_phase check-etcd "error syncing endpoints with etcd: no started member answers at $(paste_endpoints)"
      fi
      if ! check_cluster_health "$endpoints"; then
        fail_phase check-etcd "etcd cluster is not healthy: failed to dial endpoint with maintenance client: context deadline exceeded"
      fi
      peer="https://$ip:2380"
      deadline=$(($(date +%s) + timeout))
      until etcd_client --endpoints="$endpoints" member list -w simple | awk -F', ' '{ print $4 }' | grep -qxF "$peer" ||
        error=$(etcd_client --endpoints="$endpoints" member add "$name" --peer-urls="$peer" --learner 2>&1); do
        if [ "$(date +%s)" -ge "$deadline" ]; then
          fail_phase control-plane-join/etcd "$error"
        fi
        "$SANDBOX_REAL_SLEEP" 0.5
      done
      echo "[etcd] Announced new etcd member joining to the existing etcd cluster"
      initial_cluster=$(etcd_client --endpoints="$endpoints" member list -w simple |
        awk -F', ' -v name="$name" -v peer="$peer" '
          { member = ($4 == peer) ? name : ($3 == "" ? $1 : $3); printf "%s%s=%s", separator, member, $4; separator = "," }')
      sandbox-etcd-member manifest "$manifest" "$name" "$ip" /var/lib/etcd "$initial_cluster" existing
      run_etcd_static_pod
      id=$(etcd_client --endpoints="$endpoints" member list -w simple | awk -F', ' -v peer="$peer" '$4 == peer { print $1 }')
      deadline=$(($(date +%s) + timeout))
      until etcd_client --endpoints="$endpoints" member list -w simple |
        awk -F', ' -v peer="$peer" '$4 == peer && $6 == "false" { found = 1 } END { exit !found }' ||
        error=$(etcd_client --endpoints="$endpoints" member promote "$id" 2>&1); do
        if [ "$(date +%s)" -ge "$deadline" ]; then
          fail_phase control-plane-join/etcd "$error"
        fi
        "$SANDBOX_REAL_SLEEP" 0.5
      done
      if ! check_cluster_health "$endpoints,https://$ip:2379"; then
        fail_phase control-plane-join/etcd "timeout waiting for etcd cluster to be available"
      fi
      printf 'https://%s:2379\n' "$ip" >>"$endpoints_file"
      deploy_control_plane "$version" "$(etcd_client --endpoints="$endpoints" get "$CONFIG_KEY" --print-value-only)"
      # A join takes at least a second, so two that overlap cannot hide.
      elapsed=$(($(now_ms) - started))
      if [ "$elapsed" -lt 1000 ]; then
        "$SANDBOX_REAL_SLEEP" "$(awk -v ms=$((1000 - elapsed)) 'BEGIN { printf "%.3f", ms / 1000 }')"
      fi
      printf '%s\n' "kubeadm-join end $(now_ms)" >>"$SANDBOX_LOG"
    else
      printf '%s kubelet %s apiserver %s\n' "$name" "$own_version" "$(oldest_apiserver)" >>"$cluster/kubelets.log"
    fi
    write_kubelet_config
    echo "This node has joined the cluster."
    ;;
  reset)
    sandbox-etcd-member stop "$pids" "$ip"
    rm -f "$cluster/apiservers/$name"
    rm -rf "$SKIFF_ROOT/etc/kubernetes/manifests" "$SKIFF_ROOT/var/lib/etcd"
    ;;
esac
