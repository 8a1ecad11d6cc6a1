package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Lints and renders the chart, then checks the objects a cluster would get. */
class HelmChartTest {

  static <T> T one(List<HasMetadata> objs, Class<T> type) {
    List<T> l = objs.stream().filter(type::isInstance).map(type::cast).toList();
    assertEquals(1, l.size(), "exactly one " + type.getSimpleName());
    return l.get(0);
  }

  @Test
  void chartLintsClean() {
    var r = new Helm(Chart.DIR).lint().strict().call();
    assertFalse(r.isFailed(), String.join("\n", r.getMessages()));
  }

  @Test
  void agentIsAPrivilegedHostPidDaemonSetWithoutPorts() {
    List<HasMetadata> objs = Chart.render(Map.of());
    DaemonSet ds = one(objs, DaemonSet.class);
    var pod = ds.getSpec().getTemplate().getSpec();
    assertTrue(pod.getHostPID(), "hostPID: the agent finds and traces host processes");
    assertTrue(pod.getHostNetwork() == null || !pod.getHostNetwork());
    assertEquals("stasis-node-agent", pod.getServiceAccountName());
    assertTrue(pod.getTolerations().stream().anyMatch(t -> "Exists".equals(t.getOperator())));
    Container c = pod.getContainers().get(0);
    assertTrue(c.getSecurityContext().getPrivileged());
    assertTrue(c.getPorts() == null || c.getPorts().isEmpty(), "the agent listens on nothing");
    assertEquals(List.of("agent"), c.getArgs());
    assertEquals(
        "spec.nodeName",
        c.getEnv().stream()
            .filter(e -> e.getName().equals("NODE_NAME"))
            .findFirst()
            .orElseThrow()
            .getValueFrom()
            .getFieldRef()
            .getFieldPath());
    assertTrue(c.getLivenessProbe() != null && c.getResources().getLimits().containsKey("memory"));
    // the spool for leave-running checkpoints: a size-limited emptyDir, named to the agent
    var spool =
        pod.getVolumes().stream()
            .filter(v -> v.getName().equals("spool"))
            .findFirst()
            .orElseThrow();
    assertEquals("8Gi", spool.getEmptyDir().getSizeLimit().toString());
    assertTrue(
        c.getVolumeMounts().stream()
            .anyMatch(
                m ->
                    m.getName().equals("spool")
                        && m.getMountPath().equals("/var/lib/stasis/spool")));
    assertTrue(
        c.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_SPOOL_DIR")
                        && e.getValue().equals("/var/lib/stasis/spool")));
  }

  @Test
  void operatorDeploymentHasProbesResourcesAndNoPrivileges() {
    List<HasMetadata> objs = Chart.render(Map.of("defaultStorage.uri", "s3://ckpt/cluster"));
    Deployment d = one(objs, Deployment.class);
    var pod = d.getSpec().getTemplate().getSpec();
    assertEquals("stasis-operator", pod.getServiceAccountName());
    Container c = pod.getContainers().get(0);
    assertEquals("/q/health/live", c.getLivenessProbe().getHttpGet().getPath());
    assertEquals("/q/health/ready", c.getReadinessProbe().getHttpGet().getPath());
    assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation());
    assertTrue(c.getResources().getRequests().containsKey("cpu"));
    assertTrue(
        c.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_OPERATOR_DEFAULT_STORAGE_URI")
                        && e.getValue().equals("s3://ckpt/cluster")));
    DaemonSet ds = one(objs, DaemonSet.class);
    assertTrue(
        ds.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv().stream()
            .anyMatch(e -> e.getName().equals("STASIS_DEFAULT_STORAGE")));
  }

  @Test
  void everyRbacRuleSaysWhyAndNothingIsWildcard() throws Exception {
    for (String component : List.of("operator", "node-agent")) {
      var rules = Chart.rules(component);
      assertFalse(rules.isEmpty());
      for (var r : rules) {
        assertFalse(r.getVerbs().contains("*") || r.getResources().contains("*"), r.toString());
        assertFalse(r.getVerbs().contains("delete"), "nobody deletes through the API: " + r);
      }
    }
    for (String file : List.of("operator.yaml", "agent.yaml")) {
      List<String> lines = Files.readAllLines(Chart.DIR.resolve("templates").resolve(file));
      for (int i = 0; i < lines.size(); i++) {
        if (lines.get(i).trim().startsWith("- apiGroups:")) {
          assertTrue(
              lines.get(i - 1).trim().startsWith("#"),
              file + " line " + (i + 1) + ": each RBAC rule needs a comment saying why");
        }
      }
    }
  }

  /** Issue 14: the admin's store allow-list reaches the operator and every agent alike. */
  @Test
  void storageAllowListGoesToTheOperatorAndTheAgents() {
    List<HasMetadata> objs =
        Chart.render(
            Map.of("storage.allowedUris[0]", "s3://a/x", "storage.allowedUris[1]", "s3://b"));
    Container op =
        one(objs, Deployment.class).getSpec().getTemplate().getSpec().getContainers().get(0);
    Container ag =
        one(objs, DaemonSet.class).getSpec().getTemplate().getSpec().getContainers().get(0);
    assertTrue(
        op.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_OPERATOR_ALLOWED_STORAGE_URIS")
                        && e.getValue().equals("s3://a/x,s3://b")),
        op.getEnv().toString());
    assertTrue(
        ag.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_ALLOWED_STORAGE_URIS")
                        && e.getValue().equals("s3://a/x,s3://b")),
        ag.getEnv().toString());
  }

  @Test
  void chartShipsTheGeneratedCrd() throws Exception {
    assertEquals(
        Files.readString(java.nio.file.Path.of("../crds/checkpoints.stasis.dev-v1.yml")),
        Files.readString(Chart.DIR.resolve("crds/checkpoints.stasis.dev-v1.yml")));
  }
}
