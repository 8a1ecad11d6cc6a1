#!/usr/bin/env bash
# End-to-end on a real cluster (kind). Never run in CI: it needs docker, kind, kubectl and helm, and
# pulls images. Builds both images, makes a kind cluster of a control plane and two workers whose
# containerd has the `stasis` runtime handler (src/e2e/kind-cluster.yaml), installs MinIO and the
# chart with the runtime hook, then:
#   1. checkpoints a counter pod, and checks that the Checkpoint completes, the workload keeps
#      running, and the images are in the store; then deletes it with deletionPolicy Delete and
#      checks that the images are gone;
#   2. migrates a bare counter pod from one worker to the other with a Migration, and checks that
#      it completes, that the copy runs on the target worker and continues the count (it does not
#      start again from 1), that the source pod is gone, and prints status.downtimeMillis.
# On a failure it prints the Migration, Restore and Checkpoint objects, the pods and the agents'
# logs.
#   src/e2e/kind-e2e.sh            create cluster "stasis-e2e", run, keep the cluster
#   KEEP=0 src/e2e/kind-e2e.sh     delete the cluster at the end
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CLUSTER=${CLUSTER:-stasis-e2e}
NS=stasis-system
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 2; }
done
step() { echo "==> $*"; }
fail() {
  echo "kind-e2e: FAILED: $*" >&2
  for kind in migrations restores checkpoints; do
    echo "--- $kind" >&2
    kubectl get "$kind" -A -o yaml >&2 || true
  done
  echo "--- pods" >&2
  kubectl get pods -A -o wide >&2 || true
  kubectl get events --sort-by=.lastTimestamp >&2 || true
  echo "--- node agents" >&2
  kubectl -n "$NS" logs -l app.kubernetes.io/component=node-agent --all-containers --prefix \
    --tail=200 >&2 || true
  exit 1
}

step "cluster $CLUSTER"
if kind get clusters | grep -qx "$CLUSTER"; then
  kubectl config use-context "kind-$CLUSTER" >/dev/null
  [ "$(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o name | wc -l)" -ge 2 ] \
    || { echo "kind-e2e: cluster $CLUSTER has fewer than two workers; delete it (kind delete cluster --name $CLUSTER)" >&2; exit 2; }
else
  kind create cluster --name "$CLUSTER" --config src/e2e/kind-cluster.yaml --wait 180s
fi
if [ "${KEEP:-1}" = 0 ]; then trap 'kind delete cluster --name "$CLUSTER"' EXIT; fi

step "images"
docker build -q --target operator -t stasis/operator:e2e .
docker build -q --target node-agent -t stasis/node-agent:e2e .
kind load docker-image stasis/operator:e2e stasis/node-agent:e2e --name "$CLUSTER"

step "MinIO"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" create deployment minio --image=minio/minio --dry-run=client -o yaml \
  -- minio server /data | kubectl apply -f -
kubectl -n "$NS" expose deployment minio --port 9000 --dry-run=client -o yaml | kubectl apply -f -
# The store's endpoint by the Service's cluster IP, not its DNS name: the runtime wrapper fetches a
# restored pod's images from the node's containerd, which has no cluster DNS; kube-proxy makes a
# cluster IP reachable from the nodes as from the pods.
MINIO_IP=$(kubectl -n "$NS" get service minio -o jsonpath='{.spec.clusterIP}')
kubectl -n "$NS" create secret generic stasis-store --dry-run=client -o yaml \
  --from-literal=AWS_ACCESS_KEY_ID=minioadmin --from-literal=AWS_SECRET_ACCESS_KEY=minioadmin \
  | kubectl apply -f -
kubectl -n "$NS" rollout status deployment/minio --timeout=180s
kubectl -n "$NS" run mc --rm -i --restart=Never --image=minio/mc --command -- sh -c \
  'mc alias set m http://minio:9000 minioadmin minioadmin && mc mb -p m/checkpoints'

step "stasis chart"
helm upgrade --install stasis helm/stasis -n "$NS" \
  --set operator.image.tag=e2e --set agent.image.tag=e2e \
  --set defaultStorage.uri=s3://checkpoints/e2e \
  --set defaultStorage.endpoint="http://$MINIO_IP:9000" \
  --set defaultStorage.credentialsSecret=stasis-store \
  --set runtime.enabled=true --set runtime.handler=stasis --wait --timeout 300s

step "workload"
kubectl delete pod counter --ignore-not-found --wait
# install.md's workload, character for character (DocsExamplesTest checks that): a shell printing
# every second. Not busybox ping: it holds an ICMP socket, which the engine cannot dump yet.
# shellcheck disable=SC2016  # the pod's shell expands it
kubectl run counter --image=busybox --restart=Never -- sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 1; done'
kubectl wait --for=condition=Ready pod/counter --timeout=120s

step "checkpoint"
kubectl delete checkpoint counter-1 --ignore-not-found --wait
kubectl apply -f - <<'YAML'
apiVersion: stasis.dev/v1alpha1
kind: Checkpoint
metadata:
  name: counter-1
spec:
  podName: counter
  deletionPolicy: Delete
YAML
for _ in $(seq 1 120); do
  phase=$(kubectl get checkpoint counter-1 -o jsonpath='{.status.phase}')
  case "$phase" in Completed|Failed) break ;; esac
  sleep 1
done
kubectl get checkpoint counter-1
[ "$phase" = Completed ] || fail "checkpoint ended '$phase': $(kubectl get checkpoint counter-1 -o jsonpath='{.status.message}')"
before=$(kubectl logs counter | wc -l); sleep 3; after=$(kubectl logs counter | wc -l)
[ "$after" -gt "$before" ] || fail "workload stopped after the checkpoint ($before -> $after)"
loc=$(kubectl get checkpoint counter-1 -o jsonpath='{.status.location}')
key=${loc#s3://checkpoints/}
kubectl -n "$NS" run mc --rm -i --restart=Never --image=minio/mc --command -- sh -c \
  "mc alias set m http://minio:9000 minioadmin minioadmin >/dev/null && mc ls -r m/checkpoints/$key" \
  | grep -q 'manifest.json' || fail "no manifest under $loc"

step "delete (deletionPolicy Delete)"
kubectl delete checkpoint counter-1 --timeout=120s
left=$(kubectl -n "$NS" run mc --rm -i --restart=Never --image=minio/mc --command -- sh -c \
  "mc alias set m http://minio:9000 minioadmin minioadmin >/dev/null && mc ls -r m/checkpoints/$key" | grep -c img || true)
[ "$left" = 0 ] || fail "$left image objects left under $loc"

step "migration"
mapfile -t workers < <(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o name \
  | sed 's|^node/||' | sort)
NODE_A=${workers[0]}
NODE_B=${workers[1]}
kubectl delete migration mover-to-b --ignore-not-found --wait
kubectl delete pod mover mover-to-b --ignore-not-found --wait
# A bare pod on node A counting in its shell, one number a line (the same counter as above).
kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: mover
  labels: {app: mover}
spec:
  nodeName: $NODE_A
  restartPolicy: Never
  containers:
    - name: counter
      image: busybox
      command: [sh, -c, 'i=0; while :; do i=\$((i+1)); echo \$i; sleep 1; done']
YAML
kubectl wait --for=condition=Ready pod/mover --timeout=120s
sleep 5
before=$(kubectl logs mover | tail -n 1)
[ "${before:-0}" -ge 3 ] || fail "the source pod is not counting: '$before'"
kubectl apply -f - <<YAML
apiVersion: stasis.dev/v1alpha1
kind: Migration
metadata:
  name: mover-to-b
spec:
  podName: mover
  targetNode: $NODE_B
  timeoutSeconds: 300
YAML
phase=""
for _ in $(seq 1 360); do
  phase=$(kubectl get migration mover-to-b -o jsonpath='{.status.phase}')
  case "$phase" in Completed|Failed) break ;; esac
  sleep 1
done
kubectl get migration mover-to-b
[ "$phase" = Completed ] || fail "migration ended '$phase': $(kubectl get migration mover-to-b -o jsonpath='{.status.message}')"
copy=$(kubectl get migration mover-to-b -o jsonpath='{.status.targetPodName}')
[ "$copy" = mover-to-b ] || fail "the copy is '$copy', not the Migration's name"
node=$(kubectl get pod "$copy" -o jsonpath='{.spec.nodeName}')
[ "$node" = "$NODE_B" ] || fail "the copy runs on '$node', not on $NODE_B"
for _ in $(seq 1 60); do
  kubectl get pod mover >/dev/null 2>&1 || break
  sleep 1
done
kubectl get pod mover >/dev/null 2>&1 && fail "the source pod mover is still there"
# The copy continues the count: its first line is where the source was at the cut (the source ran
# on after it until deleted, so that is at least the figure seen before the Migration), and every
# line after it is one more.
sleep 3
first=$(kubectl logs "$copy" | head -n 1)
if [ -z "$first" ] || [ "$first" -lt "$before" ]; then
  fail "the copy's count starts at '$first', the source was at $before before the migration"
fi
kubectl logs "$copy" | awk -v f="$first" '$1 != f + NR - 1 {bad = 1} END {exit bad}' \
  || fail "the copy's count is not consecutive: $(kubectl logs "$copy" | head -n 20 | tr '\n' ' ')"
restarts=$(kubectl get pod "$copy" -o jsonpath='{.status.containerStatuses[0].restartCount}')
[ "$restarts" = 0 ] || fail "the copy's container restarted $restarts times (from scratch)"
echo "kind-e2e: migrated mover from $NODE_A to $NODE_B; the copy continues at $first" \
  "(source at $before before the Migration); downtime" \
  "$(kubectl get migration mover-to-b -o jsonpath='{.status.downtimeMillis}') ms (status.downtimeMillis)"
kubectl delete migration mover-to-b --wait
kubectl delete pod "$copy" --ignore-not-found --wait
echo "kind-e2e: OK"
