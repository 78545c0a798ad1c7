#!/usr/bin/env bash
# Run a real single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback,
# without Docker: the jars come from Maven Central through tools/kafka/pom.xml.
# See tools/kafka/README.md, or run: tools/kafka/kafka.sh --help
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly POM="$SCRIPT_DIR/pom.xml"
readonly LOG_CONFIG="$SCRIPT_DIR/log4j2.properties"
readonly PROG="${0##*/}"
readonly READY_LINE='Kafka Server started'

usage() {
  cat <<EOF
Usage: $PROG COMMAND [OPTIONS]

Run a real single-node Apache Kafka broker (KRaft mode) on 127.0.0.1, from Maven Central jars.

Commands:
  fetch                 Download the broker jars (mvn dependency:copy-dependencies) into the cache.
                        Idempotent: skipped when the cache is complete.
  start --data DIR      Start a broker whose config, logs and data live in DIR; wait until it serves
                        requests; print the bootstrap address (127.0.0.1:PORT) as the last stdout line.
                        A DIR that is already formatted is restarted with its data (no reformat).
                        If a broker from DIR is already running, say so and exit 0.
      --port N              client (PLAINTEXT) port            [9092]
      --controller-port N   KRaft controller port              [9093]
      --heap SIZE           max JVM heap (-Xmx), e.g. 512m     [512m]
      --timeout SECONDS     how long to wait for readiness     [90]
      --no-auto-create      set auto.create.topics.enable=false (default: true)
      --set KEY=VALUE       extra broker setting appended to server.properties (repeatable; wins
                            over the defaults), e.g. --set log.retention.ms=60000
  stop --data DIR       SIGTERM the broker from DIR, SIGKILL after --timeout SECONDS [30]; waits until
                        its ports are free. Idempotent: no pid file or a dead pid is success.
  status --data DIR     Exit 0 if the broker from DIR is running (and print its address), 1 if not.
  version               Print the Kafka version (from pom.xml).
  -h, --help            This help.

Environment:
  WEBHOOK_GATEWAY_CACHE  cache root [\${XDG_CACHE_HOME:-\$HOME/.cache}/webhook-gateway];
                         jars go to <root>/kafka-<version>/lib
  JAVA_HOME              java to use (default: java on PATH; needs Java 17+)
  MVN                    maven command [mvn]
  KAFKA_OPTS             extra JVM options appended to the broker's java command line
EOF
}

# Elapsed-time helpers: milliseconds via EPOCHREALTIME (bash 5), else whole seconds.
now_ms() {
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s\n' "$((10#$t / 1000))"
  else
    printf '%s\n' "$((SECONDS * 1000))"
  fi
}
since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%01ds\n' "$((ms / 1000))" "$((ms % 1000 / 100))"
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

kafka_version() {
  local v
  v=$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$POM" | head -n 1)
  [[ -n "$v" ]] || die "cannot read <kafka.version> from $POM"
  printf '%s\n' "$v"
}

KAFKA_VERSION=$(kafka_version)
readonly KAFKA_VERSION
readonly CACHE_ROOT="${WEBHOOK_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webhook-gateway}"
readonly KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
readonly LIB_DIR="$KAFKA_HOME_DIR/lib"
readonly MARKER="$KAFKA_HOME_DIR/.fetch-complete"

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  else
    command -v java >/dev/null 2>&1 || die "java not found (need Java 17+; set JAVA_HOME or PATH)"
    printf '%s\n' java
  fi
}

file_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# The SLF4J bindings we know of (slf4j 1.x StaticLoggerBinder providers and slf4j 2.x providers).
readonly SLF4J_BINDING_RE='^(slf4j-(reload4j|log4j12|simple|nop|jdk14|jcl)|log4j-slf4j2?-impl|logback-classic)-[0-9]'

check_lib() {
  local dir=$1 bindings count
  compgen -G "$dir/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || die "$dir has no kafka_2.13-$KAFKA_VERSION.jar"
  bindings=$(find "$dir" -maxdepth 1 -name '*.jar' -exec basename {} \; | grep -E "$SLF4J_BINDING_RE" || true)
  count=$(grep -c . <<<"$bindings" || true)
  [[ "$count" -eq 1 ]] || die "expected exactly one SLF4J binding in $dir, found $count: ${bindings//$'\n'/ }"
}

fetch_is_complete() {
  [[ -f "$MARKER" && -d "$LIB_DIR" ]] && [[ "$(cat "$MARKER")" == "$(file_sha256 "$POM")" ]]
}

cmd_fetch() {
  [[ $# -eq 0 ]] || die "fetch takes no arguments"
  if fetch_is_complete; then
    log "Kafka $KAFKA_VERSION jars already in $LIB_DIR"
    return 0
  fi
  mkdir -p "$KAFKA_HOME_DIR"
  # The lock serialises concurrent fetches (e.g. two test runs); fd 9 lives only in this subshell,
  # so the broker started later never inherits it.
  (
    if command -v flock >/dev/null 2>&1; then
      flock 9
    fi
    if fetch_is_complete; then
      exit 0
    fi
    local mvn_cmd=${MVN:-mvn} pom_sum tmp
    command -v "$mvn_cmd" >/dev/null 2>&1 || die "maven ($mvn_cmd) not found"
    pom_sum=$(file_sha256 "$POM")
    # Leftovers of interrupted fetches (we hold the lock, so no live fetch owns them).
    rm -rf "$KAFKA_HOME_DIR"/lib.tmp.*
    tmp="$KAFKA_HOME_DIR/lib.tmp.$$"
    # Run maven on a copy of the pom in the cache, so nothing (target/ etc.) is written into the repo.
    cp "$POM" "$KAFKA_HOME_DIR/pom.xml"
    log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB_DIR ..."
    # Maven's output goes to a log (Debian's mvn prints stray colour resets even with -q).
    if ! "$mvn_cmd" -B -q -Dstyle.color=never -f "$KAFKA_HOME_DIR/pom.xml" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
      </dev/null >"$KAFKA_HOME_DIR/mvn.log" 2>&1; then
      cat "$KAFKA_HOME_DIR/mvn.log" >&2
      rm -rf "$tmp"
      die "mvn dependency:copy-dependencies failed (log: $KAFKA_HOME_DIR/mvn.log)"
    fi
    check_lib "$tmp"
    rm -f "$MARKER"
    rm -rf "$LIB_DIR"
    mv "$tmp" "$LIB_DIR"
    # The marker is written last: an interrupted fetch leaves no marker and is redone.
    printf '%s\n' "$pom_sum" >"$MARKER"
    log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l | tr -d ' ') jars"
  ) 9>"$KAFKA_HOME_DIR/.fetch.lock"
}

# ---------------------------------------------------------------------------------------------
# helpers for start/stop/status

DATA_DIR=""
PORT=9092
CONTROLLER_PORT=9093
HEAP=512m
TIMEOUT=""
AUTO_CREATE=true
EXTRA_PROPS=()

parse_opts() {
  local cmd=$1
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --data) [[ $# -ge 2 ]] || die "--data needs a value"; DATA_DIR=$2; shift 2 ;;
      --data=*) DATA_DIR=${1#*=}; shift ;;
      --timeout) [[ $# -ge 2 ]] || die "--timeout needs a value"; TIMEOUT=$2; shift 2 ;;
      --timeout=*) TIMEOUT=${1#*=}; shift ;;
      -h | --help) usage; exit 0 ;;
      *)
        if [[ "$cmd" != start ]]; then
          die "unknown option for $cmd: $1"
        fi
        case "$1" in
          --port) [[ $# -ge 2 ]] || die "--port needs a value"; PORT=$2; shift 2 ;;
          --port=*) PORT=${1#*=}; shift ;;
          --controller-port) [[ $# -ge 2 ]] || die "--controller-port needs a value"; CONTROLLER_PORT=$2; shift 2 ;;
          --controller-port=*) CONTROLLER_PORT=${1#*=}; shift ;;
          --heap) [[ $# -ge 2 ]] || die "--heap needs a value"; HEAP=$2; shift 2 ;;
          --heap=*) HEAP=${1#*=}; shift ;;
          --no-auto-create) AUTO_CREATE=false; shift ;;
          --set) [[ $# -ge 2 ]] || die "--set needs KEY=VALUE"; EXTRA_PROPS+=("$2"); shift 2 ;;
          --set=*) EXTRA_PROPS+=("${1#*=}"); shift ;;
          *) die "unknown option for start: $1" ;;
        esac
        ;;
    esac
  done
  [[ -n "$DATA_DIR" ]] || die "$cmd needs --data DIR"
  [[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1 && "$PORT" -le 65535 ]] || die "bad --port: $PORT"
  [[ "$CONTROLLER_PORT" =~ ^[0-9]+$ && "$CONTROLLER_PORT" -ge 1 && "$CONTROLLER_PORT" -le 65535 ]] \
    || die "bad --controller-port: $CONTROLLER_PORT"
  [[ "$PORT" != "$CONTROLLER_PORT" ]] || die "--port and --controller-port must differ"
  [[ "$HEAP" =~ ^[0-9]+[kKmMgG]?$ ]] || die "bad --heap: $HEAP (e.g. 512m)"
  [[ -z "$TIMEOUT" || "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad --timeout: $TIMEOUT"
  local kv
  for kv in ${EXTRA_PROPS[@]+"${EXTRA_PROPS[@]}"}; do
    [[ "$kv" =~ ^[A-Za-z0-9._-]+=.*$ ]] || die "bad --set (want KEY=VALUE): $kv"
  done
  if [[ "$cmd" == start ]]; then
    mkdir -p "$DATA_DIR"
  fi
  if [[ -d "$DATA_DIR" ]]; then
    DATA_DIR=$(cd -- "$DATA_DIR" && pwd)
  fi
}

# A JVM heap size (512m, 1g, 262144k, bytes) in KiB.
heap_kib() {
  local n=${1%[kKmMgG]} unit=${1##*[0-9]}
  case "$unit" in
    k | K) printf '%s\n' "$n" ;;
    m | M) printf '%s\n' "$((n * 1024))" ;;
    g | G) printf '%s\n' "$((n * 1024 * 1024))" ;;
    *) printf '%s\n' "$((n / 1024))" ;;
  esac
}

pid_file() { printf '%s\n' "$DATA_DIR/kafka.pid"; }

# True if the process exists and is not a zombie. The broker is detached (setsid) and its parent
# exits, so after it dies it stays a zombie until init reaps it (seconds in some containers), and
# `kill -0` alone would call it alive.
pid_alive() {
  local pid=$1 state=""
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || true
  else
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || true
  fi
  [[ "$state" != Z* ]]
}

# Prints the pid of the broker started from DATA_DIR if it is alive (and really ours), else fails.
running_pid() {
  local pf pid args
  pf=$(pid_file)
  [[ -f "$pf" ]] || return 1
  pid=$(tr -cd '0-9' <"$pf")
  [[ -n "$pid" ]] || return 1
  pid_alive "$pid" || return 1
  # Guard against a recycled pid: it must be a kafka.Kafka JVM started on this DATA_DIR's config.
  if args=$(ps -ww -p "$pid" -o args= 2>/dev/null); then
    [[ "$args" == *kafka.Kafka*"$DATA_DIR/server.properties"* ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# The client port of the broker configured in DATA_DIR (from its server.properties).
configured_port() {
  local sp="$DATA_DIR/server.properties"
  [[ -f "$sp" ]] || return 1
  sed -n 's/^advertised\.listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$sp" | head -n 1
}

configured_controller_port() {
  local sp="$DATA_DIR/server.properties"
  [[ -f "$sp" ]] || return 1
  sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1:\([0-9]*\).*/\1/p' "$sp" | head -n 1
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  local -a to=()
  if command -v timeout >/dev/null 2>&1; then
    to=(timeout 2)
  fi
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  ${to[@]+"${to[@]}"} bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

show_tail() {
  local out="$DATA_DIR/kafka.out"
  if [[ -f "$out" ]]; then
    log "last lines of $out:"
    tail -n 40 "$out" >&2 || true
  fi
}

new_cluster_id() {
  if command -v python3 >/dev/null 2>&1; then
    # A leading "-" would be read as an option by kafka-storage (Kafka's own generator avoids
    # it too): about 1 random id in 64 starts with one.
    python3 -c 'import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break'
  else
    "$(java_bin)" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid
  fi
}

write_server_properties() {
  local sp="$DATA_DIR/server.properties"
  cat >"$sp.tmp" <<EOF
# Written by tools/kafka/kafka.sh on every start; edits are overwritten.
# Single node, combined broker+controller (KRaft), loopback only. Kafka $KAFKA_VERSION.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$DATA_DIR/logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=$AUTO_CREATE

# Internal topics: one replica, and one partition each (defaults of 50 make the first
# consumer-group join and the first idempotent/transactional producer slow on 2 cores).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

# Fast first join; light thread pools for a 2-core machine.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
# The cleaner allocates this buffer eagerly on the heap (default 128 MiB).
log.cleaner.dedupe.buffer.size=4194304
log.cleaner.threads=1

# Clean, quick shutdown (SIGTERM); a restart then needs no log recovery.
controlled.shutdown.enable=true

# Segment/retention: Kafka defaults (1 GiB segments, 7 days retention).
EOF
  if [[ ${#EXTRA_PROPS[@]} -gt 0 ]]; then
    printf '\n# --set\n' >>"$sp.tmp"
    printf '%s\n' "${EXTRA_PROPS[@]}" >>"$sp.tmp"
  fi
  mv "$sp.tmp" "$sp"
}

# Readiness probe: an ApiVersions request, then a Metadata request that must list this broker
# (a fenced broker is not listed). Speaks the Kafka wire protocol directly; no client library.
probe_broker() {
  python3 - "$1" <<'PY'
import socket, struct, sys

port = int(sys.argv[1])

def call(sock, api_key, version, corr, body):
    client = b"kafka.sh"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv(sock, 4))[0]
    data = recv(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise SystemExit("correlation id mismatch")
    return data[4:]

def recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf

with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
    s.settimeout(3)
    r = call(s, 18, 0, 1, b"")  # ApiVersions v0
    err, n = struct.unpack(">hi", r[:6])
    if err != 0:
        raise SystemExit(f"ApiVersions error {err}")
    versions = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", r[6 + 6 * i: 12 + 6 * i])
        versions[k] = (lo, hi)
    lo, hi = versions.get(3, (99, -1))
    if not lo <= 4 <= hi:
        sys.exit(0)  # no Metadata v4 to ask with; ApiVersions answered, good enough
    # Metadata v4: topics=[] (none), allow_auto_topic_creation=false
    r = call(s, 3, 4, 2, struct.pack(">ib", 0, 0))
    throttle, brokers = struct.unpack(">ii", r[:8])
    if brokers < 1:
        raise SystemExit("metadata lists no broker yet")
PY
}

broker_ready() {
  local port=$1
  grep -q "$READY_LINE" "$DATA_DIR/kafka.out" 2>/dev/null || return 1
  if command -v python3 >/dev/null 2>&1; then
    probe_broker "$port" >/dev/null 2>&1
  else
    port_open "$port"
  fi
}

# ---------------------------------------------------------------------------------------------

cmd_start() {
  parse_opts start "$@"
  local timeout=${TIMEOUT:-90} pid port
  if pid=$(running_pid); then
    port=$(configured_port || true)
    log "broker from $DATA_DIR is already running (pid $pid)"
    printf '127.0.0.1:%s\n' "${port:-$PORT}"
    return 0
  fi
  rm -f "$(pid_file)"
  [[ -f "$LOG_CONFIG" ]] || die "missing $LOG_CONFIG"
  cmd_fetch
  check_lib "$LIB_DIR"

  local java p
  java=$(java_bin)
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $p on 127.0.0.1 is already in use"
    fi
  done

  write_server_properties
  local -a log_opts=("-Dlog4j2.configurationFile=$LOG_CONFIG")

  if [[ ! -f "$DATA_DIR/logs/meta.properties" ]]; then
    local cid
    cid=$(new_cluster_id)
    [[ -n "$cid" ]] || cid=$("$java" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid)
    [[ -n "$cid" ]] || die "could not make a cluster id"
    log "formatting $DATA_DIR/logs (cluster id $cid)"
    "$java" -Xmx256m -XX:TieredStopAtLevel=1 "${log_opts[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool format \
      "--cluster-id=$cid" -c "$DATA_DIR/server.properties" >"$DATA_DIR/format.out" 2>&1 \
      || { cat "$DATA_DIR/format.out" >&2; die "kafka-storage format failed"; }
  fi

  # -Xms256m, or the whole heap when --heap is smaller than that.
  local xms=256m
  if (($(heap_kib "$HEAP") < 256 * 1024)); then
    xms=$HEAP
  fi
  # Kafka's own G1 flags, plus C1-only JIT (TieredStopAtLevel=1): measured on 2 cores it cuts the
  # CPU burnt until ready from ~4.0 s to ~2.3 s (wall 2.6 s -> 2.0 s); peak throughput does not
  # matter for a test broker. KAFKA_OPTS comes last, so e.g. KAFKA_OPTS=-XX:TieredStopAtLevel=4 undoes it.
  local -a jvm_opts=(
    "-Xms$xms" "-Xmx$HEAP" -XX:TieredStopAtLevel=1
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  )
  local -a extra_opts=()
  if [[ -n "${KAFKA_OPTS:-}" ]]; then
    read -r -a extra_opts <<<"$KAFKA_OPTS"
  fi

  local out="$DATA_DIR/kafka.out"
  if [[ -f "$out" ]]; then
    mv -f "$out" "$out.prev"
  fi
  local t0
  t0=$(now_ms)
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), data in $DATA_DIR"
  # setsid: own session, no controlling terminal; stdin/stdout/stderr are not inherited, so a
  # caller that captures our output does not wait for the broker to exit.
  local -a detach=(nohup)
  if command -v setsid >/dev/null 2>&1; then
    detach=(setsid nohup)
  fi
  "${detach[@]}" "$java" "${jvm_opts[@]}" "${log_opts[@]}" ${extra_opts[@]+"${extra_opts[@]}"} \
    -cp "$LIB_DIR/*" kafka.Kafka "$DATA_DIR/server.properties" </dev/null >"$out" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$(pid_file)"

  local deadline=$((SECONDS + timeout))
  while :; do
    if ! pid_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      show_tail
      rm -f "$(pid_file)"
      die "broker exited during startup (see $out)"
    fi
    if broker_ready "$PORT"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      show_tail
      log "broker not ready after ${timeout}s; stopping it"
      TIMEOUT=30 stop_pid "$pid" || true
      rm -f "$(pid_file)"
      die "timed out waiting for the broker (see $out)"
    fi
    sleep 0.25
  done
  log "broker ready (pid $pid) after $(since "$t0")"
  printf '127.0.0.1:%s\n' "$PORT"
}

# SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
  local pid=$1 timeout=${TIMEOUT:-30}
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "pid $pid still alive after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      break
    fi
    sleep 0.1
  done
  if pid_alive "$pid"; then
    die "pid $pid survived SIGKILL"
  fi
}

cmd_stop() {
  parse_opts stop "$@"
  local pid port cport p
  if ! pid=$(running_pid); then
    rm -f "$DATA_DIR/kafka.pid" 2>/dev/null || true
    log "no broker running from $DATA_DIR"
    return 0
  fi
  port=$(configured_port || true)
  cport=$(configured_controller_port || true)
  local t0
  t0=$(now_ms)
  stop_pid "$pid"
  rm -f "$(pid_file)"
  # The process is gone; make sure its listening sockets are too before we return.
  for p in $port $cport; do
    for _ in $(seq 1 100); do
      port_open "$p" || break
      sleep 0.1
    done
    if port_open "$p"; then
      die "port $p still accepts connections after the broker exited"
    fi
  done
  log "broker (pid $pid) stopped after $(since "$t0")"
}

cmd_status() {
  parse_opts status "$@"
  local pid port
  if pid=$(running_pid); then
    port=$(configured_port || true)
    printf 'running pid=%s bootstrap=127.0.0.1:%s\n' "$pid" "${port:-?}"
    return 0
  fi
  printf 'not running\n'
  return 1
}

main() {
  [[ $# -ge 1 ]] || { usage >&2; exit 2; }
  local cmd=$1
  shift
  case "$cmd" in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    version) printf '%s\n' "$KAFKA_VERSION" ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage >&2; exit 2 ;;
  esac
}

main "$@"
