#!/usr/bin/env bash
# Benchmark (not a test): the downtime of a migration of a runc container on this machine, the way
# a Migration moves a pod (docs/restore.md), for patterned-memory containers of several sizes.
# Per run, on a fresh pair of containers:
#   1. source: a runc container (its own namespaces, stdio on pipes) whose init is the
#      patterned-memory workload (src/workloads/memhog.c, static) with a state volume;
#   2. checkpoint as the Migration's Checkpoint takes it (leaveRunning: true): `stasis dump
#      --leave-running --to URI --spool-dir` into a local store (STORE=file) or S3Proxy (STORE=s3);
#      the source is frozen for the cut and runs on;
#   3. the copy: a second container, its bundle the image's root file system and the source's OCI
#      config with its own cgroup and state volume, annotated as the operator annotates a restored
#      pod's container (io.kubernetes.cri.container-name + restore-from.stasis.dev/<name>), created
#      through node-agent/src/main/runtime/stasis-runc exactly as containerd's runc shim does
#      (global --root --log --log-format json, `create --bundle --pid-file` with stdio on pipes,
#      then `start`): the wrapper fetches and verifies the images and runs `runc restore`;
#   4. ready: the copy's workload checks every word of its memory (its `check`); it must say OK;
#   5. the source is removed (kill, delete), as the Migration deletes it once the copy is Ready.
# Prints per size the medians [min-max] over REPS of the downtime, freeze to copy verified (what a
# Migration's status.downtimeMillis measures, less the API round trips), split into phases:
#   frozen   the source's final freeze (the dump's own `frozen` figure)
#   store    thaw until every byte is stored (live-copy page assembly + upload/commit)
#   fetch    the wrapper's `stasis fetch` (download and verify every object's digest)
#   restore  the wrapper's `runc restore` (CRIU restore of the processes)
#   wrapper  the rest of the wrapper's create (its own shell work, the root file system diff)
#   ready    create's return until the copy's check said OK (`start` + the workload's check)
#   other    the rest: the dump command's JVM exit after the store, the gaps between the calls
# The cut's moment is the dump command's return less its phase timings after the freeze, so JVM
# start-up before the freeze is not downtime and its exit after the store is "other". fetch and
# restore are timed by thin wrappers around the Stasis command line (STASIS_CLI) and runc
# (STASIS_RUNC) that stasis-runc is pointed at; the wrapper itself runs unchanged.
# The dumps' own phase lines (-v) are kept in $BENCH_DIR/dumps.log.
# Never asserts timings; fails (exit 1, one line) if a step fails or a copy's check is not OK.
#   src/bench/migrate-bench.sh [MiB ...]        default: 64 512 2048
# Environment: REPS (default 3), STORE file|s3 (default file), SETTLE seconds before each run
# (default 3), BENCH_DIR (default /var/tmp/stasis-migrate; needs room for 3x the largest size).
# Needs root, gcc (static glibc), runc, busybox, java/mvn (the launcher builds the agent) and the
# judge's CRIU tree (.ci/install-judge), which is packaged as the agent image packages its CRIU.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
STORE=${STORE:-file}
SETTLE=${SETTLE:-3}
DIR=${BENCH_DIR:-/var/tmp/stasis-migrate}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(64 512 2048)
JUDGE=${STASIS_JUDGE:-/opt/stasis-judge}
WRAPPER="$HERE/node-agent/src/main/runtime/stasis-runc"
RUNC=$(command -v runc) || { echo "migrate-bench: runc is required" >&2; exit 1; }
BUSYBOX=$(command -v busybox) || { echo "migrate-bench: busybox is required" >&2; exit 1; }
case "$STORE" in file|s3) ;; *) echo "migrate-bench: STORE must be file or s3, not '$STORE'" >&2; exit 1 ;; esac
"$HERE/.ci/install-judge" >&2

say() { echo "migrate-bench: $*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$DIR"
# only what this script makes there: BENCH_DIR may be a directory with other things in it
rm -rf "${DIR:?}/image" "$DIR/criu" "$DIR/runc-root" "$DIR/runs" "$DIR/timing" "$DIR/dumps.log"
ROOT="$DIR/runc-root"   # runc's state for both containers: one node's runtime
mkdir -p "$ROOT"
"$HERE/stasis" --version >/dev/null   # builds the agent first if needed

# The image: busybox and the static workload. Both containers' roots are copies of it, as a node
# unpacks the pod's image; the workload writes nothing there (its state is on the volume).
IMAGE="$DIR/image"
mkdir -p "$IMAGE"/{bin,proc,dev,sys,tmp,etc}
cp "$BUSYBOX" "$IMAGE/bin/busybox"
ln -s busybox "$IMAGE/bin/sh"
gcc -O2 -static -o "$IMAGE/bin/memhog" "$HERE/src/workloads/memhog.c"

# runc restore's CRIU, packaged from the judge's Debian tree as the agent image packages Debian's.
"$HERE/node-agent/src/main/runtime/package-criu" "$JUDGE/sid" "$DIR/criu" >/dev/null

# Timing shims: stasis-runc is pointed at these instead of the command line and runc; each runs
# the real one and appends "<argument> <start ns> <end ns>" to $DIR/timing.
cat >"$DIR/cli-timed" <<EOF
#!/bin/bash
t0=\$(date +%s%N); "$HERE/stasis" "\$@"; rc=\$?
echo "\$1 \$t0 \$(date +%s%N)" >>"$DIR/timing"; exit \$rc
EOF
cat >"$DIR/runc-timed" <<EOF
#!/bin/bash
case " \$* " in *" restore "*) ;; *) exec "$RUNC" "\$@" ;; esac
t0=\$(date +%s%N); "$RUNC" "\$@"; rc=\$?
echo "restore \$t0 \$(date +%s%N)" >>"$DIR/timing"; exit \$rc
EOF
chmod +x "$DIR/cli-timed" "$DIR/runc-timed"

# The store.
S3_PID=""
ENV=(STASIS_RUNTIME_ENV=/nonexistent STASIS_WORK_DIR="$DIR/restore-work" STASIS_CLI="$DIR/cli-timed"
  STASIS_RUNC="$DIR/runc-timed" STASIS_CRIU_DIR="$DIR/criu")
if [ "$STORE" = s3 ]; then
  # S3Proxy (filesystem backend) on loopback, as src/bench/storage-bench.sh runs it.
  V=4.1.0
  JAR=$HOME/.m2/repository/org/gaul/s3proxy/$V/s3proxy-$V-jar-with-dependencies.jar
  [ -f "$JAR" ] || mvn -B -q dependency:get -Dartifact=org.gaul:s3proxy:$V:jar:jar-with-dependencies >&2
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$DIR/s3/bench"
  printf '%s\n' "s3proxy.endpoint=http://127.0.0.1:$PORT" s3proxy.authorization=aws-v2-or-v4 \
    s3proxy.identity=bench s3proxy.credential=bench-secret jclouds.provider=filesystem \
    "jclouds.filesystem.basedir=$DIR/s3" >"$DIR/s3.properties"
  java -Xmx1g -jar "$JAR" --properties "$DIR/s3.properties" >"$DIR/s3proxy.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
  done
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" || die "S3Proxy did not come up: $(tail -n 1 "$DIR/s3proxy.log")"
  ENV+=(STASIS_S3_ENDPOINT="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=bench
    AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1)
fi

# Every container this run made, and its stdio feeders' process groups: removed on exit.
IDS=()
GROUPS_=()
cleanup() {
  for id in "${IDS[@]}"; do "$RUNC" --root "$ROOT" delete --force "$id" >/dev/null 2>&1 || true; done
  for g in "${GROUPS_[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  if [ -n "$S3_PID" ]; then kill "$S3_PID" 2>/dev/null || true; fi
  rm -rf "$DIR/store" "$DIR/spool" "$DIR/s3" "$DIR/restore-work" "$DIR"/run-*
}
trap cleanup EXIT

# bundle NAME MiB STATE_DIR -> a bundle at $DIR/NAME with a fresh copy of the image as its root
bundle() {
  local b="$DIR/$1"
  mkdir -p "$b"
  cp -a "$IMAGE" "$b/rootfs"
  (cd "$b" && "$RUNC" spec)
  python3 - "$b/config.json" "$2" "$3" "$1" <<'PY'
import json, sys
path, mib, state, name = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/memhog", "/state", mib]
c["root"]["readonly"] = False
c["hostname"] = "migrate-bench"
c["linux"]["cgroupsPath"] = "/stasis-bench/" + name
c["mounts"].append({"destination": "/state", "type": "bind", "source": state,
                    "options": ["rbind", "rw"]})
json.dump(c, open(path, "w"), indent=1)
PY
}

# run_on_pipes SCRIPT_NAME COMMAND...: COMMAND with stdin from a process that keeps it open and
# stdout+stderr through cat into $DIR/SCRIPT_NAME.out, as the shim gives a runtime its stdio; the
# whole pipeline in a process group of its own (removed on exit). Waits for COMMAND's exit code.
run_on_pipes() {
  local name=$1 rc="$DIR/$1.rc" q=""
  shift
  rm -f "$rc"
  for a in "$@"; do q+=" '$a'"; done
  echo "sleep 100000 | {$q; echo \$? > $rc; } 2>&1 | cat > $DIR/$name.out" >"$DIR/$name.sh"
  setsid sh "$DIR/$name.sh" >/dev/null 2>&1 </dev/null &
  GROUPS_+=($!)
  disown   # no "Killed" notice when the clean-up ends it
  for _ in $(seq 6000); do [ -s "$rc" ] && break; sleep 0.05; done
  [ -s "$rc" ] || die "$name did not return within 300 s: $(tail -n 1 "$DIR/$name.out")"
  return "$(cat "$rc")"
}

# await_check STATE_DIR -> waits (120 s at most) for the workload's verdict, prints it
await_check() {
  for _ in $(seq 12000); do
    [ -f "$1/result" ] && { cat "$1/result"; return 0; }
    sleep 0.01
  done
  echo "FAIL no verdict within 120 s"
}

# one_run MiB N -> "downtime frozen store fetch restore ready other" (ms)
one_run() {
  local mib=$1 n=$2 src="src-$2" dst="dst-$2" out
  local sstate="$DIR/run-$n/state-src" dstate="$DIR/run-$n/state-dst"
  mkdir -p "$sstate" "$dstate"
  rm -rf "$DIR/store" "$DIR/spool" "$DIR/timing"
  sync; sleep "$SETTLE"

  # 1. the source
  bundle "run-$n/$src" "$mib" "$sstate"
  IDS+=("$src")
  run_on_pipes "run-$n/$src-run" "$RUNC" --root "$ROOT" run -d --bundle "$DIR/run-$n/$src" \
    --pid-file "$DIR/run-$n/$src/pid" "$src" || die "source container did not start: $(tail -n 1 "$DIR/run-$n/$src-run.out")"
  for _ in $(seq 2400); do [ -s "$sstate/ready" ] && break; sleep 0.05; done
  [ -s "$sstate/ready" ] || die "the source's workload ($mib MiB) was not ready within 120 s"
  local pid
  pid=$(cat "$DIR/run-$n/$src/pid")

  local uri
  if [ "$STORE" = s3 ]; then uri="s3://bench/migrate/$n"; else uri="file://$DIR/store/$n"; fi
  # The copy's bundle, made before the cut: on a node the image is unpacked by then too, and this
  # script's own cp and python are no part of a migration's downtime.
  bundle "run-$n/$dst" "$mib" "$dstate"
  python3 - "$DIR/run-$n/$dst/config.json" "$uri" <<'PY'
import json, sys
path, uri = sys.argv[1:]
c = json.load(open(path))
c.setdefault("annotations", {}).update({
    "io.kubernetes.cri.container-name": "app",
    "restore-from.stasis.dev/app": uri})
json.dump(c, open(path, "w"), indent=1)
PY

  # 2. the checkpoint, source left running
  out=$(env "${ENV[@]}" "$HERE/stasis" dump --pid "$pid" --leave-running --to "$uri" \
    --spool-dir "$DIR/spool" -v 2>&1) || die "dump failed: $(echo "$out" | tail -n 1)"
  local t_stored
  t_stored=$(date +%s%N)
  grep -q '^dumped PID' <<<"$out" || die "dump printed no result: $out"
  echo "$mib MiB run $n: $out" >>"$DIR/dumps.log"   # every phase of the dump, kept for reading
  timing() { grep -o "[[:space:]]$1=[0-9]*" <<<"$out" | cut -d= -f2 | head -n 1; }
  local frozen assemble commit
  frozen=$(timing frozen_ms); assemble=$(timing live_assemble_ms); commit=$(timing commit_ms)
  local store=$(( ${assemble:-0} + ${commit:-0} ))
  local t_freeze=$(( t_stored - (frozen + store) * 1000000 ))
  [ -d "/proc/$pid" ] || die "the source did not survive its checkpoint"

  # 3. the copy, through the wrapper as the shim drives it
  local log="$DIR/run-$n/shim.json" t_create t_created
  IDS+=("$dst")
  t_create=$(date +%s%N)
  run_on_pipes "run-$n/$dst-create" env "${ENV[@]}" "$WRAPPER" --root "$ROOT" --log "$log" \
    --log-format json create --bundle "$DIR/run-$n/$dst" --pid-file "$DIR/run-$n/$dst/pid" "$dst" \
    || die "create through stasis-runc failed: $(tail -n 1 "$DIR/run-$n/$dst-create.out")"
  t_created=$(date +%s%N)
  env "${ENV[@]}" "$WRAPPER" --root "$ROOT" --log "$log" --log-format json start "$dst" \
    || die "start through stasis-runc failed"

  # 4. ready: the copy's own check of every word
  touch "$dstate/check"
  local verdict t_ready
  verdict=$(await_check "$dstate")
  t_ready=$(date +%s%N)
  case "$verdict" in OK*) ;; *) die "the copy ($mib MiB) failed its check: $verdict" ;; esac
  [ -f "$dstate/ready" ] && die "the copy started its workload afresh (it wrote ready)"

  # 5. the source goes
  "$RUNC" --root "$ROOT" kill "$src" KILL
  for _ in $(seq 500); do [ -d "/proc/$pid" ] || break; sleep 0.02; done
  "$RUNC" --root "$ROOT" delete --force "$src"
  "$RUNC" --root "$ROOT" delete --force "$dst"
  rm -rf "$DIR/run-$n" "$DIR/store" "$DIR/spool"

  local fetch restore
  fetch=$(awk '$1 == "fetch" {print int(($3 - $2) / 1000000)}' "$DIR/timing")
  restore=$(awk '$1 == "restore" {print int(($3 - $2) / 1000000)}' "$DIR/timing")
  if [ -z "$fetch" ] || [ -z "$restore" ]; then
    die "the wrapper did not fetch and restore ($(cat "$DIR/timing"))"
  fi
  local ready=$(( (t_ready - t_created) / 1000000 ))
  local down=$(( (t_ready - t_freeze) / 1000000 ))
  local wrapper=$(( (t_created - t_create) / 1000000 - fetch - restore ))
  echo "$down $frozen $store $fetch $restore $wrapper $ready" \
    "$(( down - frozen - store - fetch - restore - wrapper - ready ))"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk '{a[NR]=$1} END {print a[1] "-" a[NR]}'; }
col() { cut -d' ' -f"$1" "$DIR/runs"; }

echo "migrate-bench: store $STORE, $REPS runs each, medians [min-max] in ms;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
printf '%-6s %20s %16s %16s %16s %16s %12s %14s %8s\n' MiB downtime frozen store fetch restore \
  wrapper ready other
n=0
for mib in "${SIZES[@]}"; do
  : >"$DIR/runs"
  for _ in $(seq "$REPS"); do
    n=$((n + 1))
    one_run "$mib" "$n" >>"$DIR/runs"
  done
  printf '%-6s %20s' "$mib" "$(col 1 | median) [$(col 1 | spread)]"
  for c in 2 3 4 5; do printf ' %16s' "$(col $c | median) [$(col $c | spread)]"; done
  printf ' %12s %14s %8s\n' "$(col 6 | median)" "$(col 7 | median) [$(col 7 | spread)]" \
    "$(col 8 | median)"
done
echo "migrate-bench: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
