#!/usr/bin/env bash
# Install the Debian packages the deploy scripts and the integration tests need:
# SLURM (slurmctld, slurmd, client tools incl. sbatch/squeue/sacct/scontrol), munge,
# and chromium (headless screenshots of optuna-dashboard).
#
# Idempotent and quiet: packages already installed are detected with `dpkg -s`,
# so on a warm machine this takes about a second and touches no network.
# Usage: deploy/install-system-deps.sh [--check]   (--check: exit 1 if something is missing)
set -euo pipefail

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge chromium)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}" >&2
