#!/usr/bin/env bash
# Recompile contract/krypton.py into a temporary directory and fail if the
# result differs from the committed contract/build/krypton.nef or
# contract/build/krypton.manifest.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ! "$here/compile.sh" "$tmp" >"$tmp/compile.log" 2>&1; then
    cat "$tmp/compile.log" >&2
    echo "check.sh: FAIL: contract/krypton.py does not compile" >&2
    exit 1
fi

status=0
for f in krypton.nef krypton.manifest.json; do
    if [ ! -f "$here/build/$f" ]; then
        echo "check.sh: FAIL: contract/build/$f is missing" >&2
        status=1
    elif ! cmp -s "$tmp/$f" "$here/build/$f"; then
        echo "check.sh: FAIL: contract/build/$f differs from a fresh compile of contract/krypton.py" >&2
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    echo "check.sh: run contract/compile.sh and commit contract/build/" >&2
    exit 1
fi
echo "check.sh: OK: contract/build matches contract/krypton.py"
