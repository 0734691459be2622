#!/bin/bash
# Sandbox stub for a system command (apt-get, dnf, systemctl, modprobe, ...):
# records its name and arguments, changes nothing, succeeds.
printf '%s\n' "$(basename "$0") $*" >>"$SANDBOX_LOG"
