#!/bin/bash
# Sandbox kubectl: records the call and keeps a copy of each -f manifest.
printf '%s\n' "kubectl $*" >>"$SANDBOX_LOG"
previous=""
for argument in "$@"; do
  if [ "$previous" = -f ]; then
    cp "$argument" "$SANDBOX_DIR/applied/$(basename "$argument")"
  fi
  previous=$argument
done
