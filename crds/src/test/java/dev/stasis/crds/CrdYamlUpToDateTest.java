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
  static final java.util.List<String> FILES =
      java.util.List.of(FILE, "restores.stasis.dev-v1.yml", "migrations.stasis.dev-v1.yml");

  @org.junit.jupiter.api.Test
  void committedCrdsEqualGenerated() throws Exception {
    for (String file : FILES) {
      committedCrdEqualsGenerated(file);
    }
  }

  void committedCrdEqualsGenerated(String file) throws Exception {
    Path gen = Path.of("target/classes/META-INF/fabric8", file);
    String generated = Files.readString(gen);
    for (Path committed : new Path[] {Path.of(file), Path.of("../helm/stasis/crds", file)}) {
      assertTrue(Files.exists(committed), committed + " is missing: copy it from crds/" + gen);
      assertEquals(
          generated,
          Files.readString(committed),
          committed
              + " differs from the CRD generated from the model; regenerate with: mvn -pl crds"
              + " process-classes && cp crds/"
              + gen
              + " crds/ && cp crds/"
              + gen
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

  @org.junit.jupiter.api.Test
  void restoreAndMigrationSpecsAreImmutableAndRestoreNamesOneSource() throws Exception {
    for (String file : FILES.subList(1, 3)) {
      String generated = Files.readString(Path.of("target/classes/META-INF/fabric8", file));
      assertTrue(generated.contains("rule: \"self == oldSelf\""), file + ": spec immutable");
      assertTrue(generated.contains("status: {}"), file + ": status is a subresource");
    }
    String restore = Files.readString(Path.of("target/classes/META-INF/fabric8", FILES.get(1)));
    assertTrue(restore.contains("rule: \"has(self.checkpointName) != has(self.uri)\""));
    assertTrue(restore.contains("x-kubernetes-preserve-unknown-fields: true"));
  }
}
