#!/usr/bin/env bash
# Installs everything regnet_keras, its tools and its tests need on a fresh Debian/Ubuntu machine:
# Debian packages with apt-get, then the pinned Python packages (requirements-test.txt, which
# includes requirements.txt) and the project itself, into the project's Python (see
# environment.sh): the active virtualenv/conda environment, else python3, else, where python3 is
# an externally-managed system Python, a .venv that this script creates in the project.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh

debian_packages=(
  bazel-bootstrap        # offline `bazel build` of the BUILD targets
  dataset-fashion-mnist  # the training job's embedded default dataset (IDX files)
  kotlin                 # kotlinc 1.3: compiles the Android demo's core module for its JUnit tests
  junit4                 # JUnit 4 (+ hamcrest) for those tests
  libgoogle-gson-java    # Gson 2.10, the core module's JSON reader (the app takes 2.10 from Maven Central)
  chromium               # headless browser of the web demo's end-to-end test (/usr/lib/chromium)
)
# Node and npm for the web demo (its tests and LiteRT.js); an existing Node (>= 18) is kept.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || debian_packages+=(nodejs npm)
create_venv=false
if python_is_externally_managed; then
  create_venv=true
  debian_packages+=(python3-venv)  # `python3 -m venv` with pip, for the project's .venv
fi

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

if $create_venv; then
  echo "python3 ($(command -v python3)) is externally managed: installing into $project_venv"
  python3 -m venv "$project_venv"
  source scripts/environment.sh
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-test.txt
python3 -m pip install -q --disable-pip-version-check --no-deps -e .
# The web demo's pinned LiteRT.js and puppeteer-core (web_demo/package-lock.json).
(cd web_demo && npm ci --no-audit --no-fund)
if [ -n "${VIRTUAL_ENV:-}" ] && [ "$VIRTUAL_ENV" = "$project_venv" ]; then
  echo "set-up done; scripts/*.sh use $project_venv by themselves. To run the tools by hand:" \
       "source .venv/bin/activate"
fi
