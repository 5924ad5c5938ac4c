#!/bin/bash
# Runs once, at the bastion's first boot: installs the Redis command-line client.
# Amazon Linux 2023 ships it as redis6-cli (with TLS); `redis-cli` is linked to it.
set -euo pipefail
dnf install -y redis6
ln -sf /usr/bin/redis6-cli /usr/local/bin/redis-cli
