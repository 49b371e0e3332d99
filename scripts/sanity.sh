#!/usr/bin/env bash
# ansible-test sanity on the collection's plugins, meta/runtime.yml and changelog fragments,
# with the controller's Python and no containers (--local).
#
# ansible-test only works from a real .../ansible_collections/<namespace>/<name>/ directory
# that no enclosing git checkout claims (inside this checkout it would list only committed,
# unignored files), so the working tree's files (committed or not, less .gitignore's) are
# copied to a temporary one. Next to it go the collections the runtime `ansible` package
# brings (amazon.aws, openstack.cloud, ...), which our modules import and document from.
#
# ansible-test installs each test's pinned requirements from PyPI into its own venvs, but
# first fetches pip's bootstrap script from a host outside the registries this project may
# use; its cache slot gets a stand-in that installs the same pinned pip through ensurepip and
# PyPI. The venvs and that script live in the project's cache (HOME=$SANITY_HOME), never in
# the user's ~/.ansible.
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SCIPION_CLOUD_CACHE:-$HOME/.cache/scipion_cloud}"
SANITY_HOME="$cache/ansible-test-home"
python_version="$(python3 -c 'import sys; print("{0}.{1}".format(*sys.version_info))')"

pip_version="$(python3 - "$python_version" <<'EOF'
import sys
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
EOF
)" || { echo "sanity: cannot tell which pip ansible-test bootstraps (its internals changed?); see scripts/sanity.sh" >&2; exit 2; }
get_pip="$SANITY_HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$get_pip")"
cat > "$get_pip.new" <<'EOF'
# Stand-in for get-pip.py, written by scripts/sanity.sh: ansible-test runs it in a venv made
# without pip, with pip's own arguments (the pinned pip) plus get-pip's --no-setuptools/--no-wheel.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
pip_args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade", *pip_args])
EOF
mv "$get_pip.new" "$get_pip"

root="$(mktemp -d "${TMPDIR:-/tmp}/scipion-cloud-sanity.XXXXXX")"
trap 'rm -rf "$root"' EXIT
collection="$root/ansible_collections/i2pc/scipion_cloud"
mkdir -p "$collection"
# (Files deleted but not yet committed are left out.)
cd "$project"
git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
  | xargs -0 -r cp --parents -t "$collection" --
installed="$(python3 -c 'import ansible_collections, os; print(os.path.realpath(ansible_collections.__path__[0]))')"
for namespace in "$installed"/*/; do
  namespace="$(basename "$namespace")"
  [ "$namespace" = i2pc ] || [ "$namespace" = __pycache__ ] || ln -s "$installed/$namespace" "$root/ansible_collections/$namespace"
done

cd "$collection"
# Targets: what ships as plugins, plus the metadata and changelog that describe them. The
# repository's other Python (tests, scripts, machine-side files) is checked by ruff and by
# scripts/check-target-python.py. Every sanity test runs, pylint (about two minutes) included.
env -u ANSIBLE_CONFIG HOME="$SANITY_HOME" \
  ansible-test sanity --local --python "$python_version" --color no "$@" plugins/ meta/ changelogs/
