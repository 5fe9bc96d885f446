#!/usr/bin/env bash
# Installs everything regnet_keras, its tools and its tests need on a fresh Debian machine:
# Debian packages with apt-get, then the pinned Python packages and the project itself.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  bazel-bootstrap        # offline `bazel build` of the BUILD targets
  dataset-fashion-mnist  # the training job's embedded default dataset (IDX files)
  kotlin                 # kotlinc 1.3: compiles the Android demo's core module for its JUnit tests
  junit4                 # JUnit 4 (+ hamcrest) for those tests
  chromium               # headless browser of the web demo's end-to-end test (/usr/lib/chromium)
)
# Node and npm for the web demo (its tests and LiteRT.js); an existing Node (>= 18) is kept.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || debian_packages+=(nodejs npm)
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"
  fi
else
  echo "apt-get not found: install ${debian_packages[*]} with your package manager." >&2
fi

python3 -m pip install -q --disable-pip-version-check -r requirements.txt
python3 -m pip install -q --disable-pip-version-check --no-deps -e .
# The web demo's pinned LiteRT.js and puppeteer-core (web_demo/package-lock.json).
(cd web_demo && npm ci --no-audit --no-fund)
