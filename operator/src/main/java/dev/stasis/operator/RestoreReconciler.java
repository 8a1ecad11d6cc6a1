package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointEvents;
import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreStatus;
import dev.stasis.crds.RestoreStatusAggregator;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Instant;
import java.util.Objects;
import org.jboss.logging.Logger;

/**
 * Thin reconciler: reads what {@link RestoreDecider} needs, creates the pod it decides on, writes
 * the status through {@link RestoreStatusAggregator} (optimistic locking). The pod is not watched:
 * the Restore is looked at again every poll interval until it ends.
 *
 * <p>Deleting a Restore before its pod is Ready deletes that pod (a half-restored copy is
 * nobody's); after Completed the pod is the user's and stays.
 */
@ControllerConfiguration(name = "restore", generationAwareEventProcessing = false)
public class RestoreReconciler implements Reconciler<Restore>, Cleaner<Restore> {
  private static final Logger LOG = Logger.getLogger(RestoreReconciler.class);

  private final KubernetesClient client;
  private final StasisConfig config;
  private final RestoreMetrics metrics;
  private final RestoreDecider decider;

  public RestoreReconciler(KubernetesClient client, StasisConfig config, RestoreMetrics metrics) {
    this.client = client;
    this.config = config;
    this.metrics = metrics;
    this.decider =
        new RestoreDecider(
            config.pollInterval(),
            config.runtimeClassName(),
            config.defaultStorageUri(),
            config.allowedStorageUris().orElse(java.util.List.of()));
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore r, Context<Restore> context) {
    RestoreStatus st = r.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      return UpdateControl.noUpdate();
    }
    String ns = r.getMetadata().getNamespace();
    String cp = r.getSpec().getCheckpointName();
    // Only the first decision (Pending) looks at the Checkpoint; tracking the pod does not.
    boolean pending = st == null || st.phase == null || st.phase == RestorePhase.Pending;
    Checkpoint checkpoint =
        !pending || cp == null || cp.isEmpty()
            ? null
            : client.resources(Checkpoint.class).inNamespace(ns).withName(cp).get();
    String podName = st != null && st.podName != null ? st.podName : RestorePods.podName(r);
    Pod pod = client.pods().inNamespace(ns).withName(podName).get();
    RestoreDecider.Decision d =
        decider.decide(
            new RestoreDecider.Observed(
                r,
                checkpoint,
                s -> client.secrets().inNamespace(ns).withName(s).get() != null,
                n -> client.nodes().withName(n).get() != null,
                pod,
                Instant.now()));
    RestoreStatusAggregator.Step step = d.step();
    if (d.create() != null) {
      try {
        Pod created = client.resource(d.create()).create();
        step = step.pod(created.getMetadata().getName(), created.getMetadata().getUid());
      } catch (KubernetesClientException e) {
        step =
            RestoreStatusAggregator.Step.failed(
                dev.stasis.crds.Reason.PodRejected,
                "the API server refused pod "
                    + ns
                    + "/"
                    + podName
                    + ": "
                    + (e.getStatus() != null && e.getStatus().getMessage() != null
                        ? e.getStatus().getMessage()
                        : e.getMessage()));
      }
    }
    if (step != null) {
      write(r, step);
    }
    UpdateControl<Restore> ctl = UpdateControl.noUpdate();
    return d.recheckAfter() == null || (step != null && step.phase().terminal())
        ? ctl
        : ctl.rescheduleAfter(d.recheckAfter());
  }

  private void write(Restore r, RestoreStatusAggregator.Step step) {
    RestoreStatus st = r.getStatus();
    Instant now = Instant.now();
    RestoreStatus next =
        RestoreStatusAggregator.next(st, r.getMetadata().getGeneration(), step, now);
    boolean changed =
        st == null
            || st.phase != next.phase
            || !Objects.equals(st.nodeName, next.nodeName)
            || !Objects.equals(st.podUID, next.podUID)
            || !Objects.equals(st.message, next.message);
    if (!changed) {
      return;
    }
    r.setStatus(next);
    client.resource(r).updateStatus();
    String ns = r.getMetadata().getNamespace();
    LOG.infof(
        "%s/%s: %s %s: %s",
        ns, r.getMetadata().getName(), step.phase(), step.reason(), step.message());
    if (st == null || st.phase != next.phase) {
      CheckpointEvents.record(
          client,
          r,
          CheckpointReconciler.COMPONENT,
          next.phase == RestorePhase.Failed,
          step.reason().name(),
          next.phase + ": " + step.message());
    }
    if (next.phase.terminal()) {
      Long millis =
          next.phase == RestorePhase.Completed && next.startTime != null
              ? now.toEpochMilli() - Instant.parse(next.startTime).toEpochMilli()
              : null;
      metrics.outcome(
          "restore",
          r.getMetadata().getUid(),
          next.phase == RestorePhase.Completed,
          RestoreStatusAggregator.condition(next, RestoreStatusAggregator.FAILED),
          millis);
    }
  }

  @Override
  public DeleteControl cleanup(Restore r, Context<Restore> context) {
    RestoreStatus st = r.getStatus();
    if (st != null && st.phase == RestorePhase.Completed) {
      return DeleteControl.defaultDelete();
    }
    String ns = r.getMetadata().getNamespace();
    String podName = st != null && st.podName != null ? st.podName : RestorePods.podName(r);
    Pod pod = client.pods().inNamespace(ns).withName(podName).get();
    if (pod != null && RestorePods.ours(pod, r)) {
      client.resource(pod).delete();
      LOG.infof(
          "%s/%s deleted before its pod was Ready: deleted pod %s (%s)",
          ns,
          r.getMetadata().getName(),
          podName,
          pod.getMetadata().getAnnotations().get(PodTemplates.RESTORE_ANNOTATION));
    }
    return DeleteControl.defaultDelete();
  }
}
