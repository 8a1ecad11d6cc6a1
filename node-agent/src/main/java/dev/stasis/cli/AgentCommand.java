package dev.stasis.cli;

import dev.stasis.agent.ContainerProcesses;
import dev.stasis.agent.NodeAgent;
import dev.stasis.agent.ProcessDumper;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code stasis agent --node NAME}: the node agent of the DaemonSet. Talks only to the API server
 * (in-cluster ServiceAccount, or the kubeconfig outside a cluster); listens on no port. Liveness is
 * a heartbeat file the probe checks for freshness.
 */
@Command(
    name = "agent",
    mixinStandardHelpOptions = true,
    description = "Run the node agent: checkpoint the pods the operator assigns to this node.")
public final class AgentCommand implements Callable<Integer> {
  @Option(
      names = "--node",
      defaultValue = "${env:NODE_NAME}",
      description = "This node's name (default: $NODE_NAME, set from the downward API).")
  String node;

  @Option(
      names = "--default-storage",
      defaultValue = "${env:STASIS_DEFAULT_STORAGE}",
      description = "Store for Checkpoints without spec.storage, e.g. s3://bucket/prefix.")
  String defaultStorage;

  @Option(
      names = "--heartbeat",
      defaultValue = "/tmp/stasis-agent-alive",
      description = "File touched every 5 s for the liveness probe.")
  Path heartbeat;

  @Override
  public Integer call() throws Exception {
    if (node == null || node.isBlank()) {
      throw new IllegalArgumentException("--node is required (or set NODE_NAME)");
    }
    // the agent we replace may have been killed mid-dump (rollout, eviction): repair its targets
    dev.stasis.compel.Leftovers.sweep(System.err, true);
    // the first dump in a JVM pays for class loading and set-up, much of it while its target is
    // frozen: paid here, once, before any Checkpoint is taken
    System.err.println("stasis agent: " + dev.stasis.agent.WarmUp.run());
    try (KubernetesClient client = new KubernetesClientBuilder().build();
        NodeAgent agent =
            new NodeAgent(
                    client,
                    node,
                    defaultStorage,
                    System.getenv(),
                    ContainerProcesses.host(),
                    ProcessDumper.ENGINE)
                .start()) {
      while (true) {
        if (!Files.exists(heartbeat)) {
          Files.createFile(heartbeat);
        }
        Files.setLastModifiedTime(heartbeat, FileTime.from(Instant.now()));
        Thread.sleep(5000);
      }
    }
  }
}
