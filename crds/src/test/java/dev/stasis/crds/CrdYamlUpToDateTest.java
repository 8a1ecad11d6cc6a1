package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The CRD under crds/ (applied with {@code kubectl apply -f crds/} and copied into the Helm chart)
 * is generated from the Java model by the build; nobody edits it by hand. This test fails when the
 * committed copies drift from what the model generates.
 */
class CrdYamlUpToDateTest {
  static final String FILE = "checkpoints.stasis.dev-v1.yml";
  static final Path GENERATED = Path.of("target/classes/META-INF/fabric8", FILE);

  @org.junit.jupiter.api.Test
  void committedCrdEqualsGenerated() throws Exception {
    String generated = Files.readString(GENERATED);
    for (Path committed : new Path[] {Path.of(FILE), Path.of("../helm/stasis/crds", FILE)}) {
      assertTrue(
          Files.exists(committed), committed + " is missing: copy it from crds/" + GENERATED);
      assertEquals(
          generated,
          Files.readString(committed),
          committed
              + " differs from the CRD generated from the model; regenerate with: mvn -pl crds"
              + " process-classes && cp crds/"
              + GENERATED
              + " crds/ && cp crds/"
              + GENERATED
              + " helm/stasis/crds/");
    }
  }

  @org.junit.jupiter.api.Test
  void specIsImmutableThroughCel() throws Exception {
    String generated = Files.readString(GENERATED);
    int spec = generated.indexOf("          spec:\n");
    int status = generated.indexOf("          status:\n");
    String specBlock = generated.substring(spec, status);
    assertTrue(
        specBlock.contains("x-kubernetes-validations:")
            && specBlock.contains("rule: \"self == oldSelf\""),
        "the spec schema must carry the CEL rule self == oldSelf");
    assertTrue(specBlock.contains("- \"podName\""), "podName must be required");
  }
}
