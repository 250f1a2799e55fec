#!/usr/bin/env bash
# Build the offline sandbox image (Debian bookworm minbase + python3, non-root user 1000)
# from Debian packages, without any container registry, and import it into Docker.
#
# Usage: sudo scripts/build_sandbox_image.sh [TAG]      (default TAG: wflo-sandbox:latest)
#
# The Debian mirror is read from this machine's apt sources at run time (deb822
# /etc/apt/sources.list.d/*.sources and classic sources.list / *.list lines). Set
# WFLO_DEBIAN_MIRROR to override it.
set -Eeuo pipefail

TAG="${1:-wflo-sandbox:latest}"
SUITE=bookworm

log() { printf 'build_sandbox_image: %s\n' "$*"; }
die() { printf 'build_sandbox_image: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'printf "build_sandbox_image: ERROR: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap needs it): sudo $0 ${1:-}"
timeout 15 docker info >/dev/null 2>&1 || die "no Docker engine answers \`docker info\`; run scripts/provision.sh first"

start=$SECONDS

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

find_mirror() {
    # Print the first Debian archive URI serving $SUITE from the apt sources, skipping the
    # security archive and third-party repositories.
    local files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] && files+=("$f")
    done
    ((${#files[@]})) || return 0
    awk -v suite="$SUITE" '
        function skip(uri) { return uri ~ /security|nodesource|google|docker|microsoft|nvidia|cuda/ }
        function emit(uri) { if (!found && !skip(uri)) { print uri; found = 1 } }
        function flush(   i, n, u, s, nu, ns, t) {
            # deb822 stanza collected in types / uris / suites / enabled
            if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && tolower(enabled) != "no") {
                ns = split(suites, s, /[[:space:]]+/)
                nu = split(uris, u, /[[:space:]]+/)
                for (i = 1; i <= ns; i++) if (s[i] == suite) { for (n = 1; n <= nu; n++) if (u[n] != "") emit(u[n]); break }
            }
            types = uris = suites = enabled = ""
        }
        FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
        deb822 {
            if ($0 ~ /^[[:space:]]*$/) { flush(); next }
            if ($0 ~ /^[[:space:]]*#/) next
            line = $0; key = tolower(line); sub(/:.*/, "", key)
            val = line; sub(/^[^:]*:[[:space:]]*/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = val
            next
        }
        /^[[:space:]]*deb[[:space:]]/ {
            # deb [options] URI suite components...
            line = $0
            sub(/^[[:space:]]*deb[[:space:]]+/, "", line)
            if (line ~ /^\[/) sub(/^\[[^]]*\][[:space:]]*/, "", line)
            split(line, w, /[[:space:]]+/)
            if (w[2] == suite) emit(w[1])
        }
        END { flush() }
    ' "${files[@]}"
}

MIRROR="${WFLO_DEBIAN_MIRROR:-$(find_mirror)}"
[[ -n "$MIRROR" ]] || die "no Debian $SUITE archive found in /etc/apt/sources.list{,.d/*}; set WFLO_DEBIAN_MIRROR"
log "building $TAG from Debian $SUITE ($MIRROR)"

WORK="$(mktemp -d /var/tmp/wflo-sandbox.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() {
    # debootstrap may leave /proc, /sys or a bind-mounted /dev inside the rootfs after a
    # failure: unmount everything under $WORK before deleting, and never cross filesystems.
    local m
    awk -v w="$WORK" 'index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r |
        while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 20 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
fi
log "debootstrap done in $((SECONDS - start)) s"

# Non-root user sandbox, uid/gid 1000.
grep -q '^sandbox:' "$ROOTFS/etc/group" || echo 'sandbox:x:1000:' >>"$ROOTFS/etc/group"
grep -q '^sandbox:' "$ROOTFS/etc/passwd" ||
    echo 'sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh' >>"$ROOTFS/etc/passwd"
if [[ -f "$ROOTFS/etc/shadow" ]] && ! grep -q '^sandbox:' "$ROOTFS/etc/shadow"; then
    echo 'sandbox:*:19000:0:99999:7:::' >>"$ROOTFS/etc/shadow"
fi
if [[ -f "$ROOTFS/etc/gshadow" ]] && ! grep -q '^sandbox:' "$ROOTFS/etc/gshadow"; then
    echo 'sandbox:!::' >>"$ROOTFS/etc/gshadow"
fi
install -d -m 0755 -o 1000 -g 1000 "$ROOTFS/home/sandbox"

# Slim: apt caches and lists, docs, man pages, locales, logs; Docker supplies these at run time.
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log \
    "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* \
    "$ROOTFS"/etc/resolv.conf "$ROOTFS"/etc/hostname
find "$ROOTFS" -name __pycache__ -prune -exec rm -rf {} +

tar --numeric-owner -C "$ROOTFS" -c . |
    docker import \
        --change 'USER 1000:1000' \
        --change 'WORKDIR /home/sandbox' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'LABEL org.wflo.sandbox-image=1' \
        --change 'CMD ["python3"]' \
        - "$TAG" >/dev/null

# Verify.
version="$(docker run --rm --network none "$TAG" python3 -c 'import json,sys; print(sys.version)')" ||
    die "$TAG does not run python3"
uid="$(docker run --rm --network none "$TAG" id -u)"
[[ "$uid" == 1000 ]] || die "$TAG runs as uid $uid, expected 1000"
size="$(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
log "built $TAG in $((SECONDS - start)) s ($size, python ${version%% *}, uid $uid)"
