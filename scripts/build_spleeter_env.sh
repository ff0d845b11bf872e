#!/usr/bin/env bash
# Build Spleeter's own Python environment without lid-spark installed: for cluster node init scripts
# (e.g. a Databricks cluster-scoped init script) and images. Same result as `lid-spark spleeter_env`.
#
#   scripts/build_spleeter_env.sh [ENV_DIR] [REQUIREMENTS]
#   SPLEETER_PYTHON=python3.10 scripts/build_spleeter_env.sh /local_disk0/.venv-spleeter /Workspace/.../spleeter.txt
#
# Idempotent: an environment stamped with the same requirements hash is left as is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_dir="${1:-$here/.venv-spleeter}"
requirements="${2:-$here/requirements/spleeter.txt}"
python="${SPLEETER_PYTHON:-python3.11}"

command -v "$python" >/dev/null || { echo "needs $python (Spleeter 2.4: Python 3.8-3.11; set SPLEETER_PYTHON)" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))' \
  || { echo "$python is not Python 3.8-3.11 (set SPLEETER_PYTHON)" >&2; exit 1; }
digest="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$env_dir/bin/python" ] && [ "$(cat "$env_dir/.lid-spark-spleeter" 2>/dev/null)" = "$digest" ]; then
  echo "Spleeter environment $env_dir is up to date"; exit 0
fi
[ -x "$env_dir/bin/python" ] || "$python" -m venv "$env_dir"
env -u PYTHONPATH -u PYTHONHOME "$env_dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
env -u PYTHONPATH -u PYTHONHOME TF_CPP_MIN_LOG_LEVEL=2 "$env_dir/bin/python" -c "import spleeter.separator, tensorflow"
echo "$digest" > "$env_dir/.lid-spark-spleeter"
echo "Spleeter environment ready: $env_dir/bin/python"
