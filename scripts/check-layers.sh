#!/usr/bin/env bash
# check-layers.sh: the import rule of docs/architecture.md, checked.
#
# A module may use only its own layer and the layers below it:
#
#   4 cmd                       src/cmd/
#   3 tap, deploy               src/tap/, src/deploy/
#   2 transcript                src/transcript/
#   1 protocol                  src/protocol/
#   0 leaves                    every other top-level module (src/config.rs, ...)
#
# It reads every `crate::NAME` path in src/ (and `super::NAME` where `super`
# is the crate root) outside comments, and prints FILE:LINE for each one that
# reaches up. Unit tests (`#[cfg(test)] mod … {` … `}` at column 0) follow the
# same rule; ALLOW_IN_TESTS lists the exceptions, each with its reason.
# A top-level directory that is no layer is an error too: give it one here.
#
# Usage: scripts/check-layers.sh [SRC_DIR]   (default: src next to this script)
# Exit status: 0 when the rule holds, 1 when it does not.
set -euo pipefail

src=${1:-"$(cd "$(dirname "$0")/.." && pwd)/src"}

# Test-only imports that reach up, as "FILE:MODULE  reason".
ALLOW_IN_TESTS=()

rank_of_dir() {
  case "$1" in
    cmd) echo 4 ;;
    tap | deploy) echo 3 ;;
    transcript) echo 2 ;;
    protocol) echo 1 ;;
    *) echo "" ;;
  esac
}

# The layer of a top-level module name, or "" if there is no such module.
rank_of_module() {
  local m=$1
  if [[ -d "$src/$m" ]]; then
    rank_of_dir "$m"
  elif [[ -f "$src/$m.rs" ]]; then
    echo 0
  else
    echo ""
  fi
}

layer_name() {
  case "$1" in
    4) echo cmd ;; 3) echo "tap/deploy" ;; 2) echo transcript ;; 1) echo protocol ;; 0) echo leaf ;;
  esac
}

status=0
for d in "$src"/*/; do
  d=$(basename "$d")
  if [[ -z "$(rank_of_dir "$d")" ]]; then
    echo "src/$d/: a top-level directory that is no layer; add it to scripts/check-layers.sh and docs/architecture.md"
    status=1
  fi
done

while IFS= read -r -d '' file; do
  rel=${file#"$src"/}
  case "$rel" in
    lib.rs | main.rs) continue ;; # the crate root declares every layer; main is above them all
  esac
  top=${rel%%/*}
  top=${top%.rs}
  own=$(rank_of_module "$top")
  # A file directly in src/ (or a layer's mod.rs) has the crate root as `super`.
  root_super=0
  if [[ "$rel" != */* || "$rel" == */mod.rs && "$rel" != */*/* ]]; then
    root_super=1
  fi
  # FILE-LINE <TAB> in_test <TAB> module, one per reference.
  while IFS=$'\t' read -r line in_test mod; do
    want=$(rank_of_module "$mod")
    [[ -z "$want" ]] && continue # an item of the crate root, or not a module
    ((want <= own)) && continue
    if [[ "$in_test" == 1 ]]; then
      allowed=0
      for a in "${ALLOW_IN_TESTS[@]}"; do
        [[ "$a" == "$rel:$mod" ]] && allowed=1
      done
      ((allowed)) && continue
    fi
    where=""
    [[ "$in_test" == 1 ]] && where=" in a test"
    echo "src/$rel:$line: $(layer_name "$own") module uses crate::$mod ($(layer_name "$want"), a layer above)$where"
    status=1
  done < <(awk -v root_super="$root_super" '
    # Prints "LINE<TAB>IN_TEST<TAB>MODULE" for each crate::MODULE in `text`.
    function refs(text, nr, t,    s, m, p, is_crate, n, items, i, it) {
      s = text
      while (match(s, /(^|[^A-Za-z0-9_$])(crate|super)::[A-Za-z_][A-Za-z0-9_]*/)) {
        m = substr(s, RSTART, RLENGTH)
        sub(/^[^A-Za-z]*/, "", m)
        split(m, p, "::")
        if (p[1] == "crate" || root_super == 1) printf "%d\t%d\t%s\n", nr, t, p[2]
        s = substr(s, RSTART + RLENGTH)
      }
      s = text
      while (match(s, /(crate|super)::\{[^}]*\}/)) {
        m = substr(s, RSTART, RLENGTH)
        is_crate = (substr(m, 1, 5) == "crate")
        sub(/^[a-z]+::\{/, "", m); sub(/\}$/, "", m)
        n = split(m, items, ",")
        for (i = 1; i <= n; i++) {
          it = items[i]; gsub(/^[ \t]+|[ \t]+$/, "", it); sub(/::.*/, "", it); sub(/ .*/, "", it)
          if (it != "" && (is_crate || root_super == 1)) printf "%d\t%d\t%s\n", nr, t, it
        }
        s = substr(s, RSTART + RLENGTH)
      }
    }
    /^#\[cfg\(test\)\]/ { armed = 1; next }
    armed && /^(pub(\([a-z]+\))? )?mod [a-z_0-9]+ \{/ { in_test = 1; armed = 0; next }
    { armed = 0 }
    in_test && /^\}/ { in_test = 0; next }
    {
      line = $0
      sub(/^[ \t]*\/\/.*/, "", line)          # a comment line (doc links are no imports)
      sub(/[ \t]\/\/ .*$/, "", line)          # a trailing comment
      gsub(/"([^"\\]|\\.)*"/, "\"\"", line)   # string literals
      if (group != "") {                      # inside a multi-line `use crate::{`
        group = group " " line
        if (line ~ /\}/) { refs(group, group_nr, in_test ? 1 : 0); group = "" }
        next
      }
      if (line ~ /(crate|super)::\{[^}]*$/) { group = line; group_nr = NR; next }
      refs(line, NR, in_test ? 1 : 0)
    }
  ' "$file")
done < <(find "$src" -name '*.rs' -print0 | sort -z)

if ((status == 0)); then
  echo "check-layers: every import goes down (cmd > tap, deploy > transcript > protocol > leaves)"
fi
exit "$status"
