#!/usr/bin/env bash
# Print colcon's `--packages-skip NAME...` for the packages under vendor/ that this machine's
# ROS 2 already provides (an ament prefix outside this workspace's install/ indexes them), so
# `make build` builds a vendored interface only where the system has none and a robot with
# ROS 2 installed uses its own (docs/frames.md). Prints nothing when every vendored package is
# needed. A vendored package skipped now but built by an earlier run would shadow the system's
# from install/ (tools/env.sh sources install/setup.bash): its build and install folders are
# removed, with a note on stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
skip=()
for manifest in "$root"/vendor/*/package.xml; do
  [[ -f $manifest ]] || continue
  name=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$manifest" | head -n 1)
  IFS=: read -r -a prefixes <<< "${AMENT_PREFIX_PATH:-}"
  for prefix in "${prefixes[@]}"; do
    case $prefix in "" | "$root/install" | "$root/install/"*) continue ;; esac
    if [[ -e $prefix/share/ament_index/resource_index/packages/$name ]]; then
      skip+=("$name")
      if [[ -e $root/install/$name || -e $root/build/$name ]]; then
        echo "[build] $name comes from $prefix: removing the vendored build in install/$name, build/$name" >&2
        rm -rf "${root:?}/install/$name" "${root:?}/build/$name"
      fi
      break
    fi
  done
done
if ((${#skip[@]})); then
  echo "--packages-skip ${skip[*]}"
fi
