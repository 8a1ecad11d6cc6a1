package dev.stasis.operator;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.UUID;
import org.jboss.logging.Logger;

/** A core/v1 Event on a Restore or Migration per phase change (kubectl describe shows them). */
final class Events {
  private static final Logger LOG = Logger.getLogger(Events.class);

  private Events() {}

  /** Best effort: failing to record an Event is logged and never fails the reconciliation. */
  static void record(
      KubernetesClient client, HasMetadata cr, boolean warning, String reason, String message) {
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
                  .withNewSource(CheckpointReconciler.COMPONENT, null)
                  .withFirstTimestamp(ts)
                  .withLastTimestamp(ts)
                  .withCount(1)
                  .build())
          .create();
    } catch (KubernetesClientException e) {
      LOG.warnf(e, "could not record event %s on %s/%s", reason, ns, cr.getMetadata().getName());
    }
  }
}
