#!/bin/bash
# Sandbox stub for a system command (apt-get, dnf, systemctl, modprobe, ...):
# records its name and arguments, changes nothing, succeeds; unless the test
# made the command fail on this node (a file $SANDBOX_DIR/fail/<name>), as a
# package mirror that keeps failing would.
name=$(basename "$0")
printf '%s\n' "$name $*" >>"$SANDBOX_LOG"
if [ -e "$SANDBOX_DIR/fail/$name" ]; then
  echo "$name: failing as the test asked ($SANDBOX_DIR/fail/$name)" >&2
  exit 100
fi
