package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.io.FileInputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The agent's status writes for one checkpoint against the fabric8 mock API server (CRUD): with a
 * pod's containers held at the gate and released at once, every container commits, and so writes
 * its Uploading step and size, at the same moment, from its own dump thread, while progress lines
 * still come in. None of those writes may be lost.
 */
class StatusWriterTest {
  static final Path REPO = Path.of(System.getProperty("stasis.repo", "..")).toAbsolutePath();
  static final int CONTAINERS = 6;

  KubernetesMockServer server;
  KubernetesClient client;

  @BeforeEach
  void setUp() throws Exception {
    server =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            new HashMap<>(),
            new KubernetesCrudDispatcher(List.of()),
            false);
    server.init();
    client = server.createClient();
    try (var in =
        new FileInputStream(REPO.resolve("crds/checkpoints.stasis.dev-v1.yml").toFile())) {
      client
          .apiextensions()
          .v1()
          .customResourceDefinitions()
          .resource(
              client.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class))
          .create();
    }
  }

  @AfterEach
  void tearDown() {
    client.close();
    server.destroy();
  }

  /**
   * Before the writes of one checkpoint were serialised, two containers' reads of the status
   * interleaved with each other's updates and one container's step and size were overwritten
   * (CheckpointEndToEndIT#twoContainerPodIsOneCheckpoint... lost a container's size that way).
   */
  @Test
  void concurrentContainerCommitsAndProgressLoseNoContainersSize() throws Exception {
    for (int round = 0; round < 3; round++) {
      String name = "c" + round;
      List<CheckpointStatus.ContainerRef> refs = new ArrayList<>();
      for (int i = 0; i < CONTAINERS; i++) {
        refs.add(new CheckpointStatus.ContainerRef("k" + i, "containerd://" + i));
      }
      Checkpoint cr = new Checkpoint();
      cr.setMetadata(new ObjectMetaBuilder().withNamespace("ns").withName(name).build());
      CheckpointSpec spec = new CheckpointSpec();
      spec.setPodName("web");
      cr.setSpec(spec);
      client.resource(cr).create();
      StatusWriter status = new StatusWriter(client, "ns", name);
      status.transition(Transition.to(Phase.Running, Reason.Claimed, "claimed").containers(refs));

      ExecutorService pool = Executors.newFixedThreadPool(2 * CONTAINERS);
      try {
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Boolean>> writes = new ArrayList<>();
        for (int i = 0; i < CONTAINERS; i++) {
          String k = "k" + i;
          long bytes = 1000L * (i + 1);
          writes.add(
              pool.submit(
                  () -> {
                    go.await();
                    return status.progress(
                        Transition.to(Phase.Running, Reason.Dumping, k + ": pages")
                            .container(k, CheckpointStatus.ContainerPhase.Dumping, bytes / 2));
                  }));
          writes.add(
              pool.submit(
                  () -> {
                    go.await();
                    return status.transition(
                        Transition.to(Phase.Uploading, Reason.Uploading, k + ": finishing upload")
                            .container(k, CheckpointStatus.ContainerPhase.Uploading, bytes));
                  }));
        }
        go.countDown();
        for (Future<Boolean> w : writes) {
          w.get();
        }
      } finally {
        pool.shutdownNow();
      }

      CheckpointStatus s =
          client.resources(Checkpoint.class).inNamespace("ns").withName(name).get().getStatus();
      List<String> seen = new ArrayList<>();
      List<String> expected = new ArrayList<>();
      long sum = 0;
      for (int i = 0; i < CONTAINERS; i++) {
        expected.add("k" + i + " Uploading " + 1000L * (i + 1));
        sum += 1000L * (i + 1);
      }
      for (CheckpointStatus.ContainerRef r : s.containers) {
        seen.add(r.name + " " + r.phase + " " + r.sizeBytes);
      }
      assertEquals(expected, seen, "round " + round + ": every container's step and size");
      assertEquals(Phase.Uploading, s.phase, "every container is uploading");
      assertEquals(sum, s.sizeBytes.longValue(), "the pod's size is its containers' sum");
    }
  }
}
