# Sourced by the scripts in this folder: makes `python3` the project's Python.
# That is the active virtualenv or conda environment when there is one; else the project's .venv,
# which scripts/setup.sh creates when python3 is an externally-managed system Python (PEP 668, as
# on Debian 12+ and Ubuntu 23.04+); else python3 as it is.
project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project_venv="$project_root/.venv"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] && [ -x "$project_venv/bin/python3" ]; then
  export VIRTUAL_ENV="$project_venv"
  export PATH="$project_venv/bin:$PATH"
fi

# True when pip may not install into python3: no environment is active and python3 is a
# distribution's externally-managed interpreter.
python_is_externally_managed() {
  [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] && python3 -c '
import os, sys, sysconfig
sys.exit(0 if os.path.isfile(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'
}
