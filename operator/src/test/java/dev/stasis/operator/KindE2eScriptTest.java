package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.node.v1.RuntimeClass;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Issue 13: the kind e2e script ({@code src/e2e/kind-e2e.sh}, not run in CI: no kind here) is
 * checked for what can be checked without a cluster: the manifests it applies are what the API
 * server and the operator accept, the chart values it sets exist and render a RuntimeClass for the
 * handler its kind cluster registers with containerd, and the status fields and labels it reads
 * exist.
 */
class KindE2eScriptTest {
  private static final String SCRIPT =
      DocsExamples.read(DocsExamples.ROOT.resolve("src/e2e/kind-e2e.sh"));
  private static final JsonNode CLUSTER =
      DocsExamples.parse(DocsExamples.read(DocsExamples.ROOT.resolve("src/e2e/kind-cluster.yaml")));
  private static final JsonNode VALUES =
      DocsExamples.parse(DocsExamples.read(DocsExamples.ROOT.resolve("helm/stasis/values.yaml")));
  private static final Pattern HEREDOC = Pattern.compile("(?ms)<<'?YAML'?\\n(.*?)^YAML$");

  /** Every here-document the script applies, shell variables replaced by a sample value. */
  private static List<JsonNode> manifests() {
    List<JsonNode> out = new ArrayList<>();
    Matcher m = HEREDOC.matcher(SCRIPT);
    while (m.find()) {
      // $NODE_B and the like: names; \$ (unquoted here-documents) is the pod shell's own $
      String y = m.group(1).replace("\\$", "$").replaceAll("\\$([A-Z_]+)\\b", "sample-$1");
      out.add(DocsExamples.parse(y));
    }
    return out;
  }

  private static JsonNode one(String kind) {
    List<JsonNode> all =
        manifests().stream().filter(n -> kind.equals(n.path("kind").asText())).toList();
    assertEquals(1, all.size(), "one " + kind + " in kind-e2e.sh: " + all);
    return all.get(0);
  }

  @Test
  void theMigrationItAppliesIsValidAndMovesItsCounterPodToTheOtherWorker() {
    JsonNode migration = one("Migration");
    assertEquals(List.of(), DocsExamples.validate(migration, "Migration"), migration.toString());
    Migration m = new KubernetesSerialization().unmarshal(migration.toString(), Migration.class);
    assertEquals("mover-to-b", m.getMetadata().getName());
    assertEquals("sample-NODE_B", m.getSpec().getTargetNode());

    JsonNode podYaml = one("Pod");
    Pod pod = new KubernetesSerialization().unmarshal(podYaml.toString(), Pod.class);
    assertEquals(m.getSpec().getPodName(), pod.getMetadata().getName(), "it migrates its pod");
    assertEquals("sample-NODE_A", pod.getSpec().getNodeName(), "the pod starts on the other node");
    assertTrue(
        pod.getMetadata().getOwnerReferences() == null
            || pod.getMetadata().getOwnerReferences().isEmpty(),
        "a bare pod: docs/restore.md moves those cleanly");
    List<String> cmd = pod.getSpec().getContainers().get(0).getCommand();
    assertEquals(
        DocsExamples.firstCheckpointWorkload(),
        cmd.get(cmd.size() - 1),
        "the same counter as install.md's workload, so the count check reads its lines");
    assertTrue(
        SCRIPT.contains("NODE_A=${workers[0]}") && SCRIPT.contains("NODE_B=${workers[1]}"),
        "A and B are the two workers");
  }

  /** What the script reads with jsonpath from a Migration exists in its status. */
  @Test
  void theMigrationStatusFieldsItReadsExist() {
    Matcher m =
        Pattern.compile("get migration [^ ]+ -o jsonpath='\\{\\.status\\.(\\w+)}'").matcher(SCRIPT);
    List<String> read = new ArrayList<>();
    while (m.find()) {
      read.add(m.group(1));
    }
    assertTrue(read.containsAll(List.of("phase", "downtimeMillis", "targetPodName")), "" + read);
    List<String> fields =
        Arrays.stream(MigrationStatus.class.getFields()).map(f -> f.getName()).toList();
    for (String f : read) {
      assertTrue(fields.contains(f), "MigrationStatus has no field " + f);
    }
    assertTrue(
        SCRIPT.contains("for kind in migrations restores checkpoints"),
        "a failure prints the Migration, Restore and Checkpoint objects");
  }

  /** Every {@code --set key=value} of the helm install, as a map. */
  private static Map<String, String> setValues() {
    Map<String, String> out = new LinkedHashMap<>();
    Matcher m = Pattern.compile("--set ([\\w.]+)=(\"[^\"]*\"|\\S+)").matcher(SCRIPT);
    while (m.find()) {
      out.put(m.group(1), m.group(2).replace("\"", ""));
    }
    return out;
  }

  @Test
  void theChartValuesItSetsExistAndEnableTheRuntimeHandlerItsClusterRegisters() {
    Map<String, String> set = setValues();
    assertTrue(set.containsKey("runtime.enabled"), "" + set);
    for (String key : set.keySet()) {
      JsonNode v = VALUES;
      for (String part : key.split("\\.")) {
        v = v.get(part);
        assertNotNull(v, "--set " + key + ": helm/stasis/values.yaml has no such value");
      }
      assertFalse(v.isContainerNode(), "--set " + key + " replaces a whole map");
    }
    assertEquals("true", set.get("runtime.enabled"));

    // The handler containerd gets in kind-cluster.yaml is the one the chart's RuntimeClass names,
    // and its binary is where the chart's install-runtime puts the wrapper.
    assertEquals("Cluster", CLUSTER.get("kind").asText());
    long workers =
        java.util.stream.StreamSupport.stream(CLUSTER.get("nodes").spliterator(), false)
            .filter(n -> n.get("role").asText().equals("worker"))
            .count();
    assertEquals(2, workers, "two workers: one to migrate from, one to migrate to");
    String patch = CLUSTER.get("containerdConfigPatches").get(0).asText();
    Matcher h = Pattern.compile("containerd\\.runtimes\\.(\\w+)]").matcher(patch);
    assertTrue(h.find(), patch);
    String handler = h.group(1);
    Map<String, String> values = new LinkedHashMap<>();
    set.forEach((k, v) -> values.put(k, v.startsWith("http://$") ? "http://10.96.0.10:9000" : v));
    List<HasMetadata> objs = Chart.render(values);
    RuntimeClass rc =
        objs.stream()
            .filter(RuntimeClass.class::isInstance)
            .map(RuntimeClass.class::cast)
            .findFirst()
            .orElseThrow(() -> new AssertionError("no RuntimeClass rendered with " + values));
    assertEquals(handler, rc.getHandler(), "containerd's handler is the RuntimeClass's");
    String hostDir = VALUES.get("runtime").get("hostDir").asText();
    assertTrue(
        patch.contains("BinaryName = \"" + hostDir + "/bin/stasis-runc\""),
        "the handler runs the wrapper the chart installs under " + hostDir + ": " + patch);
    assertTrue(
        patch.contains("pod_annotations = [\"restore-from.stasis.dev/*\"]"),
        "containerd passes the restore annotations to the runtime (docs/restore.md)");

    // The failure report's agent logs select the DaemonSet's pods.
    DaemonSet ds =
        objs.stream()
            .filter(DaemonSet.class::isInstance)
            .map(DaemonSet.class::cast)
            .findFirst()
            .orElseThrow();
    Matcher l = Pattern.compile("logs -l (\\S+)=(\\S+)").matcher(SCRIPT);
    assertTrue(l.find(), "the script prints the agents' logs on failure");
    assertEquals(l.group(2), ds.getSpec().getTemplate().getMetadata().getLabels().get(l.group(1)));
  }
}
