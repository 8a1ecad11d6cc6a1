package dev.stasis.operator;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.Consumer;

/**
 * Installs the committed CRD (the one the chart ships) into the mock API server before the operator
 * starts, so that the mock treats status as a subresource exactly like a real server.
 */
public class CrdSetup implements Consumer<KubernetesServer> {
  static final String CRD = "../crds/checkpoints.stasis.dev-v1.yml";

  /** Every CRD the chart ships: Checkpoint, Restore, Migration. */
  static final java.util.List<String> CRDS =
      java.util.List.of(
          CRD, "../crds/restores.stasis.dev-v1.yml", "../crds/migrations.stasis.dev-v1.yml");

  /** User agent of the tests' own requests, which the RBAC check leaves out. */
  static final String TEST_UA = "stasis-test";

  /** A client of the mock server that identifies itself by {@code userAgent}. */
  static KubernetesClient client(KubernetesServer server, String userAgent) {
    return new KubernetesClientBuilder()
        .withConfig(
            new ConfigBuilder(server.getClient().getConfiguration())
                .withUserAgent(userAgent)
                .build())
        .build();
  }

  /** Creates the committed CRDs through {@code c}. */
  static void install(KubernetesClient c) {
    for (String file : CRDS) {
      try (var in = new FileInputStream(file)) {
        CustomResourceDefinition crd =
            c.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class);
        c.apiextensions().v1().customResourceDefinitions().resource(crd).create();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  @Override
  public void accept(KubernetesServer server) {
    new LeaseAccessSetup().accept(server);
    install(server.getClient());
  }
}
