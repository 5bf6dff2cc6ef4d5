#!/usr/bin/env bash
# Runs the Node-RED Flow Library's validator (node-red-dev validate, the scorecard flows.nodered.org
# shows for a package) on this package as npm packs it, without reaching flows.nodered.org, prints
# every check, and fails when a check fails other than P04 (scoped name) and D03 (keyv stays on 5).
#   scripts/flow-library-validate.sh            (npm run validate)
# Needs Node.js and npm with access to the npm registry: node-red-dev@0.1.6 is installed from it into
# a folder of its own under $TMPDIR (kept for the next run), node-red's versions are read with
# `npm view node-red`, and the validator's D02/D03 checks ask the registry about the dependencies.
# scripts/flow-library-offline.js answers the validator's two direct requests (see there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=${TMPDIR:-/tmp}
tool="$tmp/flow-library-validator-0.1.6"
work=$(mktemp -d "$tmp/flow-library-validate.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -x "$tool/node_modules/.bin/node-red-dev" ]; then
  echo "installing node-red-dev@0.1.6 into $tool"
  mkdir -p "$tool"
  (cd "$tool" && npm install --no-audit --no-fund --loglevel=error --no-save node-red-dev@0.1.6 >/dev/null)
fi
npm view node-red --json >"$work/node-red.json"

# the package as it is published: npm pack builds it (prepack), the tarball is unpacked; the validator's
# D03 reads the installed dependencies, which are the repository's own (npm ci installed them)
(cd "$root" && npm pack --silent --pack-destination "$work" >"$work/tarball-name")
tar -xzf "$work/$(tail -n 1 "$work/tarball-name")" -C "$work"
ln -s "$root/node_modules" "$work/package/node_modules"

echo
FLOW_LIBRARY_NODE_RED="$work/node-red.json" node -r "$root/scripts/flow-library-offline.js" \
  "$tool/node_modules/node-red-dev/bin/run" validate -p "$work/package" -o "$work/scorecard.json" </dev/null 2>&1 | tee "$work/report.txt"
node "$root/scripts/flow-library-scorecard.js" "$work/scorecard.json" "$work/report.txt" "$work/package/package.json"
