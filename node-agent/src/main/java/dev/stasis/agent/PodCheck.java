package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Reason;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.ArrayList;
import java.util.List;

/**
 * What the agent dumps comes from the pod itself, read by the agent: the pod named in the spec, in
 * the Checkpoint's own namespace, running on this agent's node, with the container IDs its status
 * reports now. The container IDs in the Checkpoint's status are never trusted: whoever can write
 * that status could otherwise aim the privileged agent at any container of the node.
 */
final class PodCheck {
  private final KubernetesClient client;
  private final String node;

  PodCheck(KubernetesClient client, String node) {
    this.client = client;
    this.node = node;
  }

  /** The pod does not match what the checkpoint may act on; nothing was touched. */
  static final class MismatchException extends Exception {
    private final Reason reason;

    MismatchException(Reason reason, String message) {
      super(message);
      this.reason = reason;
    }

    Reason reason() {
      return reason;
    }
  }

  /** The pod named by the checkpoint, as the API server has it now; null when absent. */
  Pod read(Checkpoint cr) {
    return client
        .pods()
        .inNamespace(cr.getMetadata().getNamespace())
        .withName(cr.getSpec().getPodName())
        .get();
  }

  /** Pure: the containers of {@code pod} the checkpoint covers, checked against {@code node}. */
  static List<CheckpointStatus.ContainerRef> containers(Checkpoint cr, Pod pod, String node)
      throws MismatchException {
    String ns = cr.getMetadata().getNamespace();
    CheckpointSpec spec = cr.getSpec();
    String podRef = "pod " + ns + "/" + spec.getPodName();
    if (pod == null) {
      throw new MismatchException(Reason.PodNotFound, podRef + " not found by the node agent");
    }
    if (!ns.equals(pod.getMetadata().getNamespace())) {
      throw new MismatchException(
          Reason.PodChanged, podRef + " read from namespace " + pod.getMetadata().getNamespace());
    }
    String on = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    if (!node.equals(on)) {
      throw new MismatchException(
          Reason.PodChanged,
          podRef + " runs on node " + on + ", not on " + node + " where this agent runs");
    }
    CheckpointStatus st = cr.getStatus();
    if (st != null && st.podUID != null && !st.podUID.equals(pod.getMetadata().getUid())) {
      throw new MismatchException(
          Reason.PodChanged,
          podRef
              + " was replaced since the checkpoint was accepted (uid "
              + st.podUID
              + " -> "
              + pod.getMetadata().getUid()
              + ")");
    }
    List<String> present = pod.getSpec().getContainers().stream().map(Container::getName).toList();
    List<String> wanted =
        spec.getContainers() == null || spec.getContainers().isEmpty()
            ? present
            : spec.getContainers();
    List<CheckpointStatus.ContainerRef> refs = new ArrayList<>();
    for (String name : wanted) {
      ContainerStatus cs =
          pod.getStatus() == null || pod.getStatus().getContainerStatuses() == null
              ? null
              : pod.getStatus().getContainerStatuses().stream()
                  .filter(s -> name.equals(s.getName()))
                  .findFirst()
                  .orElse(null);
      if (!present.contains(name)
          || cs == null
          || cs.getContainerID() == null
          || cs.getContainerID().isEmpty()
          || cs.getState() == null
          || cs.getState().getRunning() == null) {
        throw new MismatchException(
            Reason.ContainerNotStarted,
            "container '" + name + "' of " + podRef + " is not running on " + node);
      }
      refs.add(new CheckpointStatus.ContainerRef(name, cs.getContainerID()));
    }
    return refs;
  }
}
