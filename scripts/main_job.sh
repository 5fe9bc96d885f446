#!/usr/bin/env bash
# The main job, on the embedded default dataset (Fashion-MNIST from Debian's
# dataset-fashion-mnist): train a small RegNet and evaluate it, fine-tune it with
# quantization-aware training, convert every TFLite variant, verify them on the LiteRT runtime
# and print the variant table, leaving the models and their metadata in the Android demo's assets
# and in web_demo/models for the web page.
# Every step resumes or redoes cleanly when run again. Usage: scripts/main_job.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh
run_dir="${1:-runs/fashion_mnist}"

python3 -m tools.train --model_dir "$run_dir"
python3 -m tools.qat --model_dir "$run_dir"
python3 -m tools.convert --model "$run_dir" --android_assets android_demo/app/src/main/assets \
  --web_assets web_demo/models
echo "main job done: run, reports and models in $run_dir; TFLite files in $run_dir/tflite"
