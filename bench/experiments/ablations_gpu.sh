#!/usr/bin/env bash
# Run several small-model ablations (`python -m limo.ablate recipe=<r>`) side by side on one GPU machine without
# network, within a deadline, and pack what a report needs (every run's curation accounting, training log, evaluation
# samples and markers; no model weights) into one archive, so that the same `python -m limo.ablate recipe=<r>` with the
# same overrides rewrites the tables elsewhere from those files (every step reused, docs/ablation.md "Resuming").
#
# Usage (from the repository root):
#   bash bench/experiments/ablations_gpu.sh --wheels DIR --model FILE_OR_PARTS --out DIR [--deadline S] \
#       [--set key=value ...] recipe[:jobs] [recipe[:jobs] ...]
#
#   --wheels DIR   wheels to install first (bench/gpu/gpu_wheels.py fetches them) into /tmp/limo-site, put first on
#                  PYTHONPATH; leave it out where limo's environment is installed
#   --model        the student as a GGUF file, or the parts of an xz-compressed one (a quoted glob, joined in order):
#                  it is decompressed to /tmp/smol.gguf (the path every recipe gets as model.path, so that the
#                  markers of a report-only rerun match) and converted once before any job starts
#   --deadline S   seconds for all ablations together (default 480); a job still running then is stopped (its
#                  finished steps are kept and resume) and the archive is packed anyway
#   --set k=v      an override for every recipe (repeatable), e.g. --set train.args.use_cpu=false
#   --before R CMD a shell command run before recipe R's ablation (in R's own lane, the others do not wait), e.g. the
#                  student's samples that smol_ablate_lemma reads; it sees $SETS, the --set overrides as words
#   recipe:jobs    an ablation recipe and its --jobs (default 2); all recipes start at once
#
# Writes <out>/ablations.tar.xz (split into <out>/ablations.tar.xz.part-NN of 15 MiB when larger: a device tool may
# return few files) holding outputs/ without weights and each recipe's log (outputs/ablation-logs/<recipe>.log), and
# <out>/summary.txt (each recipe's exit status and seconds, the card, the model's sha256); the end of each log is
# printed.
# The figures of a run: docs/results.md and docs/performance.md name the card, date and command.
#
# How it ran on one H200 without network (bench/README.md, "Ablations on a GPU machine"): the curations first, on the
# CPU machine (`limo.ablate` there until its first training step; the semantic decontamination's MiniLM is 80 MB and
# does not travel), their folders packed without work/ and reports; then two calls of the device tool: the wheels
# (`bench/gpu/gpu_wheels.py --leave-out ...`) with the first part of the xz'd student, then the second part, the
# curations and this script; the same `limo.ablate` command back on the CPU machine reuses every step.
set -uo pipefail

WHEELS="" MODEL="" OUT="" DEADLINE=480 SETS=() RECIPES=()
declare -A BEFORE
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --set) SETS+=("$2"); shift 2 ;;
    --before) BEFORE[$2]=$3; shift 3 ;;
    -*) echo "ablations_gpu.sh: error: unknown option $1" >&2; exit 2 ;;
    *) RECIPES+=("$1"); shift ;;
  esac
done
[ -n "$OUT" ] && [ -n "$MODEL" ] && [ ${#RECIPES[@]} -gt 0 ] \
  || { echo "ablations_gpu.sh: error: --out, --model and at least one recipe are needed" >&2; exit 2; }
mkdir -p "$OUT" outputs/ablation-logs
LOGS=outputs/ablation-logs
started=$(date +%s)
summary="$OUT/summary.txt"
{ date -u +"started %Y-%m-%dT%H:%M:%SZ"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo "no nvidia-smi"; nproc | sed 's/^/cores /'; } >"$summary"

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
export LIMO_CACHE_DIR=${LIMO_CACHE_DIR:-/tmp/limo-cache}
if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/limo-site \
    "$WHEELS"/*.whl || { echo "ablations_gpu.sh: error: installing the wheels of $WHEELS failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/limo-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

# The student: one GGUF file, or an xz archive in parts (a device that takes 64 MiB a call gets it in two).
# shellcheck disable=SC2086  # MODEL may be a glob of parts
parts=$(ls $MODEL 2>/dev/null | sort)
[ -n "$parts" ] || { echo "ablations_gpu.sh: error: no model file matches $MODEL" >&2; exit 2; }
case "$parts" in
  *.xz*) cat $parts | xz -d -T0 >/tmp/smol.gguf ;;
  *) cp "$parts" /tmp/smol.gguf ;;
esac || { echo "ablations_gpu.sh: error: could not unpack the model $MODEL" >&2; exit 1; }
sha256sum /tmp/smol.gguf | cut -c1-64 | sed 's/^/model sha256 /' >>"$summary"
python3 -c "from eval.backends.model_source import resolve_model_path as r; print('model converted', r('/tmp/smol.gguf'))" \
  >>"$summary" 2>"$LOGS/convert.log" || { tail -5 "$LOGS/convert.log" >&2; echo "ablations_gpu.sh: error: converting the model failed" >&2; exit 1; }

left=$((DEADLINE - ($(date +%s) - started)))
for spec in "${RECIPES[@]}"; do
  recipe=${spec%%:*}; jobs=2; [ "$spec" != "$recipe" ] && jobs=${spec#*:}
  ( t0=$(date +%s)
    if [ -n "${BEFORE[$recipe]:-}" ]; then
      SETS="${SETS[*]}" timeout --signal=TERM --kill-after=20 "$left" bash -c "${BEFORE[$recipe]}" >"$LOGS/$recipe.before.log" 2>&1 \
        || { echo "$recipe: its --before command failed (exit $?)" >>"$summary"; exit 1; }
      left=$((DEADLINE - ($(date +%s) - started)))
    fi
    timeout --signal=TERM --kill-after=20 "$left" python3 -m limo.ablate "recipe=$recipe" model.path=/tmp/smol.gguf \
      "${SETS[@]}" --jobs "$jobs" >"$LOGS/$recipe.log" 2>&1
    echo "$recipe exit $? after $(($(date +%s) - t0)) s" >>"$summary" ) &
done
wait

# What a report needs, not the weights: the archive stays a few MiB. A trained model's folder is left out whole: a
# folder without its weights would read as another model to the evaluation's marker, where an absent one is unchanged.
tar -C . --exclude='*/train/model' --exclude='*.safetensors' --exclude='*.bin' --exclude='*.gguf' --exclude='*.pt' --exclude='*.pth' \
  --exclude='checkpoint-*' --exclude='*/export/*' -I 'xz -T0 -3' -cf "$OUT/ablations.tar.xz" outputs 2>>"$summary"
size=$(stat -c %s "$OUT/ablations.tar.xz")
if [ "$size" -gt $((15 * 1024 * 1024)) ]; then
  split -b 15M -d "$OUT/ablations.tar.xz" "$OUT/ablations.tar.xz.part-" && rm "$OUT/ablations.tar.xz"
fi
echo "packed $size bytes after $(($(date +%s) - started)) s" >>"$summary"
for log in "$LOGS"/*.log; do echo "== $log"; tail -c 1500 "$log"; done
cat "$summary"
