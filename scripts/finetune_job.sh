#!/usr/bin/env bash
# Fine-tunes a pretrained RegNet on your own image folders, all the way to the phone: tools.train
# with the finetune preset from WEIGHTS, quantization-aware training, conversion of every TFLite
# variant (verified on the LiteRT runtime), leaving the Android demo's models, labels and
# metadata in its assets, as scripts/main_job.sh does for Fashion-MNIST. Every step resumes or
# redoes cleanly when run again. See docs/FINETUNING.md.
#
# Usage: scripts/finetune_job.sh DATA_DIR [RUN_DIR]
#   DATA_DIR  one sub-folder of images per class (nested folders allowed), or train/ and test/
#   RUN_DIR   default runs/finetune_<name of DATA_DIR>
# Environment: WEIGHTS (default "imagenet", which needs MODEL), MODEL (a zoo name, default
#   RegNetY002, used only for weights without a design of their own), IMAGE_SIZE (default 224),
#   EXTRA_TRAIN_FLAGS (more tools.train flags, e.g. "--epochs 20 --class_weights balanced").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: scripts/finetune_job.sh DATA_DIR [RUN_DIR]  (DATA_DIR: one folder per class)" >&2
  exit 2
fi
data_dir="$1"
run_dir="${2:-runs/finetune_$(basename "$(cd "$data_dir" && pwd)")}"
weights="${WEIGHTS:-imagenet}"
model_flags=()
if [ -n "${MODEL:-}" ]; then
  model_flags=(--model "$MODEL")
elif [ "$weights" = "imagenet" ]; then
  model_flags=(--model RegNetY002)
fi

# shellcheck disable=SC2086  # EXTRA_TRAIN_FLAGS is a list of flags
python3 -m tools.train --preset finetune --weights "$weights" "${model_flags[@]}" \
  --dataset folder --data_dir "$data_dir" --image_size "${IMAGE_SIZE:-224}" \
  --model_dir "$run_dir" ${EXTRA_TRAIN_FLAGS:-}
python3 -m tools.qat --model_dir "$run_dir" --batch_size 32
python3 -m tools.convert --model "$run_dir" --android_assets android_demo/app/src/main/assets
echo "fine-tune job done: run, reports and models in $run_dir; TFLite files in $run_dir/tflite"
