#!/usr/bin/env bash
# Checks what `make test` and `make demo` need and installs what it can:
#   - moto (server) and cfn-lint into a virtual environment .venv (pinned in
#     scripts/requirements-dev.txt) when the python3 on PATH lacks them; the
#     Makefile puts .venv/bin first on PATH;
#   - PostgreSQL server binaries with apt-get when running as root.
# Anything it cannot install is printed with the exact command, and it exits
# non-zero. Nothing is skipped silently. PREREQS_INSTALL=0 only checks.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
install=${PREREQS_INSTALL:-1}
fail=0
say() { echo "prereqs: $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() { # packages...
  say "installing $* with apt-get (this takes a minute)..."
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
    say "apt-get install $* failed"
    return 1
  fi
}

have_py_tools() { # python
  "$1" -c 'import moto.server, cfnlint.decode, samtranslator' >/dev/null 2>&1
}

# Python tools: the python3 on PATH, else .venv, else create .venv.
if command -v python3 >/dev/null 2>&1; then
  if [ -x "$venv/bin/python3" ] && have_py_tools "$venv/bin/python3"; then
    : # .venv is ready; the Makefile puts it first on PATH
  elif have_py_tools python3; then
    :
  elif [ "$install" = 1 ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if is_root; then apt_install python3-venv || true; fi
    fi
    if python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      say "creating $venv with moto[server] and cfn-lint (pinned in scripts/requirements-dev.txt)..."
      if python3 -m venv "$venv" && "$venv/bin/pip" install --disable-pip-version-check -q -r scripts/requirements-dev.txt; then
        say "installed into $venv"
      else
        say "could not install into $venv (is PyPI reachable?); by hand: python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-dev.txt"
        fail=1
      fi
    else
      say "missing: python3-venv — install with: apt-get install -y python3-venv, then run make again"
      fail=1
    fi
  fi
fi

# PostgreSQL server binaries.
pg_found() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { command -v pg_config >/dev/null 2>&1 && test -x "$(pg_config --bindir)/initdb"; }; }
if ! pg_found && [ "$install" = 1 ] && is_root; then
  apt_install postgresql || true
fi

need() { # name, check command, fix
  if ! eval "$2" >/dev/null 2>&1; then
    say "missing: $1 — install with: $3"
    fail=1
  fi
}
py=python3
if [ -x "$venv/bin/python3" ]; then py="$venv/bin/python3"; fi
need "Go 1.26+" "go version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'" "see https://go.dev/doc/install (Go 1.26 or newer)"
need "python3" "command -v python3" "apt-get install -y python3 python3-venv"
need "moto server (python3 -m moto.server)" "$py -c 'import moto.server'" "python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-dev.txt"
need "Node 20+ and npm (clients/node)" "node -e 'if (+process.versions.node.split(\".\")[0] < 20) process.exit(1)' && command -v npm" "apt-get install -y nodejs npm  (Node 20 or later; or from https://nodejs.org/en/download)"
need "cfn-lint with aws-sam-translator" "$py -c 'import cfnlint.decode, samtranslator'" "python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-dev.txt"
need "PostgreSQL server binaries (initdb, pg_ctl, postgres)" pg_found "apt-get install -y postgresql"
if is_root; then
  need "the postgres OS user (initdb refuses to run as root)" "id postgres" "apt-get install -y postgresql (creates the user) or: useradd --system postgres"
  need "runuser" "command -v runuser" "apt-get install -y util-linux"
fi
exit $fail
