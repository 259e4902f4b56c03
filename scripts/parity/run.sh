#!/usr/bin/env bash
# Parity harness: the authors' HF modeling code vs earthmind-sdk on tiny published-layout models.
# Run by hand (not in CI); see scripts/parity/README.md.
#
#   scripts/parity/run.sh --v1 CHECKOUT_V1 --v2 CHECKOUT_V2 [--work DIR] [--sdk REPO] [--only CASE...]
#
# env: THEIR_PY (python of the separate venv with transformers 4.42.3, default /work/parity/venv/bin/python)
#      OUR_PY   (python of the project venv, default /work/main/.venv/bin/python)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk="$(cd "$here/../.." && pwd)"
work="${PARITY_WORK:-/work/parity/work}"
v1="" v2="" only=() steps="prepare theirs ours roundtrip compare"
while [ $# -gt 0 ]; do
  case "$1" in
    --v1) v1="$2"; shift 2 ;;
    --v2) v2="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --sdk) sdk="$(cd "$2" && pwd)"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --only) shift; while [ $# -gt 0 ] && [[ "$1" != --* ]]; do only+=("$1"); shift; done ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$v1" ] && [ -n "$v2" ] || { echo "run.sh: --v1 and --v2 (checkouts of the authors' repositories) are required" >&2; exit 2; }
their_py="${THEIR_PY:-/work/parity/venv/bin/python}"
our_py="${OUR_PY:-/work/main/.venv/bin/python}"
mkdir -p "$work"
only_args=()
[ ${#only[@]} -gt 0 ] && only_args=(--only "${only[@]}")
# our code from $sdk (and its plugins), never from the current directory
ours_env=(env "PYTHONPATH=$sdk:$sdk/plugins/sar:$sdk/plugins/multispectral:$sdk/kernels" HF_HUB_OFFLINE=1)
cd /tmp
for step in $steps; do
  t0=$(date +%s)
  case "$step" in
    prepare) "${ours_env[@]}" "$our_py" "$here/ours.py" prepare "$work" ;;
    theirs)  HF_HUB_OFFLINE=1 "$their_py" "$here/theirs.py" --v1 "$v1" --v2 "$v2" "$work" "${only_args[@]}" ;;
    ours)    "${ours_env[@]}" "$our_py" "$here/ours.py" run "$work" "${only_args[@]}" ;;
    roundtrip) "${ours_env[@]}" "$our_py" "$here/ours.py" roundtrip "$work" && HF_HUB_OFFLINE=1 "$their_py" "$here/theirs.py" --v1 "$v1" --v2 "$v2" "$work" --load-ours ;;
    compare) "$our_py" "$here/compare.py" "$work" --json "$work/report.json" || status=$? ;;
  esac
  echo "[run.sh] $step: $(( $(date +%s) - t0 ))s" >&2
done
exit "${status:-0}"
