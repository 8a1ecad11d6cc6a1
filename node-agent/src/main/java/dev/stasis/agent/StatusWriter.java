package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointEvents;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Reason;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.util.logging.Logger;

/**
 * Writes one Checkpoint's status from the agent: always re-read, aggregate, update under optimistic
 * locking, retry on conflict. Returns false when the checkpoint is gone or already ended (for
 * example the operator failed it on timeout), which tells the job to stop.
 *
 * <p>One writer per checkpoint: a pod's containers report from their own dump threads, and once the
 * gate opens for the whole pod they all commit, and so report, at the same moment. Their
 * read-aggregate-update rounds are serialised here: the resourceVersion check alone does not keep
 * one container's step and size from being overwritten by another's update built on the same read
 * where the server does not enforce it on the status subresource (the fabric8 mock did not), and
 * under real contention it would spend the retries. The operator's writes stay guarded by the
 * optimistic locking.
 */
final class StatusWriter {
  private static final Logger LOG = Logger.getLogger(StatusWriter.class.getName());
  static final String COMPONENT = "stasis-node-agent";

  private final KubernetesClient client;
  private final String ns;
  private final String name;
  private long lastProgress;

  /** Held for each read-aggregate-update round; progress skips a line rather than wait for it. */
  private final java.util.concurrent.locks.ReentrantLock writing =
      new java.util.concurrent.locks.ReentrantLock();

  StatusWriter(KubernetesClient client, String ns, String name) {
    this.client = client;
    this.ns = ns;
    this.name = name;
  }

  Checkpoint read() {
    return client.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
  }

  /**
   * Applies {@code t}. A spec edited after acceptance (possible where the API server does not
   * evaluate the CRD's CEL rule) turns any non-final transition into Failed/SpecChanged, and the
   * job stops at its next progress report.
   */
  boolean transition(Transition t) {
    writing.lock();
    try {
      return write(t);
    } finally {
      writing.unlock();
    }
  }

  private boolean write(Transition t) {
    for (int attempt = 0; attempt < 8; attempt++) {
      Checkpoint cr = read();
      if (cr == null) {
        return false;
      }
      String accepted =
          cr.getMetadata().getAnnotations() == null
              ? null
              : cr.getMetadata().getAnnotations().get(Labels.ACCEPTED_GENERATION);
      if (!t.phase().terminal()
          && accepted != null
          && !accepted.equals(String.valueOf(cr.getMetadata().getGeneration()))) {
        write(
            Transition.failed(
                Reason.SpecChanged,
                "spec was edited after the checkpoint was accepted (generation "
                    + accepted
                    + " -> "
                    + cr.getMetadata().getGeneration()
                    + "); the dump was abandoned"));
        return false;
      }
      CheckpointStatus cur = cr.getStatus();
      CheckpointStatus next =
          StatusAggregator.next(cur, cr.getMetadata().getGeneration(), t, Instant.now());
      if (next == cur) {
        return false;
      }
      boolean phaseChanged = cur == null || cur.phase != next.phase;
      cr.setStatus(next);
      try {
        client.resource(cr).updateStatus();
      } catch (KubernetesClientException e) {
        if (e.getCode() == 409) {
          continue;
        }
        if (e.getCode() == 404) {
          return false;
        }
        throw e;
      }
      if (phaseChanged) {
        LOG.info(ns + "/" + name + ": " + t.phase() + " " + t.reason() + ": " + t.message());
        CheckpointEvents.record(client, cr, COMPONENT, t);
      }
      return true;
    }
    throw new IllegalStateException(
        "status of checkpoint " + ns + "/" + name + " keeps changing under the agent");
  }

  /**
   * Progress of a long dump, at most once a second. A line that comes while another write of this
   * checkpoint is under way is dropped like one within the second: the engine calls this from its
   * frozen dump and must not wait for another container's write; the step's final size comes with
   * its Uploading transition.
   */
  boolean progress(Transition t) {
    if (!writing.tryLock()) {
      return true;
    }
    try {
      long now = System.nanoTime();
      if (now - lastProgress < 1_000_000_000L) {
        return true;
      }
      lastProgress = now;
      return write(t);
    } finally {
      writing.unlock();
    }
  }
}
