package dev.stasis.operator;

import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.ArrayList;
import java.util.List;

/**
 * Stands in for the scheduler and the kubelet, which the mock API server does not have: the test
 * says what happened to a pod (scheduled, running and Ready, a container failing) and this writes
 * the pod fields a real scheduler and kubelet would. Nothing here decides anything the operator
 * should decide.
 */
final class SimulatedKubelet {
  private final KubernetesClient client;

  SimulatedKubelet(KubernetesClient client) {
    this.client = client;
  }

  void node(String name) {
    client
        .nodes()
        .resource(new NodeBuilder().withNewMetadata().withName(name).endMetadata().build())
        .create();
  }

  /** Scheduled on {@code node}, every container running, condition Ready=True. */
  Pod runReady(String ns, String name, String node) {
    return edit(
        ns,
        name,
        node,
        p -> {
          List<ContainerStatus> cs = new ArrayList<>();
          for (var c : p.getSpec().getContainers()) {
            cs.add(
                new ContainerStatusBuilder()
                    .withName(c.getName())
                    .withImage(c.getImage())
                    .withContainerID("containerd://restored-" + c.getName())
                    .withReady(true)
                    .withRestartCount(0)
                    .withState(
                        new ContainerStateBuilder()
                            .withNewRunning()
                            .withStartedAt("2026-12-03T10:00:00Z")
                            .endRunning()
                            .build())
                    .build());
          }
          PodStatus st = new PodStatus();
          st.setPhase("Running");
          st.setContainerStatuses(cs);
          st.setConditions(
              List.of(new PodCondition(null, null, null, null, null, "True", "Ready")));
          return st;
        });
  }

  /** Scheduled on {@code node}, the first container waiting with {@code reason}: {@code msg}. */
  Pod containerWaiting(String ns, String name, String node, String reason, String msg) {
    return edit(
        ns,
        name,
        node,
        p -> {
          var c = p.getSpec().getContainers().get(0);
          PodStatus st = new PodStatus();
          st.setPhase("Pending");
          st.setContainerStatuses(
              List.of(
                  new ContainerStatusBuilder()
                      .withName(c.getName())
                      .withImage(c.getImage())
                      .withReady(false)
                      .withRestartCount(0)
                      .withState(
                          new ContainerStateBuilder()
                              .withNewWaiting()
                              .withReason(reason)
                              .withMessage(msg)
                              .endWaiting()
                              .build())
                      .build()));
          return st;
        });
  }

  private Pod edit(
      String ns, String name, String node, java.util.function.Function<Pod, PodStatus> status) {
    Pod p = client.pods().inNamespace(ns).withName(name).get();
    p.getSpec().setNodeName(node);
    p = client.resource(p).update();
    p.setStatus(status.apply(p));
    return client.resource(p).updateStatus();
  }
}
