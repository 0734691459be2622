#!/bin/bash
# Sandbox gpg: writes a placeholder keyring where -o points.
printf '%s\n' "gpg $*" >>"$SANDBOX_LOG"
previous=""
for argument in "$@"; do
  if [ "$previous" = -o ]; then
    printf 'sandbox keyring\n' >"$argument"
  fi
  previous=$argument
done
