#!/bin/bash
# Sandbox systemctl: records its arguments and changes nothing, except for
# the kubelet: starting it (`start`, `restart`, `enable --now`) runs the
# static pods in /etc/kubernetes/manifests, i.e. the node's REAL etcd member
# when kubeadm wrote etcd.yaml (unless it already runs). No manifest (a
# worker, or before kubeadm ran): nothing starts. Stopping the kubelet
# leaves static pods running, as on a real node.
printf '%s\n' "systemctl $*" >>"$SANDBOX_LOG"
action=""
unit=""
now=false
for argument in "$@"; do
  case $argument in
    --now) now=true ;;
    -*) ;;
    *)
      if [ -z "$action" ]; then
        action=$argument
      elif [ -z "$unit" ]; then
        unit=${argument%.service}
      fi
      ;;
  esac
done
starts=false
case $action in
  start | restart) starts=true ;;
  enable) starts=$now ;;
esac
manifest="$SKIFF_ROOT/etc/kubernetes/manifests/etcd.yaml"
if [ "$unit" = kubelet ] && $starts && [ -f "$manifest" ] &&
  [ ! -e "$SANDBOX_SHARED/etcd-pids/$SANDBOX_PRIVATE_IP" ]; then
  sandbox-etcd-member run "$manifest" "$SKIFF_ROOT" "$SANDBOX_SHARED/etcd-pids" \
    "$SANDBOX_SHARED/etcd-members.log" >&2
fi
exit 0
