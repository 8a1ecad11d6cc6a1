#!/usr/bin/env bash
# Benchmark (not a test): frozen time of leave-running dumps of a process that keeps writing its
# memory (src/workloads/livewrite.c, PCT % of its memory per second), three ways, each on a fresh
# workload: `stasis dump --leave-running` with live copy (the default), the same with live copy off
# (STASIS_LIVE_COPY=off: every page copied frozen) and upstream `criu dump --leave-running`. Prints
# medians (min-max) of the frozen time (ours: the command's line; CRIU: its stats-dump image), the
# short first freeze live copy needs to set up its tracking, the total time and the pages the final
# freeze still read. Prints figures only; never asserts timings.
#   src/bench/live-bench.sh [MiB ...]        default: 64 512 2048
# Environment: REPS (default 3), PCT (default 10), SETTLE seconds before each run (default 3),
# RUN_MS the workload runs before each dump (default 1000), BENCH_DIR (default /var/tmp/stasis-live),
# AGENT=1: our two ways go through the resident agent's path instead of the one-shot CLI (one warm
# `stasis serve` JVM, as src/bench/agent-bench.sh; live = the engine's live copy as PodDump takes it,
# frozen = its leave-running dump without live copy), so no JVM start is in the total time.
# Each of our runs' phase timings (the dump's timing.* lines) go to $BENCH_DIR/phases.log.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
PCT=${PCT:-10}
SETTLE=${SETTLE:-3}
RUN_MS=${RUN_MS:-1000}
DIR=${BENCH_DIR:-/var/tmp/stasis-live}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(64 512 2048)
JUDGE=${STASIS_JUDGE:-/opt/stasis-judge}
AGENT=${AGENT:-0}
"$HERE/.ci/install-judge" >&2

mkdir -p "$DIR"
gcc -O2 -pthread -o "$DIR/livewrite" "$HERE/src/workloads/livewrite.c"
"$HERE/stasis" --version >/dev/null   # builds the agent first if needed

SOCK="$DIR/sock"
ask() { # one request to `stasis serve`, one answer line (python3: no socat/nc -U needed)
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
if [ "$AGENT" = 1 ]; then
  rm -f "$SOCK"
  setsid "$HERE/stasis" serve --socket "$SOCK" >"$DIR/serve.log" 2>&1 </dev/null &
  SERVE=$!
  trap 'kill "$SERVE" 2>/dev/null || true' EXIT
  for _ in $(seq 600); do grep -q '^serve: listening' "$DIR/serve.log" 2>/dev/null && break; sleep 0.5; done
  grep -q '^serve: listening' "$DIR/serve.log" || { cat "$DIR/serve.log" >&2; exit 1; }
  sed 's/^/  /' "$DIR/serve.log" >&2
fi

# agent_dump PID DIR live|leave-running: through `stasis serve`; the answer's timings to $DIR/out
agent_dump() {
  local ans
  ans=$(ask dump "$1" "$2" "$3")
  case "$ans" in ok*) ;; *) echo "live-bench: $ans" >&2; return 1 ;; esac
  case "$ans" in *" live_copy=0"*)
    echo "live-bench: live copy not possible here (see $DIR/serve.log)" >&2; return 1 ;;
  esac
  tr ' ' '\n' <<<"$ans" >"$DIR/out"
  echo "(frozen $(sed -n 's/^frozen_ms=//p' "$DIR/out") ms)" >>"$DIR/out"
}

start_workload() { # $1 = MiB; prints the PID once the memory is filled and being written
  local state="$DIR/state"
  rm -rf "$state"; mkdir -p "$state"
  setsid "$DIR/livewrite" "$state" "$1" "$PCT" </dev/null >"$state/log" 2>&1 &
  local w=$!
  for _ in $(seq 1200); do [ -s "$state/ready" ] && break; sleep 0.05; done
  if [ ! -s "$state/ready" ]; then
    kill -9 "$w" 2>/dev/null
    echo "live-bench: livewrite $1 MiB not ready after 60 s: $(tail -n 1 "$state/log")" >&2
    return 1
  fi
  sleep "$(echo "$RUN_MS / 1000" | bc -l)"
  cat "$state/ready"
}

stop_workload() { # $1 = PID: killed, and gone within 10 s
  kill -9 "$1" 2>/dev/null || true
  for _ in $(seq 500); do [ -e "/proc/$1" ] || return 0; sleep 0.02; done
  echo "live-bench: PID $1 still there 10 s after SIGKILL" >&2; exit 1
}

wait_no_overmount() { # CRIU refuses files on overmounted mounts (other jobs may bind-mount over /)
  for _ in $(seq 600); do
    [ "$(awk '$5 == "/"' /proc/self/mountinfo | wc -l)" -le 1 ] && return 0
    sleep 0.5
  done
  echo "live-bench: / stays overmounted; criu cannot dump" >&2; exit 1
}

# one_run MODE MiB -> "frozen_ms total_ms setup_frozen_ms frozen_pages"
one_run() {
  local mode=$1 mib=$2 pid img="$DIR/images" t0 t1 frozen setup=0 fpages=-
  rm -rf "$img"; mkdir -p "$img"
  [ "$mode" = criu ] && wait_no_overmount
  sync; sleep "$SETTLE"
  pid=$(start_workload "$mib") || exit 1
  t0=$(date +%s%N)
  # a failed dump stops the bench, without leaving the workload running
  case $AGENT$mode in
    1live) agent_dump "$pid" "$img" live || { stop_workload "$pid"; exit 1; } ;;
    1frozen) agent_dump "$pid" "$img" leave-running || { stop_workload "$pid"; exit 1; } ;;
    1criu|0criu) "$JUDGE/bin/criu" dump -t "$pid" -D "$img" -o dump.log --leave-running \
      || { grep Error "$img/dump.log" >&2; stop_workload "$pid"; exit 1; } ;;
    0live) "$HERE/stasis" dump --pid "$pid" --images-dir "$img" --leave-running -v >"$DIR/out" \
      || { stop_workload "$pid"; exit 1; } ;;
    0frozen) STASIS_LIVE_COPY=off "$HERE/stasis" dump --pid "$pid" --images-dir "$img" \
      --leave-running -v >"$DIR/out" || { stop_workload "$pid"; exit 1; } ;;
  esac
  t1=$(date +%s%N)
  stop_workload "$pid"
  if [ "$mode" = criu ]; then
    frozen=$("$JUDGE/bin/crit" decode -i "$img/stats-dump" | python3 -c \
      'import json,sys; print(json.load(sys.stdin)["entries"][0]["dump"]["frozen_time"]//1000)')
  else
    frozen=$(sed -n 's/.*(frozen \([0-9]*\) ms).*/\1/p' "$DIR/out")
    setup=$(grep -o 'live_setup_frozen_ms=[0-9]*' "$DIR/out" | cut -d= -f2 || true)
    fpages=$(grep -o 'live_frozen_pages=[0-9]*' "$DIR/out" | cut -d= -f2 || true)
    { echo "== $mode $mib MiB"; tr ' ' '\n' <"$DIR/out"; } >>"$DIR/phases.log"
  fi
  echo "$frozen $(( (t1 - t0) / 1000000 )) ${setup:-0} ${fpages:--}"
  rm -rf "$img"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk '{a[NR]=$1} END {print a[1] "-" a[NR]}'; }
col() { cut -d' ' -f"$2" "$DIR/$1.runs"; }

echo "live-bench: $REPS runs each, ours through $([ "$AGENT" = 1 ] && echo "the resident agent (stasis serve)" || echo "the one-shot CLI"), workload writes $PCT % of its memory per second;" \
  "medians [min-max]; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-7s %16s %16s %16s %14s\n' MiB mode frozen_ms setup_frozen_ms total_ms frozen_pages
: >"$DIR/phases.log"
for mib in "${SIZES[@]}"; do
  for m in live frozen criu; do : >"$DIR/$m.runs"; done
  for i in $(seq "$REPS"); do
    for m in live frozen criu; do one_run "$m" "$mib" >>"$DIR/$m.runs"; done
  done
  for m in live frozen criu; do
    printf '%-6s %-7s %16s %16s %16s %14s\n' "$mib" "$m" \
      "$(col $m 1 | median) [$(col $m 1 | spread)]" "$(col $m 3 | median)" \
      "$(col $m 2 | median) [$(col $m 2 | spread)]" "$(col $m 4 | median)"
  done
  live=$(col live 1 | median); criu=$(col criu 1 | median); frz=$(col frozen 1 | median)
  both=$(paste -d+ <(col live 1) <(col live 3) | bc | median)
  printf '%-6s live/criu frozen %.3f; live/frozen %.3f; (live + setup freeze)/criu %.3f\n' "$mib" \
    "$(echo "$live / $criu" | bc -l)" "$(echo "$live / $frz" | bc -l)" \
    "$(echo "$both / $criu" | bc -l)"
done
