#!/usr/bin/env bash
# Make sure the local services the wflo-prefect test suite needs are present and running:
#
#   * a Docker engine with gVisor registered as the `runsc` runtime (network-less)
#   * PostgreSQL 15 with role/password wflo/wflo and database wflo_test on 127.0.0.1:5432
#     (skipped when WFLO_TEST_POSTGRES_URL is set)
#   * Chromium + ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver)
#   * the offline sandbox image wflo-sandbox:latest (built by scripts/build_sandbox_image.sh)
#
# Idempotent: when everything is already there it only checks, in a few seconds.
# As root, missing Debian packages are installed (apt-get update runs at most once, and only
# if something must be installed) and services are started without systemd.
# As a normal user nothing is changed; every missing item is reported at the end and the
# script exits non-zero.
#
# Usage: scripts/provision.sh [ITEM...]   ITEM: docker, postgres, chromium, sandbox-image
#        (default: all of them; the demo asks for `docker sandbox-image` only)
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SANDBOX_IMAGE="wflo-sandbox:latest"
PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
PG_USER=wflo
PG_PASSWORD=wflo
PG_DB=wflo_test
PG_URL="postgresql+psycopg://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
DOCKERD_LOG=/var/log/dockerd.log
DAEMON_JSON=/etc/docker/daemon.json
RUNSC_PATH=/usr/bin/runsc

log() { printf 'provision: %s\n' "$*"; }
err() { printf 'provision: ERROR: %s\n' "$*" >&2; }
trap 'err "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR

IS_ROOT=0
[[ "$(id -u)" -eq 0 ]] && IS_ROOT=1

# Items a non-root user (or a failed step) must take care of; reported together at the end.
PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

APT_UPDATED=0
apt_install() {
    # apt_install PKG... : install Debian packages (root only), apt-get update at most once.
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

# --------------------------------------------------------------------------------- docker
docker_ok() { timeout 15 docker info >/dev/null 2>&1; }

runsc_registered() {
    local runtimes
    runtimes="$(timeout 15 docker info --format '{{json .Runtimes}}' 2>/dev/null)" || return 1
    [[ "$runtimes" == *'"runsc"'* ]]
}

wait_for_docker() {
    local deadline=$((SECONDS + ${1:-30}))
    while ! docker_ok; do
        if ((SECONDS >= deadline)); then return 1; fi
        sleep 0.5
    done
}

dockerd_pid() { { pidof dockerd 2>/dev/null || true; } | awk '{print $1}'; }

merge_daemon_json() {
    # Add/replace runtimes.runsc in daemon.json, keeping every other key.
    # Prints "changed" or "unchanged".
    mkdir -p "$(dirname "$DAEMON_JSON")"
    /usr/bin/python3 - "$DAEMON_JSON" "$RUNSC_PATH" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
want = {"path": runsc, "runtimeArgs": ["--network=none"]}
cfg = {}
if os.path.exists(path):
    text = open(path).read().strip()
    if text:
        cfg = json.loads(text)
if not isinstance(cfg, dict):
    sys.exit(f"{path} does not contain a JSON object")
runtimes = cfg.setdefault("runtimes", {})
if runtimes.get("runsc") == want:
    print("unchanged")
else:
    runtimes["runsc"] = want
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print("changed")
PY
}

start_dockerd() {
    log "starting dockerd (log: $DOCKERD_LOG)"
    # No systemd here: run it detached in its own session so it outlives this script.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    if ! wait_for_docker 30; then
        err "dockerd did not answer within 30 s; last lines of $DOCKERD_LOG:"
        tail -n 15 "$DOCKERD_LOG" >&2 || true
        return 1
    fi
}

ensure_runsc_config() {
    # Root only: make sure the runsc package is installed and registered in daemon.json.
    if [[ ! -x "$RUNSC_PATH" ]]; then
        apt_install runsc
    fi
    merge_daemon_json
}

ensure_docker() {
    if docker_ok; then
        if runsc_registered; then
            log "docker engine ok (gVisor runtime runsc registered)"
            return 0
        fi
        if [[ "$IS_ROOT" -ne 1 ]]; then
            problem "gVisor not registered with Docker: run \`sudo apt-get install runsc\`, add {\"runtimes\": {\"runsc\": {\"path\": \"$RUNSC_PATH\", \"runtimeArgs\": [\"--network=none\"]}}} to $DAEMON_JSON and reload dockerd (sudo kill -HUP \$(pidof dockerd))"
            return 0
        fi
        ensure_runsc_config >/dev/null
        local pid
        pid="$(dockerd_pid)"
        if [[ -n "$pid" ]]; then
            log "registering runsc: reloading dockerd (SIGHUP)"
            kill -HUP "$pid"
            local deadline=$((SECONDS + 10))
            while ! runsc_registered && ((SECONDS < deadline)); do sleep 0.5; done
        fi
        if ! runsc_registered && [[ -n "$pid" ]]; then
            log "SIGHUP did not register runsc; restarting dockerd"
            kill "$pid"
            local deadline=$((SECONDS + 30))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
            start_dockerd || { problem "dockerd failed to restart (see $DOCKERD_LOG)"; return 0; }
        fi
        if runsc_registered; then
            log "docker engine ok (gVisor runtime runsc registered)"
        else
            problem "docker engine runs but runsc is still not registered (engine not started from this machine's dockerd? check $DAEMON_JSON)"
        fi
        return 0
    fi

    # No answering engine.
    if [[ "$IS_ROOT" -ne 1 ]]; then
        if ! command -v dockerd >/dev/null 2>&1; then
            problem "Docker engine missing: run \`sudo apt-get install docker.io runsc\` and start it (\`sudo dockerd\`)"
        elif [[ -S /var/run/docker.sock ]]; then
            problem "Docker engine not reachable by $(id -un): add yourself to the docker group (\`sudo usermod -aG docker $(id -un)\`, then log in again) or check that dockerd runs"
        else
            problem "Docker engine installed but not running: start it with \`sudo dockerd >/var/log/dockerd.log 2>&1 &\`"
        fi
        if [[ ! -x "$RUNSC_PATH" ]]; then
            problem "gVisor missing: run \`sudo apt-get install runsc\` and register it in $DAEMON_JSON"
        fi
        return 0
    fi

    local pkgs=()
    command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
    [[ -x "$RUNSC_PATH" ]] || pkgs+=(runsc)
    if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
    merge_daemon_json >/dev/null

    local pid
    pid="$(dockerd_pid)"
    if [[ -n "$pid" ]]; then
        # Running but not answering yet: maybe still starting up.
        log "dockerd (pid $pid) is running but not answering; waiting"
        if ! wait_for_docker 30; then
            problem "dockerd (pid $pid) does not answer \`docker info\`; see $DOCKERD_LOG"
            return 0
        fi
        # It was started before daemon.json had runsc: reload.
        if ! runsc_registered; then
            kill -HUP "$pid"
            sleep 1
        fi
    else
        start_dockerd || { problem "dockerd failed to start (see $DOCKERD_LOG)"; return 0; }
    fi
    if runsc_registered; then
        log "docker engine ok (gVisor runtime runsc registered)"
    else
        problem "docker engine runs but runsc is not registered; check $DAEMON_JSON"
    fi
}

# ------------------------------------------------------------------------------ postgres
pg_bin=/usr/lib/postgresql/$PG_VERSION/bin

pg_login_ok() {
    command -v psql >/dev/null 2>&1 || return 1
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 \
        psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -Atqc 'select 1' >/dev/null 2>&1
}

pg_cluster_status() {
    # Prints e.g. "online", "down", or nothing when the cluster does not exist.
    { pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null || true; } | awk '{print $4}'
}

pg_cluster_port() {
    { pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null || true; } | awk '{print $3}'
}

as_postgres_psql() {
    (cd / && runuser -u postgres -- psql -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 "$@")
}

ensure_pg_hba() {
    # Debian's default pg_hba.conf already allows scram-sha-256 from 127.0.0.1/32. If an edited
    # file has no such line, put one first (first match wins) and reload.
    local hba
    hba="$(as_postgres_psql -d postgres -Atc 'show hba_file')"
    if grep -Eq '^[[:space:]]*host[[:space:]]+(all|'"$PG_DB"')[[:space:]]+(all|'"$PG_USER"')[[:space:]]+127\.0\.0\.1/32[[:space:]]+(md5|scram-sha-256)' "$hba"; then
        return 0
    fi
    log "adding a 127.0.0.1 password rule for $PG_USER to $hba"
    sed -i "1i host    $PG_DB    $PG_USER    127.0.0.1/32    scram-sha-256    # added by wflo provision.sh" "$hba"
    as_postgres_psql -d postgres -c 'select pg_reload_conf()' >/dev/null
}

ensure_postgres() {
    if [[ -n "${WFLO_TEST_POSTGRES_URL:-}" ]]; then
        log "postgresql skipped (WFLO_TEST_POSTGRES_URL is set)"
        return 0
    fi
    if pg_login_ok; then
        log "postgresql ok ($PG_URL)"
        return 0
    fi

    if [[ "$IS_ROOT" -ne 1 ]]; then
        if [[ ! -x "$pg_bin/postgres" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
            problem "PostgreSQL server missing: run \`sudo apt-get install postgresql\` or set WFLO_TEST_POSTGRES_URL to a server you have"
        elif [[ -z "$(pg_cluster_status)" ]]; then
            problem "PostgreSQL cluster $PG_VERSION/$PG_CLUSTER missing: run \`sudo pg_createcluster $PG_VERSION $PG_CLUSTER --start\` or set WFLO_TEST_POSTGRES_URL"
        elif [[ "$(pg_cluster_status)" != online ]]; then
            problem "PostgreSQL not running: run \`sudo pg_ctlcluster $PG_VERSION $PG_CLUSTER start\` or set WFLO_TEST_POSTGRES_URL"
        else
            problem "PostgreSQL runs but $PG_USER@127.0.0.1/$PG_DB cannot log in: run \`sudo -u postgres psql -c \"CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'\"\` and \`sudo -u postgres createdb -O $PG_USER $PG_DB\`, or set WFLO_TEST_POSTGRES_URL"
        fi
        return 0
    fi

    if [[ ! -x "$pg_bin/postgres" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
        apt_install "postgresql-$PG_VERSION" postgresql-common postgresql-client-common "postgresql-client-$PG_VERSION" postgresql
    fi
    if [[ -z "$(pg_cluster_status)" ]]; then
        log "creating cluster $PG_VERSION/$PG_CLUSTER"
        pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
    fi
    local port
    port="$(pg_cluster_port)"
    if [[ "$port" != "$PG_PORT" ]]; then
        problem "cluster $PG_VERSION/$PG_CLUSTER listens on port $port, not $PG_PORT: fix /etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf or set WFLO_TEST_POSTGRES_URL"
        return 0
    fi
    if [[ "$(pg_cluster_status)" != online ]]; then
        log "starting cluster $PG_VERSION/$PG_CLUSTER"
        if ! pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start; then
            problem "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed; see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
            return 0
        fi
    fi
    if pg_login_ok; then
        log "postgresql ok ($PG_URL)"
        return 0
    fi

    log "ensuring role $PG_USER and database $PG_DB"
    as_postgres_psql -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER;
    END IF;
END
\$\$;
ALTER ROLE $PG_USER WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SQL
    if [[ -z "$(as_postgres_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        as_postgres_psql -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null
    else
        as_postgres_psql -d postgres -c "ALTER DATABASE $PG_DB OWNER TO $PG_USER" >/dev/null
    fi
    ensure_pg_hba

    if pg_login_ok; then
        log "postgresql ok ($PG_URL)"
    else
        problem "PostgreSQL provisioned but \`PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -U $PG_USER -d $PG_DB\` still fails; check listen_addresses and pg_hba.conf"
    fi
}

# ------------------------------------------------------------------------------ chromium
ensure_chromium() {
    local pkgs=()
    [[ -x /usr/bin/chromium ]] || pkgs+=(chromium)
    [[ -x /usr/bin/chromedriver ]] || pkgs+=(chromium-driver)
    if ((${#pkgs[@]} == 0)); then
        log "chromium ok (/usr/bin/chromium, /usr/bin/chromedriver)"
        return 0
    fi
    if [[ "$IS_ROOT" -ne 1 ]]; then
        problem "Chromium missing: run \`sudo apt-get install ${pkgs[*]}\`"
        return 0
    fi
    apt_install "${pkgs[@]}"
    log "chromium ok (/usr/bin/chromium, /usr/bin/chromedriver)"
}

# ------------------------------------------------------------------------- sandbox image
ensure_sandbox_image() {
    if ! docker_ok; then
        problem "sandbox image $SANDBOX_IMAGE not checked (needs the Docker engine); if missing, build it with \`sudo $SCRIPT_DIR/build_sandbox_image.sh\`"
        return 0
    fi
    if docker image inspect "$SANDBOX_IMAGE" >/dev/null 2>&1; then
        log "sandbox image ok ($SANDBOX_IMAGE)"
        return 0
    fi
    if [[ "$IS_ROOT" -ne 1 ]]; then
        problem "sandbox image $SANDBOX_IMAGE missing: run \`sudo $SCRIPT_DIR/build_sandbox_image.sh\`"
        return 0
    fi
    log "sandbox image $SANDBOX_IMAGE missing; building it"
    if ! "$SCRIPT_DIR/build_sandbox_image.sh" "$SANDBOX_IMAGE"; then
        problem "building $SANDBOX_IMAGE failed (scripts/build_sandbox_image.sh)"
    fi
}

# ---------------------------------------------------------------------------------- main
ITEMS=("$@")
((${#ITEMS[@]})) || ITEMS=(docker postgres chromium sandbox-image)
for item in "${ITEMS[@]}"; do
    case "$item" in
        docker | postgres | chromium | sandbox-image) ;;
        *)
            err "unknown item '$item': choose from docker, postgres, chromium, sandbox-image"
            exit 2
            ;;
    esac
done

start=$SECONDS
for item in "${ITEMS[@]}"; do
    case "$item" in
        docker) ensure_docker ;;
        postgres) ensure_postgres ;;
        chromium) ensure_chromium ;;
        sandbox-image) ensure_sandbox_image ;;
    esac
done

if ((${#PROBLEMS[@]})); then
    err "${#PROBLEMS[@]} item(s) need attention:"
    for p in "${PROBLEMS[@]}"; do printf 'provision:   - %s\n' "$p" >&2; done
    exit 1
fi
log "all services ready in $((SECONDS - start)) s"
