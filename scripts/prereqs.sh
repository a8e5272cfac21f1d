#!/usr/bin/env bash
# Checks what `make test` and `make demo` need; prints the install command for
# anything missing and exits non-zero. Nothing is skipped silently.
set -u
fail=0
# In CI as root, install the Debian packages that are missing instead of failing.
if [ -n "${CI:-}" ] && [ "$(id -u)" = 0 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server binaries (apt-get install -y postgresql)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
fi
need() { # name, check command, fix
  if ! eval "$2" >/dev/null 2>&1; then
    echo "missing: $1 — install with: $3" >&2
    fail=1
  fi
}
need "Go 1.26+" "go version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'" "see https://go.dev/doc/install (Go 1.26 or newer)"
need "python3" "command -v python3" "apt-get install -y python3"
need "moto server (python3 -m moto.server)" "python3 -c 'import moto.server'" "pip install 'moto[server]'"
need "Node 20+ and npm (clients/node)" "node -e 'if (+process.versions.node.split(\".\")[0] < 20) process.exit(1)' && command -v npm" "apt-get install -y nodejs npm  (Node 20 or later; or from https://nodejs.org/en/download)"
need "cfn-lint" "python3 -m cfnlint --version || command -v cfn-lint" "pip install cfn-lint"
need "PostgreSQL server binaries (initdb, pg_ctl, postgres)" "ls /usr/lib/postgresql/*/bin/initdb || command -v initdb || (command -v pg_config && test -x \$(pg_config --bindir)/initdb)" "apt-get install -y postgresql"
if [ "$(id -u)" = 0 ]; then
  need "the postgres OS user (initdb refuses to run as root)" "id postgres" "apt-get install -y postgresql (creates the user) or: useradd --system postgres"
  need "runuser" "command -v runuser" "apt-get install -y util-linux"
fi
exit $fail
