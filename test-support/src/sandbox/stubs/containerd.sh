#!/bin/bash
# Sandbox containerd: `config default` prints the default configuration of
# the containerd major version under test.
printf '%s\n' "containerd $*" >>"$SANDBOX_LOG"
if [ "$1 $2" = "config default" ]; then
  cat "$SANDBOX_SHARED/fixtures/containerd-$SANDBOX_CONTAINERD_SERIES-config.toml"
fi
