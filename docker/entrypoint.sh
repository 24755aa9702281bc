#!/bin/sh
# Container entry point: bring the schema up to date, load the config files, then run.
# `exec` makes policywatch PID 1's child-free replacement, so SIGTERM reaches it directly.
set -eu
policywatch migrate
policywatch seed
exec policywatch "${@:-run}"
