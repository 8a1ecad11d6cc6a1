package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointEvents;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationPhase;
import dev.stasis.crds.MigrationStatus;
import dev.stasis.crds.MigrationStatusAggregator;
import dev.stasis.crds.Restore;
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
 * Thin reconciler: reads what {@link MigrationDecider} needs, creates/deletes what it decides,
 * writes the status through {@link MigrationStatusAggregator}. The status is written before the
 * source pod is deleted, so a crash in between finds DeletingSource and deletes it again (the UID
 * check makes that safe).
 *
 * <p>Deleting a Migration before it completed rolls it back: the copy pod is deleted, the source is
 * left alone (its Checkpoint, leave-running, has thawed or will thaw it; one still holding its
 * final freeze is deleted, which cancels it).
 */
@ControllerConfiguration(name = "migration", generationAwareEventProcessing = false)
public class MigrationReconciler implements Reconciler<Migration>, Cleaner<Migration> {
  private static final Logger LOG = Logger.getLogger(MigrationReconciler.class);

  private final KubernetesClient client;
  private final RestoreMetrics metrics;
  private final MigrationDecider decider;

  public MigrationReconciler(KubernetesClient client, StasisConfig config, RestoreMetrics metrics) {
    this.client = client;
    this.metrics = metrics;
    this.decider = new MigrationDecider(config.pollInterval());
  }

  @Override
  public UpdateControl<Migration> reconcile(Migration m, Context<Migration> context) {
    String ns = m.getMetadata().getNamespace();
    String name = m.getMetadata().getName();
    MigrationStatus st = m.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      return UpdateControl.noUpdate();
    }
    Restore restore = client.resources(Restore.class).inNamespace(ns).withName(name).get();
    Pod source = client.pods().inNamespace(ns).withName(m.getSpec().getPodName()).get();
    Pod copy = client.pods().inNamespace(ns).withName(MigrationDecider.targetPodName(m)).get();
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
    MigrationDecider.Decision d =
        decider.decide(
            new MigrationDecider.Observed(
                m,
                source,
                n -> client.nodes().withName(n).get() != null,
                copy,
                checkpoint,
                restore,
                Instant.now()));
    if (d.createCheckpoint() != null) {
      client.resource(d.createCheckpoint()).create();
    }
    if (d.createRestore() != null) {
      client.resource(d.createRestore()).create();
    }
    if (d.finalFreezeGo() && checkpoint != null) {
      // before the status: a crash in between finds Restoring without the go and writes it again
      client
          .resources(Checkpoint.class)
          .inNamespace(ns)
          .withName(name)
          .edit(
              c -> {
                var a = new java.util.HashMap<String, String>();
                if (c.getMetadata().getAnnotations() != null) {
                  a.putAll(c.getMetadata().getAnnotations());
                }
                a.put(Labels.FINAL_FREEZE, Labels.FINAL_FREEZE_GO);
                c.getMetadata().setAnnotations(a);
                return c;
              });
      LOG.infof("%s/%s: released the source's final freeze (%s)", ns, name, Labels.FINAL_FREEZE);
    }
    // The status first: a crash after it but before the deletion retries the deletion.
    if (d.step() != null) {
      write(m, d.step());
    }
    if (d.deleteCopy() && copy != null && restore != null && RestorePods.ours(copy, restore)) {
      client.resource(copy).delete();
      LOG.infof("%s/%s: rolled back: deleted the copy %s", ns, name, copy.getMetadata().getName());
    }
    if (d.releaseCheckpoint() && checkpoint != null) {
      release(checkpoint);
    }
    if (d.deleteSourceUid() != null
        && source != null
        && d.deleteSourceUid().equals(source.getMetadata().getUid())) {
      try {
        // Only the pod read in this reconciliation with the recorded UID: a new pod that took
        // the name is never deleted.
        client.resource(source).delete();
      } catch (KubernetesClientException e) {
        LOG.warnf("%s/%s: deleting the source failed (%s); retrying", ns, name, e.getMessage());
      }
    }
    UpdateControl<Migration> ctl = UpdateControl.noUpdate();
    return d.recheckAfter() == null ? ctl : ctl.rescheduleAfter(d.recheckAfter());
  }

  private void write(Migration m, MigrationStatusAggregator.Step step) {
    MigrationStatus st = m.getStatus();
    MigrationStatus next =
        MigrationStatusAggregator.next(st, m.getMetadata().getGeneration(), step, Instant.now());
    if (st != null
        && st.phase == next.phase
        && Objects.equals(st.message, next.message)
        && Objects.equals(st.frozenAt, next.frozenAt)) {
      return;
    }
    m.setStatus(next);
    client.resource(m).updateStatus();
    String ns = m.getMetadata().getNamespace();
    LOG.infof(
        "%s/%s: %s %s: %s",
        ns, m.getMetadata().getName(), step.phase(), step.reason(), step.message());
    CheckpointEvents.record(
        client,
        m,
        CheckpointReconciler.COMPONENT,
        next.phase == MigrationPhase.Failed,
        step.reason().name(),
        next.phase + ": " + step.message());
    if (next.phase.terminal()) {
      metrics.outcome(
          "migration",
          m.getMetadata().getUid(),
          next.phase == MigrationPhase.Completed,
          MigrationStatusAggregator.condition(next, MigrationStatusAggregator.FAILED),
          next.downtimeMillis);
    }
  }

  @Override
  public DeleteControl cleanup(Migration m, Context<Migration> context) {
    MigrationStatus st = m.getStatus();
    if (st != null && st.phase == MigrationPhase.Completed) {
      return DeleteControl.defaultDelete();
    }
    String ns = m.getMetadata().getNamespace();
    Restore restore =
        client.resources(Restore.class).inNamespace(ns).withName(m.getMetadata().getName()).get();
    Pod copy = client.pods().inNamespace(ns).withName(MigrationDecider.targetPodName(m)).get();
    if (copy != null && restore != null && RestorePods.ours(copy, restore)) {
      client.resource(copy).delete();
      LOG.infof(
          "%s/%s deleted mid-way: deleted the copy %s; the source is untouched",
          ns, m.getMetadata().getName(), copy.getMetadata().getName());
    }
    Checkpoint checkpoint =
        client
            .resources(Checkpoint.class)
            .inNamespace(ns)
            .withName(m.getMetadata().getName())
            .get();
    if (MigrationDecider.held(checkpoint, m)) {
      release(checkpoint);
    }
    return DeleteControl.defaultDelete();
  }

  /**
   * Deletes a Checkpoint that still holds its final freeze: the source agent cancels it, removes
   * its write tracking and leaves the pod running untouched; nothing of it is reported complete.
   */
  private void release(Checkpoint c) {
    try {
      client.resource(c).delete();
      LOG.infof(
          "%s/%s: deleted the held checkpoint; the source runs on",
          c.getMetadata().getNamespace(), c.getMetadata().getName());
    } catch (KubernetesClientException e) {
      LOG.warnf("deleting the held checkpoint %s failed: %s", c.getMetadata().getName(), e);
    }
  }
}
