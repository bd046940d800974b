#!/usr/bin/env bash
# The GPU checks as named steps: the test suite, every benchmark in its full mode, and a profile
# of one sweep chunk. Every output goes under $OUT (default ./gpu_out). Run it on the GPU machine
# after installing the project and JAX's CUDA build (docs/gpu.md):
#
#   bash benchmarks/gpu_all.sh tests
#   bash benchmarks/gpu_all.sh sweep_vs_serial sparse_overhead
#   bash benchmarks/gpu_all.sh --quick profile                          # CPU-sized, to check this script
#
# Steps (any number, in order):
#   rejax_wheels       with network: download the wheels the rejax side of peer_rejax needs
#                      (rejax 0.1.3, gymnax 0.0.9, ...) into .rejax-wheels, for a GPU machine without one
#   tests              python -m pytest -q -n $TEST_WORKERS (8) tests        -> tests.log
#   sweep_vs_serial sparse_overhead pipeline_overhead scaling peer_rejax, and any other
#   benchmarks/NAME.py (--list prints them all; atari_throughput, ...)
#                      benchmarks/NAME.py in its full mode (--quick: its --quick) -> NAME.log
#                      (scaling gets --budget $SCALING_BUDGET, 420 s, to fit a 10-minute call)
#   bench              every benchmark above, in --list's order
#                      (peer_rejax: the rejax side from .rejax-wheels if there, else the
#                      script builds benchmarks/.rejax-venv with pip, which needs network)
#   profile            benchmarks/profile_chunk.py on configs/quickstart.yaml chunk_evals=1
#                      -> profile_chunk.txt, chunk_hlo.txt, profile_trace.tar.gz, profile.log
#   all                tests bench profile (long: on a machine with a time limit per command, run the steps separately)
# Options: --quick (CPU-sized steps: tests runs only tests/test_benchmarks.py). Environment:
#   PYTHON (python3), OUT (gpu_out), TEST_WORKERS (8), SCALING_BUDGET (420), REJAX_ENV
#   (/tmp/rejax-env: where the rejax side is unpacked).
# Every step runs even if one before it failed; the exit code is non-zero if any failed. Each
# step's output is also written to $OUT/STEP.log as it comes, so a call killed at its time limit
# still returns the logs so far.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-gpu_out}
QUICK=()
# Every benchmark script: these first, then any other benchmarks/*.py (helpers excepted).
BENCHES=(sweep_vs_serial sparse_overhead pipeline_overhead scaling peer_rejax)
for f in benchmarks/*.py; do
  f=${f##*/}; f=${f%.py}
  case " ${BENCHES[*]} benchlib rejax_side profile_chunk " in *" $f "*) ;; *) BENCHES+=("$f") ;; esac
done
REJAX_WHEELS=.rejax-wheels
REJAX_ENV=${REJAX_ENV:-/tmp/rejax-env}
# The rejax side's packages beyond what the project installs (jax, flax, optax, chex, numpy, pyyaml,
# ...): rejax 0.1.3 needs gymnax < 1.0, so these never share a folder with the project's gymnax 1.0.1.
REJAX_SPECS=(rejax==0.1.3 gymnax==0.0.9 distrax==0.1.9 tfp-nightly==0.26.0.dev20261027
             gymnasium==1.3.0 farama-notifications==0.0.6 decorator==5.3.1 gast==0.7.0 dm-tree==0.1.10)

steps=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    bench) steps+=("${BENCHES[@]}") ;;
    all) steps+=(tests "${BENCHES[@]}" profile) ;;
    rejax_wheels|tests|profile) steps+=("$a") ;;
    --list) printf '%s\n' "${BENCHES[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    *) case " ${BENCHES[*]} " in *" $a "*) steps+=("$a"); continue ;; esac
       echo "gpu_all.sh: unknown step or option '$a' (--help lists them)" >&2; exit 2 ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || { echo "gpu_all.sh: name at least one step (--help lists them)" >&2; exit 2; }

rejax_wheels() {  # with network
  mkdir -p "$REJAX_WHEELS"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$REJAX_WHEELS" --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "${REJAX_SPECS[@]}" 2> >(grep -v "^WARNING: Location '" >&2) || return 1
  echo "rejax wheels: $(ls "$REJAX_WHEELS" | wc -l) in $REJAX_WHEELS ($(du -sh "$REJAX_WHEELS" | cut -f1))"
}

rejax_env() {  # a python for the rejax side: this python, with only the rejax wheels on its path
  local probe=(-c "import rejax, gymnax, jax; from importlib.metadata import version; assert version('gymnax').startswith('0.0.'), version('gymnax')")
  if [ -x "$REJAX_ENV/bin/python" ] && env -u PYTHONPATH "$REJAX_ENV/bin/python" "${probe[@]}" 2>/dev/null; then
    return 0
  fi
  ls "$REJAX_WHEELS"/*.whl >/dev/null 2>&1 \
    || { echo "gpu_all.sh: no wheels in $REJAX_WHEELS: run 'bash benchmarks/gpu_all.sh rejax_wheels' with network first" >&2; return 1; }
  rm -rf "$REJAX_ENV" && mkdir -p "$REJAX_ENV/bin" || return 1
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --target "$REJAX_ENV/site" \
    "$REJAX_WHEELS"/*.whl || return 1
  # peer_rejax.py calls <venv>/bin/python with PYTHONPATH removed: this wrapper sets its own
  printf '#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n' "$REJAX_ENV/site" \
    "$("$PY" -c 'import sys; print(sys.executable)')" > "$REJAX_ENV/bin/python"
  chmod +x "$REJAX_ENV/bin/python"
  env -u PYTHONPATH "$REJAX_ENV/bin/python" "${probe[@]}" \
    || { echo "gpu_all.sh: the rejax side does not import (rejax, gymnax 0.0.x, jax) from $REJAX_ENV" >&2; return 1; }
}

run_step() {
  local step=$1
  case "$step" in
    rejax_wheels) rejax_wheels ;;
    tests)
      if [ ${#QUICK[@]} -gt 0 ]; then "$PY" -m pytest -q -n 2 tests/test_benchmarks.py
      else "$PY" -m pytest -q -n "${TEST_WORKERS:-8}" tests
      fi ;;
    scaling)
      if [ ${#QUICK[@]} -gt 0 ]; then "$PY" benchmarks/scaling.py --quick
      else "$PY" benchmarks/scaling.py --budget "${SCALING_BUDGET:-420}"
      fi ;;
    peer_rejax)
      if [ -d "$REJAX_WHEELS" ]; then rejax_env && "$PY" benchmarks/peer_rejax.py "${QUICK[@]}" --venv "$REJAX_ENV"
      else "$PY" benchmarks/peer_rejax.py "${QUICK[@]}"   # builds benchmarks/.rejax-venv with pip (network)
      fi ;;
    profile)   # full: the quickstart with 1 evaluation (1000 env steps) per chunk, for a smaller trace
      if [ ${#QUICK[@]} -gt 0 ]; then "$PY" benchmarks/profile_chunk.py --quick --out "$OUT"
      else "$PY" benchmarks/profile_chunk.py --out "$OUT" configs/quickstart.yaml chunk_evals=1
      fi ;;
    *) "$PY" "benchmarks/$step.py" "${QUICK[@]}" ;;
  esac
}

mkdir -p "$OUT"
echo "# gpu_all.sh ${QUICK[*]} ${steps[*]} | OUT=$OUT | $(date -u +%FT%TZ) | $(uptime)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
[ "${steps[*]}" = rejax_wheels ] || "$PY" -c 'import sys, jax; print(f"# python {sys.version.split()[0]} | jax {jax.__version__} | {jax.devices()}")'

failed=() summary=()
for step in "${steps[@]}"; do
  echo "## $step"
  start=$SECONDS
  ( export PYTHONUNBUFFERED=1; run_step "$step" ) 2>&1 | tee "$OUT/$step.log"
  rc=${PIPESTATUS[0]}
  summary+=("$step: exit $rc in $((SECONDS - start)) s")
  [ "$rc" -eq 0 ] || failed+=("$step")
done
echo "## summary"
printf '  %s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "gpu_all.sh: FAILED: ${failed[*]}" >&2; exit 1; }
