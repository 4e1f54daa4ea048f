# What dev/run and dev/test need besides the Rust toolchain, checked before any build.
# Sourced: `prereqs cc venv node chromium` checks those, installs the missing ones with Debian's
# packages when run as root (as CI runs), without their recommended packages (Chromium's would
# bring a printing and a desktop stack), else prints the exact command and fails.
# Run as a script (`bash dev/prereqs.sh cc venv node chromium`), it does the same.

# Debian package(s) for each prerequisite.
declare -A prereq_packages=(
  [cc]="gcc libc6-dev"
  [venv]="python3-venv"
  [node]="nodejs npm"
  [chromium]="chromium"
  # CI runs the aarch64 bootstrap that `sam build` makes on this x86-64 machine: qemu's user-mode
  # emulator, and the aarch64 glibc its `-L /usr/aarch64-linux-gnu` points at.
  [qemu]="qemu-user libc6-arm64-cross"
)

prereq_present() {
  case "$1" in
    cc) command -v cc >/dev/null 2>&1 ;;
    venv) command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' 2>/dev/null ;;
    node) command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ;;
    chromium) [ -x "${CHROMIUM:-/usr/bin/chromium}" ] ;;
    qemu) command -v qemu-aarch64 >/dev/null 2>&1 && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] ;;
  esac
}

prereqs() {
  local missing=() packages=() name
  if ! command -v cargo >/dev/null 2>&1; then
    echo "dev: the Rust toolchain (cargo) is missing: install it with rustup (https://rustup.rs)" >&2
    return 1
  fi
  for name in "$@"; do
    if ! prereq_present "$name"; then
      missing+=("$name")
      packages+=(${prereq_packages[$name]})
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev: missing ${missing[*]} (Debian packages: ${packages[*]})" >&2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev: installing them: apt-get install --no-install-recommends ${packages[*]}" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
    for name in "${missing[@]}"; do
      if ! prereq_present "$name"; then
        echo "dev: $name is still missing after apt-get install" >&2
        return 1
      fi
    done
    return 0
  fi
  echo "dev: install them first, then run this again:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${packages[*]}" >&2
  if [[ " ${missing[*]} " == *" chromium "* ]]; then
    echo "  (or set CHROMIUM to a Chromium or Chrome binary)" >&2
  fi
  return 1
}

# Installs the npm packages of folder $1 ($2 says what they are for) unless they are current.
npm_deps() {
  if [ -d "$1/node_modules" ] && [ ! "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    return 0
  fi
  echo "dev: installing $2 from npm ($1)" >&2
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  prereqs "$@"
fi
