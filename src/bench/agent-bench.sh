#!/usr/bin/env bash
# Benchmark (not a test): frozen time of a dump through the resident agent's path, against upstream
# CRIU. One long-lived JVM (`stasis serve`, hidden: the engine as the node agent calls it, through
# ProcessDumper.ENGINE, after the agent's start-up warm-up) takes dump requests on a Unix socket;
# each run starts a fresh patterned-memory workload (src/workloads/memhog.c), dumps it through that
# JVM or with `criu dump`, REPS times per size, interleaved with the order alternating, and prints
# the medians [min-max] of the frozen time (ours: the engine's frozen_ms; CRIU's: its stats-dump),
# their ratio, and the medians of our frozen phases.
#   src/bench/agent-bench.sh [MiB ...]        default: 64 512
# Environment: REPS (default 5), SETTLE seconds before each run (default 3), MODE=kill (default:
# both tools kill the process after the dump, and ours makes the images durable before the kill)
# or MODE=leave-running (both leave it running; ours releases it before the final fsync) or
# MODE=live (both leave it running; ours with live copy as PodDump takes it: tracking set up in a
# short freeze of its own, copy rounds while it runs, then the final freeze for what changed; the
# table then shows the final freeze, the setup freeze and their sum, and the ratio is the SUM's
# against CRIU's frozen time) or MODE=precopy (both kill the process; ours as a kill-mode pod
# checkpoint takes it: the same live copy stored as the set's parent while the process runs, then
# the final freeze writes only what changed since, durably, and kills; table and ratio as for
# live), BENCH_DIR (default /var/tmp/stasis-agent-bench; $BENCH_DIR/answers keeps each run's
# answer line, every timing the engine reported).
# Needs root, gcc, python3 and upstream CRIU.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-5}
SETTLE=${SETTLE:-3}
MODE=${MODE:-kill}
DIR=${BENCH_DIR:-/var/tmp/stasis-agent-bench}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(64 512)
case "$MODE" in
  kill) LEAVE=() ; OURS_LEAVE= ;;
  leave-running) LEAVE=(--leave-running) ; OURS_LEAVE=leave-running ;;
  live) LEAVE=(--leave-running) ; OURS_LEAVE=live ;;
  precopy) LEAVE=() ; OURS_LEAVE=precopy ;;
  *) echo "agent-bench: MODE must be kill, leave-running, live or precopy, not '$MODE'" >&2; exit 2 ;;
esac
CRIU=("${STASIS_JUDGE:-/opt/stasis-judge}/bin/criu")
CRIT=("${STASIS_JUDGE:-/opt/stasis-judge}/bin/crit")
"$HERE/.ci/install-judge" >&2

mkdir -p "$DIR"
: >"$DIR/answers"
gcc -O2 -o "$DIR/memhog" "$HERE/src/workloads/memhog.c"
"$HERE/stasis" --version >/dev/null   # builds the agent first if needed

SOCK="$DIR/sock"
# one request, one answer line (python3: no socat/nc -U needed)
ask() {
  python3 - "$SOCK" "$*" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(600)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
b = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    b += d
print(b.decode().strip())
EOF
}

rm -f "$SOCK"
setsid "$HERE/stasis" serve --socket "$SOCK" >"$DIR/serve.log" 2>&1 </dev/null &
SERVE=$!
stop_serve() { kill "$SERVE" 2>/dev/null || true; }
trap stop_serve EXIT
for _ in $(seq 600); do grep -q '^serve: listening' "$DIR/serve.log" 2>/dev/null && break; sleep 0.5; done
grep -q '^serve: listening' "$DIR/serve.log" || { cat "$DIR/serve.log" >&2; exit 1; }
sed 's/^/  /' "$DIR/serve.log" >&2

start_workload() { # $1 = MiB; prints the PID once the memory is filled
  local state="$DIR/state"
  rm -rf "$state"; mkdir -p "$state"
  setsid "$DIR/memhog" "$state" "$1" </dev/null >"$state/log" 2>&1 &
  for _ in $(seq 1200); do [ -s "$state/ready" ] && break; sleep 0.05; done
  cat "$state/ready"
}

wait_no_overmount() { # see dump-bench.sh
  for _ in $(seq 600); do
    [ "$(awk '$5 == "/"' /proc/self/mountinfo | wc -l)" -le 1 ] && return 0
    sleep 0.5
  done
  echo "agent-bench: / stays overmounted; criu cannot dump" >&2; exit 1
}

wait_gone() { for _ in $(seq 3000); do [ -e "/proc/$1" ] || return 0; sleep 0.02; done; }

PHASES=(parasite_ms gather_ms memdump_ms files_ms commit_ms kill_ms)
LIVE=0
case "$MODE" in live|precopy) LIVE=1 ;; esac
[ "$LIVE" = 1 ] && PHASES=(live_setup_frozen_ms live_setup_seize_us live_setup_uffd_us live_setup_release_us \
  parasite_ms gather_ms memdump_ms files_ms \
  live_frozen_pages live_rounds live_ms)
[ "$MODE" = precopy ] && PHASES+=(live_parent_ms commit_ms kill_ms)

# one_run TOOL MiB -> prints "frozen_ms phase..." (phases only for stasis)
one_run() {
  local tool=$1 mib=$2 pid img="$DIR/images" ans frozen
  rm -rf "$img"; mkdir -p "$img"
  [ "$tool" = stasis ] || wait_no_overmount
  sync; sleep "$SETTLE"
  pid=$(start_workload "$mib")
  if [ "$tool" = stasis ]; then
    ans=$(ask dump "$pid" "$img" $OURS_LEAVE)
    case "$ans" in ok*) ;; *) echo "agent-bench: $ans" >&2; kill -9 "$pid"; exit 1 ;; esac
    echo "$mib $ans" >>"$DIR/answers"   # every timing of the run, the sub-phases too
    case "$ans" in *" live_copy=0"*)
      echo "agent-bench: live copy not possible here (see $DIR/serve.log)" >&2; kill -9 "$pid"
      exit 1 ;;
    esac
    frozen=$(tr ' ' '\n' <<<"$ans" | sed -n 's/^frozen_ms=//p')
    local out="$frozen" p v
    for p in "${PHASES[@]}"; do
      v=$(tr ' ' '\n' <<<"$ans" | sed -n "s/^$p=//p"); out="$out ${v:-0}"
    done
    echo "$out"
  else
    "${CRIU[@]}" dump -t "$pid" -D "$img" -o dump.log "${LEAVE[@]}" \
      || { grep Error "$img/dump.log" >&2; kill -9 "$pid"; exit 1; }
    "${CRIT[@]}" decode -i "$img/stats-dump" | python3 -c \
      'import json,sys; print(json.load(sys.stdin)["entries"][0]["dump"]["frozen_time"]//1000)'
  fi
  case "$MODE" in kill|precopy) ;; *) kill -9 "$pid" ;; esac
  wait_gone "$pid"
  rm -rf "$img"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk '{a[NR]=$1} END {print a[1] "-" a[NR]}'; }

echo "mode $MODE, medians of $REPS runs each [min-max]; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$LIVE" = 1 ]; then
  printf '%-6s %18s %16s %18s %18s %6s   %s\n' MiB final_frozen_ms setup_frozen_ms \
    sum_frozen_ms criu_frozen_ms ratio "stasis phases (medians; ratio = sum / criu)"
else
  printf '%-6s %22s %18s %6s   %s\n' MiB stasis_agent_frozen_ms criu_frozen_ms ratio \
    "stasis phases (medians, ms)"
fi
for mib in "${SIZES[@]}"; do
  : >"$DIR/stasis.runs"; : >"$DIR/criu.runs"
  for i in $(seq "$REPS"); do
    order="stasis criu"
    [ $((i % 2)) = 0 ] && order="criu stasis"
    for tool in $order; do one_run "$tool" "$mib" >>"$DIR/$tool.runs"; done
  done
  s=$(cut -d' ' -f1 "$DIR/stasis.runs" | median)
  c=$(cut -d' ' -f1 "$DIR/criu.runs" | median)
  phases=""
  for k in "${!PHASES[@]}"; do
    phases="$phases ${PHASES[$k]%_ms}=$(cut -d' ' -f$((k + 2)) "$DIR/stasis.runs" | median)"
  done
  if [ "$LIVE" = 1 ]; then
    # the setup freeze is a freeze too: the comparison is of the sum, run by run
    awk '{print $1 + $2}' "$DIR/stasis.runs" >"$DIR/sum.runs"
    sum=$(median <"$DIR/sum.runs")
    printf '%-6s %18s %16s %18s %18s %6.2f  %s\n' "$mib" \
      "$s [$(cut -d' ' -f1 "$DIR/stasis.runs" | spread)]" \
      "$(cut -d' ' -f2 "$DIR/stasis.runs" | median) [$(cut -d' ' -f2 "$DIR/stasis.runs" | spread)]" \
      "$sum [$(spread <"$DIR/sum.runs")]" \
      "$c [$(cut -d' ' -f1 "$DIR/criu.runs" | spread)]" "$(echo "$sum / $c" | bc -l)" "$phases"
    continue
  fi
  printf '%-6s %22s %18s %6.2f  %s\n' "$mib" \
    "$s [$(cut -d' ' -f1 "$DIR/stasis.runs" | spread)]" \
    "$c [$(cut -d' ' -f1 "$DIR/criu.runs" | spread)]" "$(echo "$s / $c" | bc -l)" "$phases"
done
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
ask quit >/dev/null || true
