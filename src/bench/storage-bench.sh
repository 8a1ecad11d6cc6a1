#!/usr/bin/env bash
# Storage benchmark (a script printing numbers, not a test).
#
#   src/bench/storage-bench.sh [SIZE_MIB]        (default 2048)
#
# 1. Starts a local S3 server (S3Proxy, filesystem backend, 127.0.0.1, random port) and a workload
#    holding SIZE_MIB of memory (src/workloads/memhog.c).
# 2. Streaming:        stasis dump --pid P --to s3://bench/streamN --leave-running
# 3. Dump then upload: stasis dump --pid P --images-dir DIR --leave-running
#                      stasis push --images-dir DIR --to s3://bench/uploadN  (same S3 client)
#    REPS times (default 3), interleaved, alternating which path goes first, after a warm-up
#    upload; prints the medians, each rep, the ratio (target:
#    streaming <= 0.7 x dump-then-upload) and the agent's peak RSS in each path.
# 4. On the same image data (DIR): MiB/s of storing it with no encoding, with zstd, with AES-256-GCM
#    and with both, to a local directory (so the numbers are the codecs', not the server's).
# Everything runs on this machine; only loopback traffic. Needs root (ptrace), gcc, java, mvn.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE_MIB=${1:-2048}
WORK=$(mktemp -d /tmp/stasis-bench.XXXXXX)
S3PROXY_VERSION=4.1.0
JAR=$HOME/.m2/repository/org/gaul/s3proxy/$S3PROXY_VERSION/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar
S3_PID=""
WL_PID=""

cleanup() {
  [ -n "$WL_PID" ] && kill "$WL_PID" 2>/dev/null || true
  [ -n "$S3_PID" ] && kill "$S3_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

# --- prerequisites -------------------------------------------------------------------------------
"$HERE/stasis" --help >/dev/null   # builds the agent when needed
if [ ! -f "$JAR" ]; then
  say "resolving S3Proxy $S3PROXY_VERSION..."
  mvn -B -q dependency:get -Dartifact=org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies >&2
fi
gcc -O1 -o "$WORK/memhog" "$HERE/src/workloads/memhog.c"

# --- S3 server -----------------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/s3/bench"
cat >"$WORK/s3.properties" <<P
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=bench
s3proxy.credential=bench-secret
jclouds.provider=filesystem
jclouds.filesystem.basedir=$WORK/s3
P
cat >"$WORK/logback.xml" <<'L'
<configuration><appender name="F" class="ch.qos.logback.core.ConsoleAppender"><encoder><pattern>%d %level %msg%n</pattern></encoder></appender><root level="INFO"><appender-ref ref="F"/></root></configuration>
L
java -Xmx1g -Dlogback.configurationFile="$WORK/logback.xml" -jar "$JAR" --properties "$WORK/s3.properties" \
  >"$WORK/s3proxy.log" 2>&1 &
S3_PID=$!
for _ in $(seq 1 300); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret STASIS_S3_ENDPOINT=http://127.0.0.1:$PORT

# --- workload ------------------------------------------------------------------------------------
mkdir -p "$WORK/state"
WL_PID=$(sh -c "setsid '$WORK/memhog' '$WORK/state' $SIZE_MIB >/dev/null 2>&1 & echo \$!")
for _ in $(seq 1 600); do [ -f "$WORK/state/ready" ] && break; sleep 0.1; done
[ -f "$WORK/state/ready" ] || { say "workload did not start"; exit 1; }
say "workload PID $WL_PID holds $SIZE_MIB MiB; S3 at $STASIS_S3_ENDPOINT"
# other jobs on the machine skew every number: say how busy it was
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# CPU seconds (user + system) S3Proxy has used so far, from /proc/PID/stat (clock ticks)
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$S3_PID/stat"
}

# timed RUN_NAME cmd...: runs cmd under /usr/bin/time, sets T_<name> (s), RSS_<name> (KiB) and
# CPU_<name> (S3Proxy's CPU seconds while it ran, which shows where an upload's time goes)
timed() {
  local name=$1; shift
  # Start every measured command with the server's earlier writes on disk: S3Proxy leaves ~4 GiB
  # dirty per 2 GiB upload (parts, then the completed object), and whichever command ran next would
  # otherwise pay for that writeback.
  sync; sleep "${SETTLE:-2}"
  local c0; c0=$(server_cpu)
  /usr/bin/time -f '%e %M' -o "$WORK/time.$name" "$@" >"$WORK/out.$name" 2>"$WORK/err.$name" \
    || { say "FAILED: $*"; cat "$WORK/err.$name" >&2; exit 1; }
  read -r t rss <"$WORK/time.$name"
  printf -v "T_$name" '%s' "$t"
  printf -v "RSS_$name" '%s' "$rss"
  printf -v "CPU_$name" '%s' "$(awk -v a="$c0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')"
}

REPS=${REPS:-3}
# Warm the server up first (its JIT, its directories): otherwise the first measured command of the
# run, always the same path, pays for it (rep 1 streaming was 3-5 s slower than reps 2 and 3).
mkdir -p "$WORK/warm"
head -c $((256 << 20)) /dev/zero >"$WORK/warm/pages-1.img"
printf 'warm' >"$WORK/warm/inventory.img"
"$HERE/stasis" push --images-dir "$WORK/warm" --to s3://bench/warmup >/dev/null
"$HERE/stasis" rm --from s3://bench/warmup >/dev/null
: >"$WORK/runs"
for i in $(seq "$REPS"); do
  # Interleaved, alternating which path goes first, each to an empty bucket prefix, so that
  # server-side state and machine noise hit both paths alike; rm between reps keeps S3Proxy's
  # directory small.
  rm -rf "$WORK/img"
  if [ $((i % 2)) = 1 ]; then
    timed stream "$HERE/stasis" dump --pid "$WL_PID" --to "s3://bench/stream$i" --leave-running
  fi
  timed dump "$HERE/stasis" dump --pid "$WL_PID" --images-dir "$WORK/img" --leave-running
  timed upload "$HERE/stasis" push --images-dir "$WORK/img" --to "s3://bench/upload$i"
  if [ $((i % 2)) = 0 ]; then
    timed stream "$HERE/stasis" dump --pid "$WL_PID" --to "s3://bench/stream$i" --leave-running
  fi
  if [ "$i" = 1 ]; then "$HERE/stasis" ls --from s3://bench >&2; fi
  "$HERE/stasis" rm --from "s3://bench/stream$i" >&2
  "$HERE/stasis" rm --from "s3://bench/upload$i" >&2
  echo "$T_stream $T_dump $T_upload $RSS_stream $RSS_dump $RSS_upload $CPU_stream $CPU_upload" >>"$WORK/runs"
  say "rep $i: stream $T_stream s, dump $T_dump s + upload $T_upload s (server CPU $CPU_stream s / $CPU_upload s)"
done

IMG_MIB=$(du -sm --apparent-size "$WORK/img" | cut -f1)
printf '%s\n' "== streaming vs dump-then-upload ($IMG_MIB MiB of images, medians of $REPS; load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
awk '
  function median(col,   n, i, j, t, a) {
    n = 0; for (i = 1; i <= NR; i++) a[++n] = v[i, col]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((n + 1) / 2)]
  }
  { for (c = 1; c <= 8; c++) v[NR, c] = $c; both[NR] = $2 + $3 }
  END {
    s = median(1); d = median(2); u = median(3)
    n = 0; for (i = 1; i <= NR; i++) b[++n] = both[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
    du = b[int((n + 1) / 2)]
    printf "streaming dump to S3:      %8.2f s   agent peak RSS %6.0f MiB\n", s, median(4) / 1024
    printf "dump to disk:              %8.2f s   agent peak RSS %6.0f MiB\n", d, median(5) / 1024
    printf "then upload (stasis push): %8.2f s   agent peak RSS %6.0f MiB\n", u, median(6) / 1024
    printf "dump-then-upload total:    %8.2f s\n", du
    for (i = 1; i <= NR; i++) printf "  rep %d: streaming %.2f s, dump+upload %.2f s, ratio %.2f\n", i, v[i, 1], both[i], v[i, 1] / both[i]
    printf "ratio streaming / (dump+upload): %.2f  (target <= 0.70: %s)\n", s / du, (s / du <= 0.7 ? "met" : "NOT met")
    # A streaming dump uploads the same bytes to the same server: at best it hides the whole dump
    # behind the upload, so with the server as fast for it as for the push the ratio is
    # upload / (dump + upload). The CPU time of the server per upload shows whether it was (on the bench VM
    # it varies by 2x with the state of the memory its page cache comes from).
    printf "best possible ratio with the server as fast as for the push, upload / (dump + upload): %.2f\n", u / (d + u)
    printf "S3Proxy CPU while streaming: %.1f s, while pushing: %.1f s (medians; 2 cores shared with the agent)\n", median(7), median(8)
  }' "$WORK/runs"

# --- codecs on the same data, into a local directory ---------------------------------------------
head -c 32 /dev/urandom >"$WORK/key"
printf '%s\n' "== encodings of the same images, stored to a local directory"
for mode in none zstd aes zstd+aes; do
  args=()
  case $mode in
    zstd) args=(--compress zstd) ;;
    aes) args=(--encryption-key-file "$WORK/key") ;;
    zstd+aes) args=(--compress zstd --encryption-key-file "$WORK/key") ;;
  esac
  timed "c_${mode/+/_}" "$HERE/stasis" push --images-dir "$WORK/img" --to "file://$WORK/codec-${mode/+/_}" "${args[@]}"
  stored=$(du -sm --apparent-size "$WORK/codec-${mode/+/_}" | cut -f1)
  printf '%-9s %s  (stored %s MiB of %s MiB)\n' "$mode" "$(cat "$WORK/out.c_${mode/+/_}")" "$stored" "$IMG_MIB"
done
