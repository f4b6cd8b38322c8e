#!/usr/bin/env bash
# The whole test suite, from a fresh clone of our kind of machine (Debian 12, root):
# installs what the tests need, starts nothing by hand (each test starts and stops its servers),
# type-checks, then runs every test file with node's test runner, which prints "# pass N / # fail N".
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
[ -x /usr/sbin/dovecot ] && { [ -x /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d); }
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# fetchmail is the peer the benchmark compares against (the suite runs the quick benchmark).
command -v fetchmail >/dev/null 2>&1 || need+=(fetchmail)
if [ ${#need[@]} -gt 0 ]; then
  echo "test/run.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The machine's PostgreSQL (started before the session and CI on our kind); start it if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
export DESKMAIL_TEST_PG_ADMIN_URL="${DESKMAIL_TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"

# A private CA for the test servers' TLS: our code always verifies certificates, and trusts a
# private CA only the standard Node way.
NODE_EXTRA_CA_CERTS="$(npx tsx test/harness/pki.ts)"
export NODE_EXTRA_CA_CERTS

npx tsc --noEmit -p .

if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
