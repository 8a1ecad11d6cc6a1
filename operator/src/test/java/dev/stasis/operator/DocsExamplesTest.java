package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every Checkpoint the documentation shows is valid against the CRD's schema, and the kind e2e
 * script runs what install.md documents. ({@code CheckpointEndToEndIT.documentedFirstCheckpoint...}
 * runs install.md's workload and Checkpoint through the operator and the agent.)
 */
class DocsExamplesTest {

  @Test
  void everyCheckpointInTheDocsIsValidAgainstTheCrdSchema() {
    List<DocsExamples.Example> all = DocsExamples.checkpoints();
    List<String> where = all.stream().map(DocsExamples.Example::where).toList();
    assertTrue(
        where.stream().anyMatch(w -> w.startsWith("docs/install.md"))
            && where.stream().anyMatch(w -> w.startsWith("docs/crd-reference.md")),
        "examples found: " + where);
    for (DocsExamples.Example e : all) {
      assertEquals(List.of(), DocsExamples.validate(e.tree()), e.where() + ":\n" + e.yaml());
    }
  }

  /** Issue 13: the Restore and Migration manifests of restore.md and crd-reference.md. */
  @Test
  void everyRestoreAndMigrationInTheDocsIsValidAgainstItsCrdSchema() {
    for (String kind : List.of("Restore", "Migration")) {
      List<DocsExamples.Example> all = DocsExamples.examples(kind);
      List<String> where = all.stream().map(DocsExamples.Example::where).toList();
      assertTrue(
          where.stream().anyMatch(w -> w.startsWith("docs/restore.md"))
              && where.stream().anyMatch(w -> w.startsWith("docs/crd-reference.md")),
          kind + " examples found: " + where);
      for (DocsExamples.Example e : all) {
        assertEquals(
            List.of(), DocsExamples.validate(e.tree(), kind), e.where() + ":\n" + e.yaml());
      }
    }
    String bad =
        "apiVersion: stasis.dev/v1alpha1\nkind: Migration\nmetadata: {name: m}\n"
            + "spec: {podName: p, targetnode: n}\n";
    assertFalse(
        DocsExamples.validate(DocsExamples.parse(bad), "Migration").isEmpty(),
        "misspelt targetNode and the missing required one are errors");
  }

  /** The validator is not a no-op: what a real API server would reject or prune is an error. */
  @Test
  void validatorRejectsWhatTheApiServerWouldNot() {
    String ok =
        "apiVersion: stasis.dev/v1alpha1\nkind: Checkpoint\nmetadata: {name: a}\n"
            + "spec: {podName: p}\n";
    assertEquals(List.of(), DocsExamples.validate(DocsExamples.parse(ok)));
    assertFalse(
        DocsExamples.validate(DocsExamples.parse(ok.replace("podName", "podname"))).isEmpty(),
        "misspelt field (pruned by a real server) and missing required podName");
    assertFalse(
        DocsExamples.validate(
                DocsExamples.parse(ok.replace("{podName: p}", "{podName: p, compression: lz4}")))
            .isEmpty(),
        "enum");
    assertFalse(
        DocsExamples.validate(
                DocsExamples.parse(ok.replace("{podName: p}", "{podName: p, timeoutSeconds: 0}")))
            .isEmpty(),
        "minimum");
    assertFalse(
        DocsExamples.validate(
                DocsExamples.parse(
                    ok.replace(
                        "{podName: p}", "{podName: p, storage: {uri: 'file:///proc/self/root'}}")))
            .isEmpty(),
        "the CRD schema accepts only s3:// stores (issue 14)");
  }

  @Test
  void kindE2eRunsTheWorkloadAndCheckpointOfInstallMd() {
    String e2e = DocsExamples.read(DocsExamples.ROOT.resolve("src/e2e/kind-e2e.sh"));
    assertEquals(
        DocsExamples.firstCheckpointWorkload(),
        DocsExamples.workload(e2e, "src/e2e/kind-e2e.sh"),
        "kind-e2e.sh says it runs install.md's steps");
    assertFalse(
        DocsExamples.firstCheckpointWorkload().contains("ping"),
        "busybox ping holds an ICMP socket, which the engine cannot dump");
    var doc = DocsExamples.firstCheckpoint().tree();
    String heredoc = e2e.substring(e2e.indexOf("<<'YAML'\n") + 9, e2e.indexOf("\nYAML\n"));
    var script = DocsExamples.parse(heredoc);
    assertEquals(doc.get("metadata"), script.get("metadata"));
    assertEquals(doc.get("spec").get("podName"), script.get("spec").get("podName"));
    assertEquals(List.of(), DocsExamples.validate(script));
  }
}
