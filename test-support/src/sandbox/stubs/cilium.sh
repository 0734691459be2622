#!/bin/bash
# Sandbox Cilium CLI, shipped inside the fixture archive the script downloads.
printf '%s\n' "cilium KUBECONFIG=$KUBECONFIG $*" >>"$SANDBOX_LOG"
