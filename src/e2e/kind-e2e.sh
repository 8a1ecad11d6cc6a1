#!/usr/bin/env bash
# End-to-end on a real cluster (kind). Never run in CI: it needs docker, kind, kubectl and helm, and
# pulls images. Builds both images, installs MinIO and the chart, checkpoints a counter pod, and
# checks that the Checkpoint completes, the workload keeps running, and the images are in the
# store; then deletes it with deletionPolicy Delete and checks that the images are gone.
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
fail() { echo "kind-e2e: FAILED: $*" >&2; kubectl get checkpoints -A -o yaml >&2 || true; exit 1; }

step "cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
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
  --set defaultStorage.endpoint="http://minio.$NS.svc:9000" \
  --set defaultStorage.credentialsSecret=stasis-store --wait --timeout 300s

step "workload"
kubectl delete pod counter --ignore-not-found --wait
# install.md's workload, character for character (DocsExamplesTest checks that): a shell printing
# every second. Not busybox ping: it holds an ICMP socket, which the engine cannot dump yet.
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
echo "kind-e2e: OK"
