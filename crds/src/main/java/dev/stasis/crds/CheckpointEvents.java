package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.UUID;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Records a core/v1 Event on a Checkpoint (and on a Restore or Migration) for every phase change
 * (kubectl describe shows them).
 */
public final class CheckpointEvents {
  private static final Logger LOG = Logger.getLogger(CheckpointEvents.class.getName());

  private CheckpointEvents() {}

  /**
   * Best effort: an Event is informative only, so failing to record one is logged and never fails
   * the checkpoint.
   */
  public static void record(
      KubernetesClient client, Checkpoint cr, String component, Transition t) {
    record(
        client,
        cr,
        component,
        t.phase() == Phase.Failed,
        t.reason().name(),
        t.phase() + ": " + t.message());
  }

  /**
   * The same for any stasis resource (Restore, Migration): one Event on {@code cr}, Warning or
   * Normal, best effort.
   */
  public static void record(
      KubernetesClient client,
      HasMetadata cr,
      String component,
      boolean warning,
      String reason,
      String message) {
    String ts = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    String ns = cr.getMetadata().getNamespace();
    try {
      client
          .v1()
          .events()
          .inNamespace(ns)
          .resource(
              new EventBuilder()
                  .withNewMetadata()
                  .withName(cr.getMetadata().getName() + "." + UUID.randomUUID())
                  .withNamespace(ns)
                  .endMetadata()
                  .withInvolvedObject(
                      new ObjectReferenceBuilder()
                          .withApiVersion(cr.getApiVersion())
                          .withKind(cr.getKind())
                          .withName(cr.getMetadata().getName())
                          .withNamespace(ns)
                          .withUid(cr.getMetadata().getUid())
                          .build())
                  .withType(warning ? "Warning" : "Normal")
                  .withReason(reason)
                  .withMessage(message)
                  .withNewSource(component, null)
                  .withFirstTimestamp(ts)
                  .withLastTimestamp(ts)
                  .withCount(1)
                  .build())
          .create();
    } catch (KubernetesClientException e) {
      LOG.log(
          Level.WARNING,
          "could not record event " + reason + " on " + ns + "/" + cr.getMetadata().getName(),
          e);
    }
  }
}
