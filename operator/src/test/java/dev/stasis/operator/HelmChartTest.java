package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.marcnuri.helm.Helm;
import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStatus;
import dev.stasis.crds.RestoreStatusAggregator;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicy;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicyBinding;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import java.nio.file.Files;
import java.time.Instant;
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
        // The deletions: the operator deletes pods (a Restore's unfinished copy, a Migration's
        // source once its copy is Ready) and, on a pre-copy Migration's rollback, its Checkpoint
        // still holding the final freeze (deleting cancels it); nothing else is deleted.
        boolean podDelete =
            component.equals("operator")
                && (r.getResources().equals(List.of("pods"))
                    || r.getResources().equals(List.of("checkpoints")));
        assertFalse(
            r.getVerbs().contains("delete") && !podDelete,
            "nobody else deletes through the API: " + r);
      }
    }
    for (String file : List.of("operator.yaml", "agent.yaml", "user-roles.yaml", "runtime.yaml")) {
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

  /**
   * Issue 13: a RuntimeClass for restored pods, and on every node an init container that installs
   * the runtime wrapper into the host directory the runtime handler points at; both go away with
   * runtime.enabled=false. The operator names the same RuntimeClass in the pods it creates.
   */
  @Test
  void runtimeClassAndTheWrapperInstalledOnEveryNode() {
    List<HasMetadata> objs = Chart.render(Map.of());
    var rc = one(objs, io.fabric8.kubernetes.api.model.node.v1.RuntimeClass.class);
    assertEquals("stasis", rc.getMetadata().getName());
    assertEquals("stasis", rc.getHandler());
    var pod = one(objs, DaemonSet.class).getSpec().getTemplate().getSpec();
    Container init = pod.getInitContainers().get(0);
    assertEquals("install-runtime", init.getName());
    assertEquals(List.of("sh", "/install/install.sh"), init.getCommand());
    var dir =
        pod.getVolumes().stream()
            .filter(v -> v.getName().equals("runtime-dir"))
            .findFirst()
            .orElseThrow();
    assertEquals("/opt/stasis", dir.getHostPath().getPath());
    assertTrue(
        init.getVolumeMounts().stream()
            .anyMatch(
                m ->
                    m.getName().equals("runtime-dir")
                        && m.getMountPath().equals("/host/opt/stasis")));
    String script = installScript(objs);
    assertTrue(script.contains("/app/runtime/stasis-runc \"$dst/bin/stasis-runc\""), script);
    assertTrue(script.contains("export STASIS_CLI=/opt/stasis/bin/stasis"), script);
    // the wrapper fetches a pod's checkpoint with the node's credentials only below the default
    // store's prefix of the pod's namespace (issue 14): it must know the default store
    String withStore = installScript(Chart.render(Map.of("defaultStorage.uri", "s3://ckpt/k8s")));
    assertTrue(
        withStore.contains("echo \"export STASIS_DEFAULT_STORAGE_URI='s3://ckpt/k8s'\""),
        withStore);
    Container op =
        one(objs, Deployment.class).getSpec().getTemplate().getSpec().getContainers().get(0);
    assertTrue(
        op.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_OPERATOR_RUNTIME_CLASS_NAME")
                        && e.getValue().equals("stasis")));

    List<HasMetadata> off = Chart.render(Map.of("runtime.enabled", "false"));
    assertTrue(
        off.stream()
            .noneMatch(io.fabric8.kubernetes.api.model.node.v1.RuntimeClass.class::isInstance));
    var offPod = one(off, DaemonSet.class).getSpec().getTemplate().getSpec();
    assertTrue(offPod.getInitContainers() == null || offPod.getInitContainers().isEmpty());
  }

  /**
   * Restore staging: the agent stages sources that need a Restore's or Checkpoint's Secrets into a
   * host directory the wrapper reads. The chart grants exactly the calls RestoreStagingIT sees the
   * agent make for it (pods list/watch, restores get/list/watch, restores/status update, besides
   * what it already has), mounts the directory, tells agent and wrapper where it is; all of it goes
   * away with runtime.staging.enabled=false.
   */
  @Test
  void restoreStagingGrantsMountsAndConfiguresWhatTheAgentAndTheWrapperUse() {
    String dir = "/var/lib/stasis/restore/staged";
    var grants = Chart.grants("node-agent", Map.of());
    for (String call :
        List.of(
            "pods list",
            "pods watch",
            "pods get",
            "restores get",
            "restores list",
            "restores watch",
            "restores/status update",
            "checkpoints get",
            "secrets get",
            "events create")) {
      String[] rv = call.split(" ");
      assertTrue(
          grants.stream()
              .anyMatch(
                  g ->
                      g.namespace() == null
                          && g.rule().getResources().contains(rv[0])
                          && g.rule().getVerbs().contains(rv[1])),
          "granted: " + call);
    }
    assertFalse(
        grants.stream()
            .anyMatch(
                g ->
                    g.rule().getResources().contains("restores")
                        && g.rule().getVerbs().stream()
                            .anyMatch(v -> !List.of("get", "list", "watch").contains(v))),
        "the agent only reads Restores");
    List<HasMetadata> objs = Chart.render(Map.of());
    var pod = one(objs, DaemonSet.class).getSpec().getTemplate().getSpec();
    Container agent = pod.getContainers().get(0);
    assertTrue(
        agent.getEnv().stream()
            .anyMatch(e -> e.getName().equals("STASIS_STAGED_DIR") && dir.equals(e.getValue())));
    assertTrue(
        agent.getVolumeMounts().stream()
            .anyMatch(m -> m.getName().equals("staged") && m.getMountPath().equals(dir)));
    assertTrue(
        pod.getVolumes().stream()
            .anyMatch(
                v ->
                    v.getName().equals("staged")
                        && v.getHostPath() != null
                        && v.getHostPath().getPath().equals(dir)));
    String script = installScript(objs);
    assertTrue(script.contains("echo \"export STASIS_STAGED_DIR=" + dir + "\""), script);
    assertTrue(script.contains("echo \"export STASIS_STAGE_WAIT_SECONDS=90\""), script);

    Map<String, String> offValues = Map.of("runtime.staging.enabled", "false");
    var off = Chart.grants("node-agent", offValues);
    assertFalse(
        off.stream()
            .anyMatch(
                g ->
                    g.rule().getResources().contains("restores")
                        || g.rule().getResources().contains("restores/status")
                        || (g.rule().getResources().contains("pods")
                            && g.rule().getVerbs().contains("watch"))),
        "no staging grants when disabled: " + off);
    var offPod = one(Chart.render(offValues), DaemonSet.class).getSpec().getTemplate().getSpec();
    assertTrue(
        offPod.getContainers().get(0).getEnv().stream()
            .noneMatch(e -> e.getName().equals("STASIS_STAGED_DIR")));
    assertTrue(offPod.getVolumes().stream().noneMatch(v -> v.getName().equals("staged")));
  }

  /** Users see and request Restores and Migrations through the same two roles as Checkpoints. */
  @Test
  void userRolesCoverRestoresAndMigrations() {
    List<HasMetadata> objs = Chart.render(Map.of());
    for (var role :
        objs.stream()
            .filter(ClusterRole.class::isInstance)
            .map(ClusterRole.class::cast)
            .filter(r -> r.getMetadata().getName().startsWith("stasis-checkpoint-"))
            .toList()) {
      var rule = role.getRules().get(0);
      assertEquals(List.of("checkpoints", "restores", "migrations"), rule.getResources());
      assertFalse(rule.getResources().stream().anyMatch(r -> r.endsWith("/status")));
      assertFalse(rule.getVerbs().contains("update") || rule.getVerbs().contains("patch"));
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

  /**
   * Issue 14: every node's agent shares one ServiceAccount, so RBAC cannot tell node A's agent from
   * node B's; the chart's ValidatingAdmissionPolicy does, by the node claim of the token.
   */
  /** The runtime wrapper's install script, from the chart's stasis-runtime-install ConfigMap. */
  static String installScript(List<HasMetadata> objs) {
    return objs.stream()
        .filter(io.fabric8.kubernetes.api.model.ConfigMap.class::isInstance)
        .map(io.fabric8.kubernetes.api.model.ConfigMap.class::cast)
        .filter(c -> c.getMetadata().getName().equals("stasis-runtime-install"))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no ConfigMap stasis-runtime-install"))
        .getData()
        .get("install.sh");
  }

  static ValidatingAdmissionPolicy policy(List<HasMetadata> objs, String name) {
    return objs.stream()
        .filter(o -> o instanceof ValidatingAdmissionPolicy)
        .map(o -> (ValidatingAdmissionPolicy) o)
        .filter(o -> o.getMetadata().getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no ValidatingAdmissionPolicy " + name));
  }

  static ValidatingAdmissionPolicyBinding binding(List<HasMetadata> objs, String policy) {
    return objs.stream()
        .filter(o -> o instanceof ValidatingAdmissionPolicyBinding)
        .map(o -> (ValidatingAdmissionPolicyBinding) o)
        .filter(o -> o.getSpec().getPolicyName().equals(policy))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no binding of " + policy));
  }

  static final String AGENT_SA = "system:serviceaccount:stasis-system:stasis-node-agent";
  static final String OPERATOR_SA = "system:serviceaccount:stasis-system:stasis-operator";

  @Test
  void admissionPolicyLetsAnAgentUpdateOnlyCheckpointsOfItsOwnNode() {
    List<HasMetadata> objs = Chart.render(Map.of());
    var vap = policy(objs, "stasis-node-agent-own-node");
    var binding = binding(objs, vap.getMetadata().getName());
    assertEquals(vap.getMetadata().getName(), binding.getSpec().getPolicyName());
    assertEquals(List.of("Deny"), binding.getSpec().getValidationActions());
    assertEquals("Fail", vap.getSpec().getFailurePolicy());
    var rule = vap.getSpec().getMatchConstraints().getResourceRules().get(0);
    assertEquals(List.of("stasis.dev"), rule.getApiGroups());
    assertEquals(List.of("UPDATE"), rule.getOperations());
    assertTrue(rule.getResources().containsAll(List.of("checkpoints", "checkpoints/status")));
    DaemonSet ds = one(objs, DaemonSet.class);
    String sa =
        "system:serviceaccount:stasis-system:"
            + ds.getSpec().getTemplate().getSpec().getServiceAccountName();
    assertTrue(
        vap.getSpec().getMatchConditions().get(0).getExpression().contains("'" + sa + "'"),
        "applies to the agents' ServiceAccount: " + vap.getSpec().getMatchConditions());
    String vars =
        vap.getSpec().getVariables().stream()
            .map(v -> v.getName() + "=" + v.getExpression())
            .reduce("", String::concat);
    assertTrue(vars.contains("request.userInfo.extra['authentication.kubernetes.io/node-name']"));
    assertTrue(vars.contains("oldObject.metadata.labels['" + dev.stasis.crds.Labels.NODE + "']"));
    String checks =
        vap.getSpec().getValidations().stream()
            .map(v -> v.getExpression())
            .reduce("", String::concat);
    assertTrue(checks.contains("variables.assignedNode == variables.tokenNode"), checks);
    assertTrue(checks.contains("object.metadata.labels['stasis.dev/node']"), checks);
    assertTrue(
        Chart.render(Map.of("agent.admissionPolicy.enabled", "false")).stream()
            .noneMatch(o -> o instanceof ValidatingAdmissionPolicy),
        "can be turned off for clusters before 1.30");

    // what the policy decides, evaluated (CEL) on real Checkpoints
    Checkpoint old = Fixtures.checkpoint("team", "c1", "web");
    old.getMetadata().setLabels(Map.of(dev.stasis.crds.Labels.NODE, "n1"));
    Checkpoint claimed = Fixtures.checkpoint("team", "c1", "web");
    claimed.getMetadata().setLabels(Map.of(dev.stasis.crds.Labels.NODE, "n1"));
    claimed.getMetadata().setAnnotations(Map.of("stasis.dev/claimed-by", "n1"));
    Object o = AdmissionPolicyEval.json(old);
    Object n = AdmissionPolicyEval.json(claimed);
    assertNull(AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, "n1"), o, n));
    assertEquals(
        "node agent of node n2 may not update a Checkpoint assigned to n1",
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, "n2"), o, n));
    assertTrue(
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, null), o, n)
            .startsWith("node agent of node  may not"),
        "a token without the node claim is refused");
    Checkpoint moved = Fixtures.checkpoint("team", "c1", "web");
    moved.getMetadata().setLabels(Map.of(dev.stasis.crds.Labels.NODE, "n2"));
    assertEquals(
        "a node agent may not change a Checkpoint's node assignment",
        AdmissionPolicyEval.decide(
            vap, AdmissionPolicyEval.request(AGENT_SA, "n1"), o, AdmissionPolicyEval.json(moved)));
    Checkpoint unassigned = Fixtures.checkpoint("team", "c1", "web");
    assertEquals(
        "node agent of node n1 may not update a Checkpoint assigned to no node",
        AdmissionPolicyEval.decide(
            vap,
            AdmissionPolicyEval.request(AGENT_SA, "n1"),
            AdmissionPolicyEval.json(unassigned),
            n));
    assertEquals(
        AdmissionPolicyEval.NOT_MATCHED,
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(OPERATOR_SA, null), o, n),
        "the operator assigns nodes: not its business");
  }

  /**
   * Issue 14: with restore staging the agents may update restores/status; the chart's second policy
   * lets an agent write only the Staged condition, and only of a Restore whose pod the operator
   * recorded on the agent's own node. Evaluated (CEL) on statuses made by the real aggregators.
   */
  @Test
  void admissionPolicyLetsAnAgentWriteOnlyTheStagedConditionsOfRestoresOnItsOwnNode() {
    List<HasMetadata> objs = Chart.render(Map.of());
    var vap = policy(objs, "stasis-node-agent-restore-staging");
    assertEquals(
        List.of("Deny"),
        binding(objs, vap.getMetadata().getName()).getSpec().getValidationActions());
    assertEquals("Fail", vap.getSpec().getFailurePolicy());
    var rule = vap.getSpec().getMatchConstraints().getResourceRules().get(0);
    assertEquals(List.of("UPDATE"), rule.getOperations());
    assertTrue(rule.getResources().contains("restores/status"), rule.getResources().toString());
    assertTrue(
        Chart.grants("node-agent", Map.of()).stream()
            .filter(g -> g.rule().getResources().contains("restores/status"))
            .allMatch(g -> g.rule().getVerbs().equals(List.of("update"))),
        "the policy covers every write the agent may make to a Restore");

    Instant t0 = Instant.parse("2026-12-04T10:00:00Z");
    Restore old = new Restore();
    old.setMetadata(
        new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
            .withNamespace("team")
            .withName("back")
            .withUid("u1")
            .withGeneration(1L)
            .build());
    old.setSpec(new RestoreSpec());
    old.getSpec().setCheckpointName("c1");
    old.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(RestorePhase.Restoring, Reason.PodCreated, "created")
                .pod("back", "pod-uid")
                .node("n1")
                .location("s3://b/team/c1/u"),
            t0));
    Restore staged = copy(old);
    staged.setStatus(
        RestoreStatusAggregator.staged(
            old.getStatus(), 1, Reason.Staged, "app staged on node n1", t0.plusSeconds(3)));
    Object o = AdmissionPolicyEval.json(old);
    Object n = AdmissionPolicyEval.json(staged);
    var agentN1 = AdmissionPolicyEval.request(AGENT_SA, "n1");
    assertNull(AdmissionPolicyEval.decide(vap, agentN1, o, n), "its own node's Restore");
    assertEquals(
        "node agent of node n2 may not update a Restore whose pod is on n1",
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, "n2"), o, n));
    assertTrue(
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, null), o, n)
            .contains("may not update"),
        "no node claim");

    Restore unscheduled = copy(old);
    unscheduled.getStatus().nodeName = null;
    Restore unscheduledStaged = copy(unscheduled);
    unscheduledStaged.setStatus(
        RestoreStatusAggregator.staged(
            unscheduled.getStatus(), 1, Reason.Staging, "fetching", t0.plusSeconds(1)));
    assertEquals(
        "node agent of node n1 may not update a Restore whose pod is not scheduled yet",
        AdmissionPolicyEval.decide(
            vap,
            agentN1,
            AdmissionPolicyEval.json(unscheduled),
            AdmissionPolicyEval.json(unscheduledStaged)));

    // anything but the Staged condition: the operator's
    Restore failed = copy(old);
    failed.setStatus(
        RestoreStatusAggregator.next(
            old.getStatus(),
            1,
            RestoreStatusAggregator.Step.failed(Reason.RestoredPodFailed, "forged"),
            t0.plusSeconds(3)));
    String only = "a node agent may change only a Restore's Staged and ParentStaged conditions";
    assertEquals(
        only, AdmissionPolicyEval.decide(vap, agentN1, o, AdmissionPolicyEval.json(failed)));
    for (java.util.function.Consumer<RestoreStatus> forge :
        List.<java.util.function.Consumer<RestoreStatus>>of(
            s -> s.message = "forged",
            s -> s.location = "s3://elsewhere/x",
            s -> s.nodeName = "n2",
            s -> s.podName = "other",
            s -> s.readyAt = "2026-12-04T10:00:05.000Z",
            s ->
                s.conditions.stream()
                    .filter(c -> !c.getType().equals(RestoreStatusAggregator.STAGED))
                    .findFirst()
                    .orElseThrow()
                    .setMessage("forged"))) {
      Restore forged = copy(staged);
      forge.accept(forged.getStatus());
      assertEquals(
          only, AdmissionPolicyEval.decide(vap, agentN1, o, AdmissionPolicyEval.json(forged)));
    }

    // A Migration's Restore waiting for its held Checkpoint, recorded on n1 by the operator: the
    // agent of n1 reports ParentStaged (and parentStagedAt, once), nobody else.
    Restore waiting = copy(old);
    waiting.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(RestorePhase.Pending, Reason.PreStaging, "held")
                .node("n1"),
            t0));
    Restore parentStaged = copy(waiting);
    parentStaged.setStatus(
        RestoreStatusAggregator.parentStaged(
            waiting.getStatus(), 1, Reason.ParentStaged, "app staged", t0.plusSeconds(2)));
    Object w = AdmissionPolicyEval.json(waiting);
    Object ps = AdmissionPolicyEval.json(parentStaged);
    assertNull(AdmissionPolicyEval.decide(vap, agentN1, w, ps), "ParentStaged on its own node");
    assertEquals(
        "node agent of node n2 may not update a Restore whose pod is on n1",
        AdmissionPolicyEval.decide(vap, AdmissionPolicyEval.request(AGENT_SA, "n2"), w, ps));
    Restore moved = copy(parentStaged);
    moved.getStatus().parentStagedAt = "2026-12-04T11:00:00.000Z";
    assertEquals(
        only,
        AdmissionPolicyEval.decide(vap, agentN1, ps, AdmissionPolicyEval.json(moved)),
        "parentStagedAt is written once");
    assertEquals(
        AdmissionPolicyEval.NOT_MATCHED,
        AdmissionPolicyEval.decide(
            vap,
            AdmissionPolicyEval.request(OPERATOR_SA, null),
            o,
            AdmissionPolicyEval.json(failed)),
        "the operator writes the rest");

    // the policy names every field of the status besides the conditions
    String fields =
        vap.getSpec().getValidations().stream()
            .map(v -> v.getExpression())
            .reduce("", String::concat);
    for (var f : RestoreStatus.class.getFields()) {
      if (java.lang.reflect.Modifier.isStatic(f.getModifiers())
          || f.getName().equals("conditions")) {
        continue;
      }
      assertTrue(
          fields.contains("object.status." + f.getName() + " == oldObject.status." + f.getName()),
          "the policy keeps status." + f.getName() + " as the operator wrote it");
    }
    assertTrue(
        Chart.render(Map.of("runtime.staging.enabled", "false")).stream()
            .filter(x -> x instanceof ValidatingAdmissionPolicy)
            .noneMatch(x -> x.getMetadata().getName().endsWith("restore-staging")),
        "no staging, no Restore rights, no policy");
  }

  static Restore copy(Restore r) {
    Restore c = new Restore();
    c.setMetadata(r.getMetadata());
    c.setSpec(r.getSpec());
    c.setStatus(r.getStatus() == null ? null : r.getStatus().copy());
    return c;
  }

  @Test
  void usersGetViewerAndEditorRolesThatCannotWriteStatus() {
    List<HasMetadata> objs = Chart.render(Map.of());
    ClusterRole viewer = clusterRole(objs, "stasis-checkpoint-viewer");
    ClusterRole editor = clusterRole(objs, "stasis-checkpoint-editor");
    assertEquals(List.of("get", "list", "watch"), viewer.getRules().get(0).getVerbs());
    for (ClusterRole r : List.of(viewer, editor)) {
      for (var rule : r.getRules()) {
        assertEquals(
            List.of("checkpoints", "restores", "migrations"),
            rule.getResources(),
            "no status, no secrets");
        assertFalse(rule.getVerbs().contains("update") || rule.getVerbs().contains("patch"));
      }
    }
    assertTrue(editor.getRules().get(0).getVerbs().containsAll(List.of("create", "delete")));
    assertTrue(
        viewer.getMetadata().getLabels().keySet().stream().noneMatch(k -> k.contains("aggregate")));
    ClusterRole aggregated =
        clusterRole(
            Chart.render(Map.of("rbac.aggregateToDefaultRoles", "true")),
            "stasis-checkpoint-editor");
    assertEquals(
        "true",
        aggregated.getMetadata().getLabels().get("rbac.authorization.k8s.io/aggregate-to-edit"));
  }

  @Test
  void agentSecretReadsCanBeNamespaced() {
    assertTrue(
        Chart.grants("node-agent", Map.of()).stream()
            .anyMatch(g -> g.namespace() == null && g.rule().getResources().contains("secrets")),
        "default: cluster-wide");
    var grants = Chart.grants("node-agent", Map.of("agent.secretNamespaces[0]", "team-a"));
    assertTrue(
        grants.stream()
            .noneMatch(g -> g.namespace() == null && g.rule().getResources().contains("secrets")),
        "no cluster-wide Secret read once namespaces are listed");
    assertTrue(
        grants.stream()
            .anyMatch(
                g ->
                    "team-a".equals(g.namespace())
                        && g.rule().getResources().equals(List.of("secrets"))
                        && g.rule().getVerbs().equals(List.of("get"))));
    var binding =
        Chart.render(Map.of("agent.secretNamespaces[0]", "team-a")).stream()
            .filter(o -> o instanceof io.fabric8.kubernetes.api.model.rbac.RoleBinding)
            .map(o -> (io.fabric8.kubernetes.api.model.rbac.RoleBinding) o)
            .filter(b -> "team-a".equals(b.getMetadata().getNamespace()))
            .findFirst()
            .orElseThrow();
    assertEquals("stasis-node-agent", binding.getSubjects().get(0).getName());
  }

  /**
   * Issue 14: a read-only root needs a writable /tmp for Quarkus/Vert.x; two replicas elect a
   * leader through a Lease the chart lets them use in the release namespace only.
   */
  @Test
  void operatorHasAWritableTmpAndLeaderElectionWithItsLeaseRole() {
    List<HasMetadata> objs = Chart.render(Map.of("operator.replicas", "2"));
    Deployment d = one(objs, Deployment.class);
    assertEquals(2, d.getSpec().getReplicas());
    var pod = d.getSpec().getTemplate().getSpec();
    Container c = pod.getContainers().get(0);
    assertTrue(c.getSecurityContext().getReadOnlyRootFilesystem());
    var tmp =
        c.getVolumeMounts().stream()
            .filter(m -> m.getMountPath().equals("/tmp"))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no /tmp mount"));
    assertTrue(
        pod.getVolumes().stream()
            .anyMatch(v -> v.getName().equals(tmp.getName()) && v.getEmptyDir() != null));
    assertTrue(
        c.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("STASIS_OPERATOR_LEASE_NAMESPACE")
                        && e.getValue().equals("stasis-system")));
    assertTrue(
        Chart.grants("operator", Map.of()).stream()
            .anyMatch(
                g ->
                    "stasis-system".equals(g.namespace())
                        && g.rule().getApiGroups().equals(List.of("coordination.k8s.io"))
                        && g.rule().getResources().equals(List.of("leases"))),
        "Lease rights in the release namespace only");
  }

  /** Issue 14: the agent's spool room is the emptyDir's sizeLimit, passed to the agent. */
  @Test
  void agentKnowsItsSpoolSizeLimit() {
    Container c =
        one(Chart.render(Map.of("agent.spool.sizeLimit", "2Gi")), DaemonSet.class)
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    assertTrue(
        c.getEnv().stream()
            .anyMatch(e -> e.getName().equals("STASIS_SPOOL_LIMIT") && e.getValue().equals("2Gi")),
        c.getEnv().toString());
  }

  static ClusterRole clusterRole(List<HasMetadata> objs, String name) {
    return objs.stream()
        .filter(o -> o instanceof ClusterRole && o.getMetadata().getName().equals(name))
        .map(o -> (ClusterRole) o)
        .findFirst()
        .orElseThrow(() -> new AssertionError("no ClusterRole " + name));
  }

  @Test
  void chartShipsTheGeneratedCrd() throws Exception {
    assertEquals(
        Files.readString(java.nio.file.Path.of("../crds/checkpoints.stasis.dev-v1.yml")),
        Files.readString(Chart.DIR.resolve("crds/checkpoints.stasis.dev-v1.yml")));
  }
}
