#!/usr/bin/env bash
# Usage: bench/hiprio.sh COMMAND [ARG...]: runs COMMAND with a high CPU weight (cgroup v1 cpu.shares 262144, against
# 1024 for every other process group), so that a benchmark on a shared 2-core machine sees close to a quiet machine
# while other work (builds, tests) runs beside it. Root only. The machine is still shared: note the load either way.
if [ ! -d /sys/fs/cgroup/cpu ]; then echo "hiprio.sh: needs cgroup v1 cpu (/sys/fs/cgroup/cpu) and root" >&2; exit 2; fi
mkdir -p /sys/fs/cgroup/cpu/bench && echo 262144 > /sys/fs/cgroup/cpu/bench/cpu.shares
echo $$ > /sys/fs/cgroup/cpu/bench/tasks
exec "$@"
