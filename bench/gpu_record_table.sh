#!/usr/bin/env bash
# Record a MiniLM table (bench/record_table.py) on a GPU machine with no network.
# Here (with the project installed):
#     .venv/bin/python bench/record_table.py --save-data .carry/rt-4096.npz
#     .venv/bin/python bench/device_pack.py pack --data .carry/rt-4096.npz --out .carry/minilm.npz
# There, with .carry/ copied over:
#     bash bench/gpu_record_table.sh OUT_DIR [WORKERS]
#     SPACE=layers bash bench/gpu_record_table.sh OUT_DIR [WORKERS]   # the 660-training layer-granular table
#     # the product's own space at layer granularity, for a surrogate (bench/search_efficiency.py; --model minilm there):
#     SPACE=product EXTRA="--granularity layer --selections 0 --sample 600 --repeats 30" bash bench/gpu_record_table.sh OUT_DIR
# Another task: tokenise it here (record_table.py --data FILE --save-data .carry/T.npz), pack the model with
# that data, and name both there: DATA=.carry/T.npz TASK=T SPACE=layers bash bench/gpu_record_table.sh OUT_DIR
# Parts are kept in OUT_DIR/parts.tgz; an interrupted recording continues from PARTS=FILE (an earlier parts.tgz,
# carried over in .carry/), or from the table alone if it is at /tmp/table/ (record_table.py restores its parts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
out=$1; workers=${2:-14}
space=${SPACE:-modules}
task=${TASK:-rotten_tomatoes}
PYTHON=${PYTHON:-python3}
mkdir -p "$out" /tmp/table
[ -d /tmp/minilm ] || "$PYTHON" bench/device_pack.py unpack .carry/minilm.npz /tmp/minilm
[ -n "${PARTS:-}" ] && tar xzf "$PARTS" -C /tmp/table
status=0
# No training starts after RECORD_SECONDS (those running finish and are kept); `timeout` is the hard cap.
seconds=${RECORD_SECONDS:-300}
timeout "$((seconds + 120))" "$PYTHON" bench/record_table.py --model /tmp/minilm --data-cache "${DATA:-.carry/rt-4096.npz}" \
    --space "$space" --out "/tmp/table/minilm-$task-$space.parquet" --workers "$workers" --threads 1 \
    --stop-after "$seconds" ${EXTRA:-} || status=$?
tar czf "$out/parts.tgz" -C /tmp/table .
cp /tmp/table/*.parquet "$out/" 2>/dev/null || true
exit $status
