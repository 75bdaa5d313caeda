#!/usr/bin/env bash
# Installs what Broker Lab needs and is missing; prints nothing when nothing is missing.
#   - Debian packages: Redis, PostgreSQL, RabbitMQ (Erlang), Java, Maven, tmux, Chromium
#     (the report's browser tests), npm where Node.js is missing
#   - a virtual environment (.venv) with the project and its dev tools
#   - Apache Kafka assembled from Maven Central jars into ~/.cache/broker-lab (never the repo)
#   - uPlot, the report's chart library, from the npm registry into ~/.cache/broker-lab/npm
# Safe to run again and again; `make setup` runs it, and so do `make run|demo|test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
cache=${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/broker-lab}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$repo/kafka/pom.xml")
uplot_version=$(sed -n 's/^UPLOT_VERSION = "\(.*\)".*/\1/p' "$repo/lab/report/assets.py")

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $* (install sudo or run as root)"; fi
}

# --- Debian packages ---------------------------------------------------------
missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }
need_pkg redis-server
need_pkg postgresql
need_pkg rabbitmq-server
need_pkg tmux
need_pkg chromium
command -v npm >/dev/null || need_pkg npm
command -v java >/dev/null || need_pkg openjdk-17-jre-headless
command -v mvn >/dev/null || need_pkg maven
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

# --- Apache Kafka from Maven Central -----------------------------------------------
kafka_home="$cache/kafka-$kafka_version"
pom_sum=$(sha256sum "$repo/kafka/pom.xml" | cut -d' ' -f1)
if [ "$(cat "$kafka_home/.complete" 2>/dev/null)" != "$pom_sum" ]; then
    say "assembling Apache Kafka $kafka_version from Maven Central into $kafka_home"
    rm -rf "$kafka_home.partial"
    mkdir -p "$kafka_home.partial"
    log="$kafka_home.partial/maven.log"
    if ! mvn -B -f "$repo/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$kafka_home.partial/libs" >"$log" 2>&1; then
        grep -E 'ERROR|Could not' "$log" | head -n 20 >&2
        die "Maven could not fetch Kafka $kafka_version (full log: $log)"
    fi
    ls "$kafka_home.partial/libs"/kafka_2.13-"$kafka_version".jar >/dev/null \
        || die "the Kafka $kafka_version broker jar is missing after the Maven build"
    echo "$pom_sum" > "$kafka_home.partial/.complete"
    rm -rf "$kafka_home"
    mv "$kafka_home.partial" "$kafka_home"
fi

# --- uPlot from the npm registry -------------------------------------------------
# `lab report` embeds it in every report; lab/report/assets.py names the version.
npm_home="$cache/npm"
if [ "$(cat "$npm_home/.complete" 2>/dev/null)" != "uplot@$uplot_version" ]; then
    say "installing uPlot $uplot_version from the npm registry into $npm_home"
    rm -rf "$npm_home.partial"
    mkdir -p "$npm_home.partial"
    log="$npm_home.partial/npm.log"
    if ! npm install --prefix "$npm_home.partial" --no-save --no-audit --no-fund \
        --ignore-scripts "uplot@$uplot_version" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "npm could not install uPlot $uplot_version (full log: $log)"
    fi
    [ -f "$npm_home.partial/node_modules/uplot/dist/uPlot.iife.min.js" ] \
        || die "uPlot $uplot_version is missing its dist/uPlot.iife.min.js after npm install"
    echo "uplot@$uplot_version" > "$npm_home.partial/.complete"
    rm -rf "$npm_home"
    mv "$npm_home.partial" "$npm_home"
fi
