#!/usr/bin/env bash
# Benchmark (not a test): the downtime of a migration of a runc container on this machine, the way
# a Migration moves a pod (docs/restore.md), for containers of several sizes whose memory is
# written all the time (src/workloads/livewrite.c, WRITE_PCT percent of it per second; with
# WRITE_PCT=0 the patterned memhog, which writes almost nothing once ready). Per run, on a fresh
# pair of containers:
#   1. source: a runc container (its own namespaces, stdio on pipes, its cgroup named after its
#      hex ID as runtimes name it) whose init is the workload, with a state volume;
#   2. checkpoint as the Migration's Checkpoint takes it, into a local store (STORE=file) or
#      S3Proxy (STORE=s3), the source running on:
#      PRECOPY=1 (default, as spec.preCopy): the agent's held pod dump (leaveRunning,
#        holdFinalFreeze) from the command line, `stasis dump --leave-running --pre-copy --to URI
#        --hold-final GO --spool-dir`: it stores the parent set and its parent manifest while the
#        source runs, prints `parent stored` and holds, write-tracked; "the target's agent" then
#        fetches and verifies the parent (`stasis fetch --parent-only` into
#        <staged>/<uid>/app.parent through a hidden directory, as RestoreStager pre-stages it);
#        then the go (GO created, as the operator annotates stasis.dev/final-freeze: go) and the one
#        cut, a cgroup freeze, stores only the pages written since the parent;
#      PRECOPY=0: `stasis dump --leave-running --to URI --spool-dir`, the whole memory after the cut;
#   3. the copy: a second container, its bundle the image's root file system and the source's OCI
#      config with its own cgroup and state volume, annotated as the operator annotates a restored
#      pod's container (io.kubernetes.cri.container-name + restore-from.stasis.dev/<name>), created
#      through node-agent/src/main/runtime/stasis-runc exactly as containerd's runc shim does
#      (global --root --log --log-format json, `create --bundle --pid-file` with stdio on pipes,
#      then `start`). PRECOPY=0: the annotation is the URI, the wrapper fetches and verifies every
#      object. PRECOPY=1: it is staged:<uid>/app with the CRI's sandbox namespace and name; first
#      "the target's agent" stages the final set as for a Migration's pod (<uid>/pod, then `stasis
#      fetch --pre-staged <uid>/app.parent`: only the final objects downloaded and verified, the
#      verified parent moved in, renamed to <uid>/app), then the wrapper takes it and runs
#      `runc restore`. The staging runs before create, so create never waits for it (in a cluster
#      the agent stages once the pod appears and the wrapper polls for it every 0.5 s);
#   4. ready: the copy's workload checks every word of its memory (its `check`); it must say OK;
#   5. the source is removed (kill, delete), as the Migration deletes it once the copy is Ready.
# Prints per size the medians [min-max] over REPS of the downtime, cut to copy verified (what a
# Migration's status.downtimeMillis measures, less the API round trips), split into phases:
#   frozen   the source's final freeze (PRECOPY=1: the pod dump's, cgroup freeze to release)
#   store    thaw until every byte is stored (live-copy page assembly + upload/commit; PRECOPY=1:
#            the delta only)
#   fetch    `stasis fetch` of the copy's images (download and verify each object's digest, JVM
#            start included; PRECOPY=1: only the final objects, the staging's fetch)
#   restore  the wrapper's `runc restore` (CRIU restore of the processes)
#   wrapper  the rest of the wrapper's create (its own shell work, the root file system diff)
#   ready    create's return until the copy's check said OK (`start` + the workload's check)
#   other    the rest: the dump command's JVM exit after the store, the gaps between the calls
#            (PRECOPY=1: also the staging's own moves)
# and, PRECOPY=1, after '|', what is not downtime (the source runs meanwhile, and writes what the
# cut copies): precopy (dump start to `parent stored`: JVM start, live copy, parent set stored) and
# prestage (the parent fetched and verified on the target).
# The cut's moment: PRECOPY=1, the pod dump's wall clock of its cgroup freeze (cut_epoch_ms);
# PRECOPY=0, the dump command's return less its phase timings after the freeze, so JVM start-up
# before the freeze is not downtime and its exit after the store is "other". fetch and restore are
# timed by thin wrappers around the Stasis command line (STASIS_CLI) and runc (STASIS_RUNC) that
# stasis-runc (and the staging) is pointed at; the wrapper itself runs unchanged.
# The dumps' own phase lines (-v), the staging fetches' lines (bytes verified, how many of them
# pre-staged) and the copies' verdicts are kept in $BENCH_DIR/dumps.log.
# Never asserts timings; fails (exit 1, one line) if a step fails or a copy's check is not OK.
#   src/bench/migrate-bench.sh [MiB ...]        default: 64 512 2048
# Environment: REPS (default 3), STORE file|s3 (default file), PRECOPY 1|0 (default 1), WRITE_PCT
# (default 10), SETTLE seconds before each run (default 3), BENCH_DIR (default
# /var/tmp/stasis-migrate; needs room for 3x the largest size).
# Needs root, gcc (static glibc), runc, busybox, java/mvn (the launcher builds the agent), a kernel
# with asynchronous userfaultfd write-protection (6.7) for the live copy, and the judge's CRIU tree
# (.ci/install-judge), which is packaged as the agent image packages its CRIU.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
STORE=${STORE:-file}
SETTLE=${SETTLE:-3}
PRECOPY=${PRECOPY:-1}
WRITE_PCT=${WRITE_PCT:-10}
DIR=${BENCH_DIR:-/var/tmp/stasis-migrate}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(64 512 2048)
JUDGE=${STASIS_JUDGE:-/opt/stasis-judge}
WRAPPER="$HERE/node-agent/src/main/runtime/stasis-runc"
RUNC=$(command -v runc) || { echo "migrate-bench: runc is required" >&2; exit 1; }
BUSYBOX=$(command -v busybox) || { echo "migrate-bench: busybox is required" >&2; exit 1; }
case "$STORE" in file|s3) ;; *) echo "migrate-bench: STORE must be file or s3, not '$STORE'" >&2; exit 1 ;; esac
case "$PRECOPY" in 0|1) ;; *) echo "migrate-bench: PRECOPY must be 0 or 1, not '$PRECOPY'" >&2; exit 1 ;; esac
case "$WRITE_PCT" in ''|*[!0-9]*) echo "migrate-bench: WRITE_PCT must be a whole percent, not '$WRITE_PCT'" >&2; exit 1 ;; esac
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
gcc -O2 -static -pthread -o "$IMAGE/bin/livewrite" "$HERE/src/workloads/livewrite.c"

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
  STASIS_STAGED_DIR="$DIR/staged" STASIS_STAGE_WAIT_SECONDS=5
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
  rm -rf "$DIR/store" "$DIR/spool" "$DIR/s3" "$DIR/restore-work" "$DIR/staged" "$DIR"/run-*
}
trap cleanup EXIT

# bundle NAME MiB STATE_DIR ID -> a bundle at $DIR/NAME with a fresh copy of the image as its root,
# its cgroup named after the container's ID as a runtime names it
bundle() {
  local b="$DIR/$1"
  mkdir -p "$b"
  cp -a "$IMAGE" "$b/rootfs"
  (cd "$b" && "$RUNC" spec)
  python3 - "$b/config.json" "$2" "$3" "$4" "$WRITE_PCT" <<'PY'
import json, sys
path, mib, state, name, pct = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = (["/bin/memhog", "/state", mib] if pct == "0"
                        else ["/bin/livewrite", "/state", mib, pct])
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

# stage_final DIR_ON_TARGET: the copy's images as the target's node agent stages a pod of a
# Migration (RestoreStager.stage): <uid>/pod first, then the final set fetched into a hidden
# directory with the pre-staged parent moved in (only the other objects downloaded), renamed to
# <uid>/app, the pre-staged parent directory removed. The fetch is timed (cli-timed).
stage_final() {
  local udir=$1 uri=$2 pod=$3 tmp
  echo "$pod" >"$udir/pod"
  tmp=$(mktemp -d "$udir/.app.tmp-XXXXXX")
  env "${ENV[@]}" "$DIR/cli-timed" fetch --from "$uri" --images-dir "$tmp" \
    --pre-staged "$udir/app.parent" >>"$DIR/dumps.log" || die "staging the copy's final images failed"
  mv "$tmp" "$udir/app"
  rm -rf "$udir/app.parent"
}

# one_run MiB N -> "downtime frozen store fetch restore wrapper ready other precopy prestage" (ms)
one_run() {
  local mib=$1 n=$2 out
  # hex container ids: the held dump finds the container by the ID its cgroup is named after
  local src dst
  src=$(printf '5bc0%08x' "$n") dst=$(printf 'd5c0%08x' "$n")
  local sstate="$DIR/run-$n/state-src" dstate="$DIR/run-$n/state-dst"
  mkdir -p "$sstate" "$dstate"
  rm -rf "$DIR/store" "$DIR/spool" "$DIR/timing" "$DIR/staged"
  sync; sleep "$SETTLE"

  # 1. the source
  bundle "run-$n/$src" "$mib" "$sstate" "$src"
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
  # script's own cp and python are no part of a migration's downtime. Pre-copy: annotated as the
  # operator annotates a Migration's copy (staged:<restore uid>/<container>, the pod's namespace
  # and name as the CRI runtime puts them), the images staged by "the target's agent" below.
  local uid="" from="$uri" podns=bench podname="copy-$n"
  if [ "$PRECOPY" = 1 ]; then
    uid=$(cat /proc/sys/kernel/random/uuid)
    from="staged:$uid/app"
  fi
  bundle "run-$n/$dst" "$mib" "$dstate" "$dst"
  python3 - "$DIR/run-$n/$dst/config.json" "$from" "$podns" "$podname" "$PRECOPY" <<'PY'
import json, sys
path, src, ns, name, pre = sys.argv[1:]
c = json.load(open(path))
a = c.setdefault("annotations", {})
a.update({"io.kubernetes.cri.container-name": "app", "restore-from.stasis.dev/app": src})
if pre == "1":
    a.update({"io.kubernetes.cri.sandbox-namespace": ns, "io.kubernetes.cri.sandbox-name": name})
json.dump(c, open(path, "w"), indent=1)
PY

  # 2. the checkpoint, source left running
  local t_stored precopy=0 prestage=0
  if [ "$PRECOPY" = 1 ]; then
    # The Migration's Checkpoint (leaveRunning, holdFinalFreeze): the agent's held pod dump. It
    # stores the parent set while the source runs, says so, and holds (write tracking on) until
    # the go; meanwhile the target stages the parent (RestoreStager.preStageParents).
    local go="$DIR/run-$n/go" dout="$DIR/run-$n/dump.out" dpid t0 t_parent t_prestaged
    local udir="$DIR/staged/$uid"
    t0=$(date +%s%N)
    env "${ENV[@]}" "$HERE/stasis" dump --pid "$pid" --leave-running --pre-copy --to "$uri" \
      --hold-final "$go" --spool-dir "$DIR/spool" -v >"$dout" 2>&1 &
    dpid=$!
    while ! grep -q '^parent stored' "$dout"; do
      kill -0 "$dpid" 2>/dev/null || die "held dump ended before its parent was stored: $(tail -n 1 "$dout")"
      sleep 0.02
    done
    t_parent=$(date +%s%N)
    mkdir -p -m 0700 "$udir"
    local ptmp
    ptmp=$(mktemp -d "$udir/.app.parent.tmp-XXXXXX")
    env "${ENV[@]}" "$HERE/stasis" fetch --from "$uri" --images-dir "$ptmp" --parent-only \
      >>"$DIR/dumps.log" || die "pre-staging the parent set failed"
    mv "$ptmp" "$udir/app.parent"
    t_prestaged=$(date +%s%N)
    touch "$go"   # the operator's go: stasis.dev/final-freeze on the Checkpoint
    wait "$dpid" || die "held dump failed: $(tail -n 1 "$dout")"
    t_stored=$(date +%s%N)
    out=$(cat "$dout")
    precopy=$(( (t_parent - t0) / 1000000 )) prestage=$(( (t_prestaged - t_parent) / 1000000 ))
  else
    out=$(env "${ENV[@]}" "$HERE/stasis" dump --pid "$pid" --leave-running --to "$uri" \
      --spool-dir "$DIR/spool" -v 2>&1) || die "dump failed: $(echo "$out" | tail -n 1)"
    t_stored=$(date +%s%N)
  fi
  grep -q '^dumped PID' <<<"$out" || die "dump printed no result: $out"
  echo "$mib MiB run $n: $out" >>"$DIR/dumps.log"   # every phase of the dump, kept for reading
  timing() { grep -o "[[:space:]]$1=[0-9]*" <<<"$out" | cut -d= -f2 | head -n 1; }
  local frozen assemble commit t_freeze
  assemble=$(timing live_assemble_ms); commit=$(timing commit_ms)
  local store=$(( ${assemble:-0} + ${commit:-0} ))
  if [ "$PRECOPY" = 1 ]; then
    # the pod dump's own cut (the cgroup freeze's wall clock) and its frozen time to the release
    frozen=$(timing pod_frozen_ms)
    t_freeze=$(( $(timing cut_epoch_ms) * 1000000 ))
  else
    frozen=$(timing frozen_ms)
    t_freeze=$(( t_stored - (frozen + store) * 1000000 ))
  fi
  [ -d "/proc/$pid" ] || die "the source did not survive its checkpoint"

  # 3. the copy, through the wrapper as the shim drives it
  local log="$DIR/run-$n/shim.json" t_create t_created
  if [ "$PRECOPY" = 1 ]; then
    stage_final "$DIR/staged/$uid" "$uri" "$podns/$podname"
  fi
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
  echo "$mib MiB run $n: the copy's check: $verdict" >>"$DIR/dumps.log"

  # 5. the source goes
  "$RUNC" --root "$ROOT" kill "$src" KILL
  for _ in $(seq 500); do [ -d "/proc/$pid" ] || break; sleep 0.02; done
  "$RUNC" --root "$ROOT" delete --force "$src"
  "$RUNC" --root "$ROOT" delete --force "$dst"
  rm -rf "$DIR/run-$n" "$DIR/store" "$DIR/spool" "$DIR/staged"

  local fetch restore
  fetch=$(awk '$1 == "fetch" {print int(($3 - $2) / 1000000)}' "$DIR/timing")
  restore=$(awk '$1 == "restore" {print int(($3 - $2) / 1000000)}' "$DIR/timing")
  if [ -z "$fetch" ] || [ -z "$restore" ]; then
    die "the copy was not fetched and restored ($(cat "$DIR/timing"))"
  fi
  local ready=$(( (t_ready - t_created) / 1000000 ))
  local down=$(( (t_ready - t_freeze) / 1000000 ))
  # pre-copy: the staging before create is the agent's, its fetch timed; the rest is "other"
  local wrapper=$(( (t_created - t_create) / 1000000 ))
  [ "$PRECOPY" = 1 ] || wrapper=$(( wrapper - fetch ))
  wrapper=$(( wrapper - restore ))
  echo "$down $frozen $store $fetch $restore $wrapper $ready" \
    "$(( down - frozen - store - fetch - restore - wrapper - ready )) $precopy $prestage"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk '{a[NR]=$1} END {print a[1] "-" a[NR]}'; }
col() { cut -d' ' -f"$1" "$DIR/runs"; }

echo "migrate-bench: store $STORE, $(if [ "$PRECOPY" = 1 ]; then echo "pre-copy (held cut)"; else echo "no pre-copy"; fi)," \
  "$(if [ "$WRITE_PCT" = 0 ]; then echo memhog; else echo "livewrite writing $WRITE_PCT%/s"; fi)," \
  "$REPS runs each, medians [min-max] in ms;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
printf '%-6s %20s %16s %16s %16s %16s %12s %14s %8s' MiB downtime frozen store fetch restore \
  wrapper ready other
[ "$PRECOPY" = 1 ] && printf ' | %16s %16s' "precopy" "prestage"
echo
n=0
for mib in "${SIZES[@]}"; do
  : >"$DIR/runs"
  for _ in $(seq "$REPS"); do
    n=$((n + 1))
    one_run "$mib" "$n" >>"$DIR/runs"
  done
  printf '%-6s %20s' "$mib" "$(col 1 | median) [$(col 1 | spread)]"
  for c in 2 3 4 5; do printf ' %16s' "$(col $c | median) [$(col $c | spread)]"; done
  printf ' %12s %14s %8s' "$(col 6 | median)" "$(col 7 | median) [$(col 7 | spread)]" \
    "$(col 8 | median)"
  if [ "$PRECOPY" = 1 ]; then
    printf ' | %16s %16s' "$(col 9 | median) [$(col 9 | spread)]" "$(col 10 | median) [$(col 10 | spread)]"
  fi
  echo
done
[ "$PRECOPY" = 1 ] && echo "migrate-bench: after '|', not downtime (the source runs):" \
  "precopy = dump start to parent stored (JVM start, live copy, parent set stored)," \
  "prestage = the parent fetched and verified on the target (stasis fetch --parent-only)"
echo "migrate-bench: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
