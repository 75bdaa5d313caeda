#!/usr/bin/env bash
# Installs what Broker Lab needs and is missing; prints nothing when nothing is missing.
#   - what each broker needs: its package's setup.sh (lab/brokers/*/setup.sh) says, with
#     need_pkg / need_cmd for Debian packages and after_apt steps that assemble software
#     from Maven Central or the npm registry into ~/.cache/broker-lab (never the repo)
#   - Debian packages for the lab itself: tmux, Chromium (the report's browser tests), npm
#   - a virtual environment (.venv) with the project and its dev tools
#   - uPlot, the report's chart library, from the npm registry into ~/.cache/broker-lab/npm
# Safe to run again and again; `make setup` runs it, and so do `make run|demo|test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
cache=${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/broker-lab}
uplot_version=$(sed -n 's/^UPLOT_VERSION = "\(.*\)".*/\1/p' "$repo/lab/report/assets.py")

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $* (install sudo or run as root)"; fi
}

# --- what the brokers and the lab need ------------------------------------------------
missing=()
after_apt=()  # commands to run once the packages are there (assembling jars, npm packages)
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }
need_cmd() { command -v "$1" >/dev/null || need_pkg "$2"; }  # a command, or the package with it

# Jars of a Maven project (a pom.xml of dependencies) into $cache/NAME, once per pom.
maven_assembly() {
    local name=$1 pom=$2 check=$3 home="$cache/$1" sum
    sum=$(sha256sum "$pom" | cut -d' ' -f1)
    [ "$(cat "$home/.complete" 2>/dev/null)" = "$sum" ] && return 0
    say "assembling $name from Maven Central into $home"
    rm -rf "$home.partial"
    mkdir -p "$home.partial"
    local log="$home.partial/maven.log"
    if ! mvn -B -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$home.partial/libs" >"$log" 2>&1; then
        grep -E 'ERROR|Could not' "$log" | head -n 20 >&2
        die "Maven could not fetch $name (full log: $log)"
    fi
    ls "$home.partial/libs"/$check >/dev/null 2>&1 || die "$check is missing after the Maven build of $name"
    echo "$sum" > "$home.partial/.complete"
    rm -rf "$home"
    mv "$home.partial" "$home"
}

# npm packages (SPEC: name@version ...) into $cache/NAME, once per SPEC. Their install
# scripts do not run unless the caller sets npm_scripts=1 (a package that builds code).
npm_assembly() {
    local name=$1 check=$2 home="$cache/$1"
    shift 2
    [ "$(cat "$home/.complete" 2>/dev/null)" = "$*" ] && return 0
    say "installing $* from the npm registry into $home"
    rm -rf "$home.partial"
    mkdir -p "$home.partial"
    local log="$home.partial/npm.log"
    local scripts=--ignore-scripts
    [ "${npm_scripts:-0}" = 1 ] && scripts=
    if ! npm install --prefix "$home.partial" --no-save --no-audit --no-fund $scripts "$@" \
        >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "npm could not install $* (full log: $log)"
    fi
    [ -e "$home.partial/$check" ] || die "$check is missing after npm installed $*"
    echo "$*" > "$home.partial/.complete"
    rm -rf "$home"
    mv "$home.partial" "$home"
}

for fragment in "$repo"/lab/brokers/*/setup.sh; do
    here=$(dirname "$fragment")
    # shellcheck source=/dev/null
    . "$fragment"
done
need_pkg tmux
need_pkg chromium
need_cmd npm npm
python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkg python3-venv

if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from apt"
    # The lab runs its own instances on its own ports; keep apt from starting the system
    # services (a policy-rc.d that denies every start), and put back whatever was there.
    policy=/usr/sbin/policy-rc.d
    saved=""
    if [ -e "$policy" ]; then saved=$(mktemp); as_root cp -p "$policy" "$saved"; fi
    restore_policy() {
        if [ -n "$saved" ]; then as_root cp -p "$saved" "$policy"; rm -f "$saved"
        else as_root rm -f "$policy"; fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    apt_log=$(mktemp)
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
               --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
        tail -n 20 "$apt_log" >&2
        die "apt-get could not install ${missing[*]}"
    fi
    rm -f "$apt_log"
    restore_policy
    trap - EXIT
fi

# --- Python virtual environment ------------------------------------------------
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed (found $(python3 --version))"
stamp="$venv/.broker-lab-installed"
want=$(cat "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the project into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    log="$venv/install.log"
    if ! { "$venv/bin/pip" install --upgrade pip && "$venv/bin/pip" install -e "$repo[dev]"; } \
        >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "pip could not install the project (full log: $log)"
    fi
    echo "$want" > "$stamp"
fi

# --- what the brokers assemble ---------------------------------------------------------
for step in "${after_apt[@]}"; do
    eval "$step"
done

# --- uPlot from the npm registry -------------------------------------------------
# `lab report` embeds it in every report; lab/report/assets.py names the version.
npm_assembly npm node_modules/uplot/dist/uPlot.iife.min.js "uplot@$uplot_version"
