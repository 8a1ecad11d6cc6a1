package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointEvents;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * Thin reconciler: reads what {@link CheckpointDecider} needs, writes what it decides. Status is
 * written with optimistic locking (the resourceVersion read), so a concurrent write by the node
 * agent makes this attempt fail and the next reconciliation start from fresh state.
 *
 * <p>Not generation-aware: agent progress only changes status and annotations, and the operator
 * must see those to time out, record metrics and release queued checkpoints.
 */
@ControllerConfiguration(name = "checkpoint", generationAwareEventProcessing = false)
public class CheckpointReconciler implements Reconciler<Checkpoint>, Cleaner<Checkpoint> {
  private static final Logger LOG = Logger.getLogger(CheckpointReconciler.class);
  static final String COMPONENT = "stasis-operator";

  private final KubernetesClient client;
  private final StasisConfig config;
  private final CheckpointMetrics metrics;
  private final CheckpointDecider decider;

  public CheckpointReconciler(
      KubernetesClient client, StasisConfig config, CheckpointMetrics metrics) {
    this.client = client;
    this.config = config;
    this.metrics = metrics;
    this.decider =
        new CheckpointDecider(
            config.defaultStorageUri(),
            config.pollInterval(),
            config.agentGrace(),
            config.allowedStorageUris().orElse(java.util.List.of()));
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint cr, Context<Checkpoint> context) {
    String ns = cr.getMetadata().getNamespace();
    String name = cr.getMetadata().getName();
    CheckpointStatus st = cr.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      metrics.recordOutcome(cr);
      return UpdateControl.noUpdate();
    }
    String podName = cr.getSpec().getPodName();
    Pod pod = client.pods().inNamespace(ns).withName(podName).get();
    List<Checkpoint> samePod =
        context.getPrimaryCache().list(ns, c -> podName.equals(c.getSpec().getPodName())).toList();
    CheckpointDecider.Decision d =
        decider.decide(
            new CheckpointDecider.Observed(
                cr,
                pod,
                secret -> client.secrets().inNamespace(ns).withName(secret).get() != null,
                samePod,
                Instant.now()));

    if (d.transition() != null) {
      Transition t = d.transition();
      CheckpointStatus next =
          StatusAggregator.next(st, cr.getMetadata().getGeneration(), t, Instant.now());
      boolean phaseChanged = st == null || st.phase != next.phase;
      boolean reasonChanged =
          st == null
              || StatusAggregator.condition(st, StatusAggregator.READY) == null
              || !t.reason()
                  .name()
                  .equals(StatusAggregator.condition(st, StatusAggregator.READY).getReason());
      if (phaseChanged || reasonChanged) {
        cr.setStatus(next);
        client.resource(cr).updateStatus();
        LOG.infof("%s/%s: %s %s: %s", ns, name, t.phase(), t.reason(), t.message());
        CheckpointEvents.record(client, cr, COMPONENT, t);
        if (next.phase == Phase.Failed) {
          metrics.recordOutcome(cr);
        }
      }
    }
    if (d.dispatchTo() != null) {
      String gen = String.valueOf(cr.getMetadata().getGeneration());
      String at = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
      client
          .resources(Checkpoint.class)
          .inNamespace(ns)
          .withName(name)
          .edit(
              c -> {
                var labels = new HashMap<>(CheckpointDecider.labels(c));
                labels.put(Labels.NODE, d.dispatchTo());
                c.getMetadata().setLabels(labels);
                var ann = new HashMap<>(CheckpointDecider.annotations(c));
                ann.put(Labels.ACCEPTED_GENERATION, gen);
                ann.put(Labels.DISPATCHED_AT, at);
                c.getMetadata().setAnnotations(ann);
                return c;
              });
    }
    UpdateControl<Checkpoint> ctl = UpdateControl.noUpdate();
    return d.recheckAfter() == null ? ctl : ctl.rescheduleAfter(d.recheckAfter());
  }

  /**
   * Deletion waits for the node agent: it cancels a running dump (thaws the workload, removes the
   * partial upload) or deletes the stored images (deletionPolicy Delete), then drops its finalizer.
   * If the agent does not within the grace period (node gone), its finalizer is removed here so
   * that the Checkpoint does not hang forever; a Warning event says what may be left.
   */
  @Override
  public DeleteControl cleanup(Checkpoint cr, Context<Checkpoint> context) {
    List<String> finalizers = cr.getMetadata().getFinalizers();
    if (finalizers == null || !finalizers.contains(Labels.AGENT_FINALIZER)) {
      return DeleteControl.defaultDelete();
    }
    Instant deleted = Instant.parse(cr.getMetadata().getDeletionTimestamp());
    if (Instant.now().isBefore(deleted.plus(config.agentCleanupGrace()))) {
      return DeleteControl.noFinalizerRemoval().rescheduleAfter(config.pollInterval().toMillis());
    }
    String ns = cr.getMetadata().getNamespace();
    LOG.warnf(
        "%s/%s: node agent did not clean up within %s; removing its finalizer",
        ns, cr.getMetadata().getName(), config.agentCleanupGrace());
    CheckpointEvents.record(
        client,
        cr,
        COMPONENT,
        Transition.failed(
            dev.stasis.crds.Reason.AgentUnavailable,
            "node agent did not clean up after deletion; stored or partial images under "
                + Labels.storeKey(cr)
                + " may remain"));
    client
        .resources(Checkpoint.class)
        .inNamespace(ns)
        .withName(cr.getMetadata().getName())
        .edit(
            c -> {
              c.getMetadata().getFinalizers().remove(Labels.AGENT_FINALIZER);
              return c;
            });
    return DeleteControl.defaultDelete();
  }
}
