package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;

/** Test objects: a running single-container pod and a checkpoint of it. */
final class Fixtures {
  private Fixtures() {}

  static Pod runningPod(String ns, String name, String node, String container, String id) {
    return new PodBuilder()
        .withNewMetadata()
        .withNamespace(ns)
        .withName(name)
        .withUid("pod-uid-" + name)
        .endMetadata()
        .withNewSpec()
        .withNodeName(node)
        .addNewContainer()
        .withName(container)
        .withImage("busybox")
        .endContainer()
        .endSpec()
        .withNewStatus()
        .withPhase("Running")
        .addNewContainerStatus()
        .withName(container)
        .withContainerID(id)
        .withNewState()
        .withNewRunning()
        .withStartedAt("2026-11-28T04:00:00Z")
        .endRunning()
        .endState()
        .endContainerStatus()
        .endStatus()
        .build();
  }

  /** A running pod with one container per (name, runtime ID) pair. */
  static Pod runningPod(String ns, String name, String node, java.util.Map<String, String> ids) {
    Pod p = null;
    for (var e : ids.entrySet()) {
      if (p == null) {
        p = runningPod(ns, name, node, e.getKey(), e.getValue());
        continue;
      }
      Pod one = runningPod(ns, name, node, e.getKey(), e.getValue());
      p.getSpec().getContainers().add(one.getSpec().getContainers().get(0));
      p.getStatus().getContainerStatuses().add(one.getStatus().getContainerStatuses().get(0));
    }
    return p;
  }

  static Checkpoint checkpoint(String ns, String name, String pod) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withNamespace(ns).withName(name).build());
    CheckpointSpec spec = new CheckpointSpec();
    spec.setPodName(pod);
    c.setSpec(spec);
    return c;
  }

  static Checkpoint storedCheckpoint(String ns, String name, String pod, String created) {
    Checkpoint c = checkpoint(ns, name, pod);
    c.getMetadata().setUid("uid-" + name);
    c.getMetadata().setGeneration(1L);
    c.getMetadata().setCreationTimestamp(created);
    return c;
  }
}
