#!/bin/sh
# Container entry point. `policywatch run` migrates and seeds (safe when several containers start
# together) before it runs; `exec` makes policywatch PID 1, so SIGTERM reaches it directly.
set -eu
exec policywatch "${@:-run}"
