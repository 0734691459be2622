#!/bin/bash
# Sandbox sleep: the script's waits are real waits, but short.
exec "$SANDBOX_REAL_SLEEP" 0.2
