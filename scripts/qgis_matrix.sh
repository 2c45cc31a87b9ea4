#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The QGIS version matrix: the plugin tests (tests/plugin, as `make test` runs them) and `make demo` on the
# host's QGIS and on the QGIS of Debian trixie (3.40 LTR) and sid (the newest 3.x), each in a chroot.
#
# A chroot is a minimal Debian made once by mmdebstrap under .build/chroot/<suite>: QGIS, and numpy, scipy,
# scikit-image and matplotlib from Debian (the numpy Debian's GDAL is built against), plus a venv
# (--system-site-packages) at /opt/mcpn-venv with the rest of requirements.txt (torch ...) from PyPI.
# The checkout is bind-mounted at /src/mcpn, ../shared/data read-only at /src/shared/data, and
# .build/matrix/<suite> over /src/mcpn/.build (the QGIS profile, demo outputs, logs), so the versions
# share no state. The mounts live in a private mount namespace: they disappear with it, failures included.
# Each run replaces its versions' rows of benchmarks/results/qgis_versions.md (written by this script only).
#
# Usage (as root): scripts/qgis_matrix.sh [--build-only] [host|trixie|sid ...]   (default: host trixie sid)
# DEMO_STEPS (default 500) is passed to `make demo`.
set -euo pipefail

SELF=$(readlink -f "$0")
ROOT=$(dirname "$(dirname "$SELF")")
RESULTS=$ROOT/benchmarks/results/qgis_versions.md
DEMO_STEPS=${DEMO_STEPS:-500}
# Debian's numpy stack is used in the chroots; pip installs the rest of requirements.txt
DEBIAN_PACKAGES=git,make,ca-certificates,qgis,python3-qgis,python3-gdal,gdal-bin,python3-venv
DEBIAN_PACKAGES+=,python3-numpy,python3-scipy,python3-skimage,python3-matplotlib
FROM_DEBIAN='^(numpy|scipy|scikit-image|matplotlib)\b'

# The checks, run in the checkout by bash on the host or in a chroot (passed there as text by `declare -f`).
# VENV, QGIS_PROCESS, OUT (results folder), DEMO_STEPS come from the caller.
checks() {
    cd "$1"
    mkdir -p "$OUT"
    "$VENV/bin/python" -c 'import platform, numpy, torch; from qgis.core import Qgis
print(Qgis.QGIS_VERSION, platform.python_version(), torch.__version__, numpy.__version__, sep="\t")' >"$OUT/versions"
    local make=(make VENV="$VENV" QGIS_PROCESS="$QGIS_PROCESS" -o "$VENV/.installed")
    "${make[@]}" deploy
    local start=$SECONDS rc=0
    (eval "export $(MCPN_QGIS_PROCESS=$QGIS_PROCESS "$VENV/bin/python" scripts/qgis_env.py)" &&
        "$VENV/bin/python" -m pytest -p no:cacheprovider --junitxml="$OUT/junit.xml" tests/plugin) || rc=$?
    echo "$rc $((SECONDS - start))" >"$OUT/tests.status"
    start=$SECONDS rc=0
    "${make[@]}" demo DEMO_STEPS="$DEMO_STEPS" DEMO_OUT="$OUT/demo" 2>&1 | tee "$OUT/demo.log" || rc=$?
    echo "$rc $((SECONDS - start))" >"$OUT/demo.status"
}

# The venv of a chroot, (re)made when requirements.txt changed since it was made.
chroot_venv() {
    cd "$1"
    cmp -s requirements.txt "$VENV/requirements.txt" && return
    python3 -m venv --system-site-packages "$VENV"
    grep -vE "$FROM_DEBIAN" requirements.txt >/tmp/requirements.txt
    "$VENV/bin/pip" install --no-cache-dir -r /tmp/requirements.txt
    cp requirements.txt "$VENV/requirements.txt"
    touch "$VENV/.installed"
}

build_chroot() {
    local dir=$ROOT/.build/chroot/$1
    [ -e "$dir/.mcpn-rootfs" ] && return
    rm -rf "$dir.tmp"
    mkdir -p "$(dirname "$dir")"
    # its own mount namespace: the /proc, /dev mounts mmdebstrap makes vanish with it, also when it is killed;
    # the mirror's sid Release file may be past its Valid-Until date
    unshare --mount --propagation private mmdebstrap --mode=root --variant=apt \
        --aptopt='Acquire::Check-Valid-Until "false"' --include="$DEBIAN_PACKAGES" "$1" "$dir.tmp" \
        http://deb.debian.org/debian
    touch "$dir.tmp/.mcpn-rootfs"
    mv "$dir.tmp" "$dir"
}

# In a private mount namespace (see the re-exec below): mount, then run `what` (chroot_venv or checks) in the
# chroot. qgis_process there is Debian's wrapper, as users run it: from 3.40 on it no longer passes the
# --noversioncheck that qgis_process 3.22 rejects (hence qgis_process.bin on the host).
in_chroot() {
    local suite=$1 what=$2 dir=$ROOT/.build/chroot/$1 state=$ROOT/.build/matrix/$1
    mkdir -p "$dir/src/mcpn" "$dir/src/shared/data" "$state"
    mount -t proc proc "$dir/proc"
    mount -t sysfs -o ro sysfs "$dir/sys"
    mount --bind /dev "$dir/dev"
    mount -t tmpfs tmpfs "$dir/dev/shm"
    mount --bind "$ROOT" "$dir/src/mcpn"
    mount --bind "$state" "$dir/src/mcpn/.build"
    # a worktree's git folder lies outside it (scripts/package.py asks git which files the plugin has)
    local git
    git=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)
    case $git in "$ROOT"/*) ;; *) mkdir -p "$dir$git" && mount -o bind,ro "$git" "$dir$git" ;; esac
    [ -d "$ROOT/../shared/data" ] && mount -o bind,ro "$ROOT/../shared/data" "$dir/src/shared/data"
    # pip there trusts what the host's pip trusts (a proxy's certificate authority, say)
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$dir/etc/ssl/certs/host-ca-certificates.crt"
    chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        VENV=/opt/mcpn-venv QGIS_PROCESS=qgis_process OUT=/src/mcpn/.build DEMO_STEPS="$DEMO_STEPS" \
        FROM_DEBIAN="$FROM_DEBIAN" bash -euo pipefail -c "$(declare -f chroot_venv checks); $what /src/mcpn"
}

# One row of the results table from the files `checks` wrote into $1.
row() {
    local name=$1 out=$2 versions tests demo counts scores
    versions=(- - - -) tests=(- -) demo=(- -)  # what a run that stopped early did not write
    [ -s "$out/versions" ] && IFS=$'\t' read -r -a versions <"$out/versions"
    [ -s "$out/tests.status" ] && read -r -a tests <"$out/tests.status"
    [ -s "$out/demo.status" ] && read -r -a demo <"$out/demo.status"
    counts=$(python3 - "$out/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    suites = list(ET.parse(sys.argv[1]).iter("testsuite"))
except (OSError, ET.ParseError):
    sys.exit(print("- | - | - | -"))
n = {k: sum(int(x.get(k, 0)) for x in suites) for k in ("tests", "failures", "errors", "skipped")}
print(n["tests"] - n["failures"] - n["errors"] - n["skipped"], n["failures"], n["errors"], n["skipped"], sep=" | ")
EOF
)
    # the MCPN line after each "scores over ..." line of the demo: SSIM / RMSE of inpainting, super-resolution
    scores=$(awk '/scores over the cloud/ {w = 1} /scores over the whole/ {w = 2}
        $1 == "MCPN" && w {s[w] = $2 " / " $3; w = 0}
        END {printf "%s | %s", (1 in s ? s[1] : "-"), (2 in s ? s[2] : "-")}' "$out/demo.log" 2>/dev/null ||
        echo "- | -")
    echo "| $name | ${versions[0]} | ${versions[1]} | ${versions[2]} | ${versions[3]} | $counts | ${tests[1]} |" \
        "${demo[0]} | $scores | ${demo[1]} | $DEMO_STEPS | $(date -u +%F) | $COMMIT |"
}

write_results() {
    local name old=""
    [ -f "$RESULTS" ] && old=$(cat "$RESULTS")
    {
        echo "# The plugin on several QGIS versions"
        echo
        echo "Written by \`make matrix\` (scripts/qgis_matrix.sh); do not edit. host: this machine's QGIS (Debian 12);"
        echo "trixie, sid: Debian chroots with their QGIS, Debian's numpy stack and torch from PyPI. Tests: tests/plugin"
        echo "(pytest counts); demo: \`make demo\`'s exit status, its MCPN scores (SSIM / RMSE) and time."
        echo
        echo "| run | QGIS | Python | torch | numpy | passed | failed | errors | skipped | tests (s) |" \
            "demo exit | inpainting SSIM / RMSE | super-resolution SSIM / RMSE | demo (s) | demo steps | date | commit |"
        echo "|---|---|---|---|---|--:|--:|--:|--:|--:|--:|---|---|--:|--:|---|---|"
        for name in host trixie sid; do
            if [ -n "${NEW[$name]:-}" ]; then echo "${NEW[$name]}"; else grep "^| $name |" <<<"$old" || true; fi
        done
    } >"$RESULTS.tmp"
    mv "$RESULTS.tmp" "$RESULTS"
}

if [ "${1:-}" = --in-namespace ]; then
    shift
    in_chroot "$@"
    exit
fi
[ "$(id -u)" = 0 ] || { echo "qgis_matrix.sh: chroot needs root" >&2; exit 1; }
build_only=false
if [ "${1:-}" = --build-only ]; then
    build_only=true
    shift
fi
[ $# -gt 0 ] || set -- host trixie sid
command -v mmdebstrap >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y mmdebstrap; }
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] || COMMIT+=+changes
declare -A NEW
for suite in "$@"; do
    if [ "$suite" = host ]; then
        $build_only && continue
        out=$ROOT/.build/matrix/host
        rm -rf "$out"
        VENV=$ROOT/.venv QGIS_PROCESS=qgis_process.bin OUT=$out DEMO_STEPS=$DEMO_STEPS \
            bash -euo pipefail -c "$(declare -f checks); checks $ROOT" || true
    else
        build_chroot "$suite"
        unshare --mount --propagation private "$SELF" --in-namespace "$suite" chroot_venv
        $build_only && continue
        out=$ROOT/.build/matrix/$suite
        rm -rf "$out"
        unshare --mount --propagation private "$SELF" --in-namespace "$suite" checks || true
    fi
    NEW[$suite]=$(row "$suite" "$out")
    write_results
done
