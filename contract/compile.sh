#!/usr/bin/env bash
# Compile contract/krypton.py with neo3-boa 1.3.0 into contract/build (or into
# the directory given as $1). Output is deterministic:
#   * no --debug, so no .nefdbgnfo (it holds absolute paths);
#   * neo3-boa 1.3.0 collects events in a set of objects, so the order of
#     "abi.events" in the manifest changes from run to run (PYTHONHASHSEED does
#     not help). We rewrite the manifest with the events sorted by name, in the
#     compiler's own JSON format (indent 4, no trailing newline). Members of
#     union types ("returnunion") come from a set too and are sorted as well. The NEF is
#     unaffected, and so is the contract hash (sender + NEF checksum + name).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${KRYPTON_VENV:-$HOME/.cache/krypton/venv}"
boa="$venv/bin/neo3-boa"
py="$venv/bin/python"
out="${1:-$here/build}"

if [ ! -x "$boa" ]; then
    echo "compile.sh: neo3-boa not found at $boa (set KRYPTON_VENV to a venv with neo3-boa==1.3.0)" >&2
    exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Compile from inside contract/ with a relative input path.
(cd "$here" && PYTHONHASHSEED=0 "$boa" compile krypton.py -o "$out/krypton.nef" --log-level WARNING)

"$py" - "$out/krypton.manifest.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    manifest = json.load(f)
manifest["abi"]["events"].sort(key=lambda e: e["name"])

# Union types ("str | X") are also kept in a set: sort their members too.
def sort_unions(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("union") and isinstance(value, list):
                value.sort(key=lambda t: json.dumps(t, sort_keys=True))
            sort_unions(value)
    elif isinstance(node, list):
        for item in node:
            sort_unions(item)

sort_unions(manifest["abi"])
with open(path, "w") as f:
    f.write(json.dumps(manifest, indent=4))
PY
