package dev.stasis.operator;

import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestoreStaging;
import io.fabric8.kubernetes.api.model.Affinity;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.NodeAffinity;
import io.fabric8.kubernetes.api.model.NodeSelector;
import io.fabric8.kubernetes.api.model.NodeSelectorRequirement;
import io.fabric8.kubernetes.api.model.NodeSelectorTerm;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The pod a Restore creates, and what its status says about the restore. Pure.
 *
 * <p>The pod is the checkpointed pod's sanitized template with: the Restore's name and labels;
 * {@code runtimeClassName} of the Stasis runtime; one annotation per restored container, {@code
 * restore-from.stasis.dev/<container>: <location>/<container>}, which the runtime handler passes to
 * the OCI runtime and the wrapper reads for the container it creates (pod annotations reach every
 * container's OCI spec, the sandbox's too, so the key names the container); {@code
 * stasis.dev/restore} and {@code stasis.dev/restore-uid} naming the Restore (the operator
 * recognises its own pod by the uid); for a source the node agent stages (it needs the Restore's or
 * the Checkpoint's Secrets, {@link RestoreStaging}), {@code staged:<restore uid>/<container>} in
 * place of the location; and, with a target node, a required node affinity on the node's name (the
 * scheduler still checks resources, unlike {@code spec.nodeName}).
 */
final class RestorePods {
  private static final KubernetesSerialization JSON = new KubernetesSerialization();

  /** Container waiting reasons after which the kubelet will not bring the restore up. */
  static final Set<String> FATAL_WAITING =
      Set.of(
          "CrashLoopBackOff",
          "CreateContainerError",
          "CreateContainerConfigError",
          "RunContainerError",
          "ErrImagePull",
          "ImagePullBackOff",
          "InvalidImageName");

  private RestorePods() {}

  static String podName(Restore r) {
    String n = r.getSpec().getPodName();
    return n == null || n.isEmpty() ? r.getMetadata().getName() : n;
  }

  static Pod build(
      Restore r,
      PodTemplateSpec template,
      String location,
      List<String> containers,
      String runtimeClass,
      boolean staged) {
    PodTemplateSpec t = JSON.clone(template);
    ObjectMeta meta = new ObjectMeta();
    meta.setName(podName(r));
    meta.setNamespace(r.getMetadata().getNamespace());
    Map<String, String> labels =
        r.getSpec().getPodLabels() != null
            ? r.getSpec().getPodLabels()
            : t.getMetadata() == null ? null : t.getMetadata().getLabels();
    if (labels != null && !labels.isEmpty()) {
      meta.setLabels(new LinkedHashMap<>(labels));
    }
    Map<String, String> ann = new LinkedHashMap<>();
    if (t.getMetadata() != null && t.getMetadata().getAnnotations() != null) {
      ann.putAll(t.getMetadata().getAnnotations());
    }
    String base = location.endsWith("/") ? location.substring(0, location.length() - 1) : location;
    for (String c : containers) {
      ann.put(
          PodTemplates.RESTORE_FROM_PREFIX + c,
          staged ? RestoreStaging.annotation(r.getMetadata().getUid(), c) : base + "/" + c);
    }
    ann.put(
        PodTemplates.RESTORE_ANNOTATION,
        r.getMetadata().getNamespace() + "/" + r.getMetadata().getName());
    ann.put(PodTemplates.RESTORE_UID_ANNOTATION, r.getMetadata().getUid());
    meta.setAnnotations(ann);
    PodSpec spec = t.getSpec() == null ? new PodSpec() : t.getSpec();
    spec.setNodeName(null);
    spec.setRuntimeClassName(runtimeClass);
    String node = r.getSpec().getNodeName();
    if (node != null && !node.isEmpty()) {
      Affinity a = spec.getAffinity() == null ? new Affinity() : spec.getAffinity();
      NodeAffinity na = a.getNodeAffinity() == null ? new NodeAffinity() : a.getNodeAffinity();
      NodeSelectorTerm term = new NodeSelectorTerm();
      term.setMatchFields(
          List.of(new NodeSelectorRequirement("metadata.name", "In", List.of(node))));
      na.setRequiredDuringSchedulingIgnoredDuringExecution(new NodeSelector(List.of(term)));
      a.setNodeAffinity(na);
      spec.setAffinity(a);
    }
    Pod p = new Pod();
    p.setMetadata(meta);
    p.setSpec(spec);
    return p;
  }

  /**
   * The wrapper gave up waiting for images the node agent still stages: the kubelet retries the
   * create, so this error is not the end of the restore (timeoutSeconds still bounds it).
   */
  static boolean stagingNotDone(String reason, String message) {
    return "CreateContainerError".equals(reason)
        && message != null
        && message.contains(RestoreStaging.NOT_READY);
  }

  /** True when {@code pod} was created by {@code r} (not a stranger of the same name). */
  static boolean ours(Pod pod, Restore r) {
    Map<String, String> ann = pod.getMetadata().getAnnotations();
    return ann != null
        && r.getMetadata().getUid() != null
        && r.getMetadata().getUid().equals(ann.get(PodTemplates.RESTORE_UID_ANNOTATION));
  }

  static boolean ready(Pod pod) {
    return pod.getStatus() != null
        && pod.getStatus().getConditions() != null
        && pod.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  /**
   * Why the restored pod will not come up, or null while it still may: the pod ended, a container
   * waits for a reason the kubelet does not recover from (the runtime's error, e.g. the wrapper's
   * one line, is its message), or a container restarted (it then started from scratch: the restored
   * state is gone).
   */
  static String failure(Pod pod) {
    var st = pod.getStatus();
    if (st == null) {
      return null;
    }
    List<ContainerStatus> cs =
        st.getContainerStatuses() == null ? List.of() : st.getContainerStatuses();
    if ("Failed".equals(st.getPhase()) || "Succeeded".equals(st.getPhase())) {
      StringBuilder why = new StringBuilder("pod is " + st.getPhase());
      for (ContainerStatus c : cs) {
        var term = c.getState() == null ? null : c.getState().getTerminated();
        if (term != null) {
          why.append("; container '")
              .append(c.getName())
              .append("' ")
              .append(term.getReason())
              .append(" (exit ")
              .append(term.getExitCode())
              .append(")")
              .append(term.getMessage() == null ? "" : ": " + term.getMessage());
        }
      }
      return why.toString();
    }
    for (ContainerStatus c : cs) {
      var waiting = c.getState() == null ? null : c.getState().getWaiting();
      if (waiting != null
          && FATAL_WAITING.contains(waiting.getReason())
          && !stagingNotDone(waiting.getReason(), waiting.getMessage())) {
        return "container '"
            + c.getName()
            + "' "
            + waiting.getReason()
            + (waiting.getMessage() == null ? "" : ": " + waiting.getMessage());
      }
      if (c.getRestartCount() != null && c.getRestartCount() > 0) {
        var last = c.getLastState() == null ? null : c.getLastState().getTerminated();
        return "container '"
            + c.getName()
            + "' restarted, so it runs from scratch, not from the checkpoint"
            + (last == null
                ? ""
                : " (it ended " + last.getReason() + ", exit " + last.getExitCode() + ")");
      }
    }
    return null;
  }
}
