# Source this (bash) to work in the project's environment: the venv, the ROS 2 wheels as an
# ament prefix, and the colcon install space when it has been built.
_xml_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$_xml_root/.venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}";; esac
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# Discovery stays on this machine unless the caller says otherwise (a robot sets SUBNET).
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
if [[ -f "$_xml_root/install/setup.bash" ]]; then
  # shellcheck disable=SC1091
  source "$_xml_root/install/setup.bash"
fi
unset _xml_root
# The source tree comes first, so an edited or new module needs no rebuild (new interfaces,
# executables and share/ files still do: `make build`).
_xml_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../src" && pwd)
case ":${PYTHONPATH:-}:" in *":$_xml_src:"*) ;; *) export PYTHONPATH="$_xml_src${PYTHONPATH:+:$PYTHONPATH}";; esac
unset _xml_src
