package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What a checkpoint carries of its pod so that a new pod can be made from it: labels, annotations
 * and the spec, with everything removed that belongs to the one running instance or that the API
 * server and its admission plugins fill in again for a new pod. Pure; the node agent applies it to
 * the pod it read, the operator builds the restored pod from the result.
 *
 * <p>Removed, and why:
 *
 * <ul>
 *   <li>status, and every metadata field but labels and annotations (name, uid, resourceVersion,
 *       ownerReferences, managedFields...): they name the old instance;
 *   <li>{@code spec.nodeName}: the restored pod is placed by the Restore (target node or
 *       scheduler), never on the old node by accident;
 *   <li>service-account token volumes (projected volumes with a serviceAccountToken source, the
 *       {@code kube-api-access-*} volume) and their mounts: tokens are bound to the old pod, and
 *       the ServiceAccount admission plugin mounts a fresh one into the new pod;
 *   <li>ephemeral containers ({@code kubectl debug}): not part of the workload;
 *   <li>{@code priority} and {@code preemptionPolicy}: set by the Priority admission plugin from
 *       priorityClassName, and rejected when given together with a class they do not match;
 *   <li>annotations Stasis itself wrote on a restored pod ({@link #RESTORE_FROM_PREFIX}, {@link
 *       #RESTORE_ANNOTATION}): a pod restored twice must name only its newest checkpoint.
 * </ul>
 */
public final class PodTemplates {
  /**
   * Pod annotation key prefix naming one container's image set: {@code
   * restore-from.stasis.dev/<container name>: <checkpoint location>/<container name>}. A prefix
   * plus the container's name (a DNS label of up to 63 characters) is always a valid annotation
   * key; the runtime wrapper picks the key of the container it creates (docs/restore.md).
   */
  public static final String RESTORE_FROM_PREFIX = "restore-from.stasis.dev/";

  /** Pod annotation: namespace/name of the Restore that created the pod. */
  public static final String RESTORE_ANNOTATION = "stasis.dev/restore";

  /** Pod annotation: uid of the Restore that created the pod (recognises its own pod). */
  public static final String RESTORE_UID_ANNOTATION = "stasis.dev/restore-uid";

  private static final KubernetesSerialization JSON = new KubernetesSerialization();

  private PodTemplates() {}

  /** The sanitized template of {@code pod} (which is not modified). */
  public static PodTemplateSpec sanitize(Pod pod) {
    Pod copy = JSON.clone(pod);
    ObjectMeta meta = new ObjectMeta();
    ObjectMeta old = copy.getMetadata() == null ? new ObjectMeta() : copy.getMetadata();
    if (old.getLabels() != null && !old.getLabels().isEmpty()) {
      meta.setLabels(new LinkedHashMap<>(old.getLabels()));
    }
    if (old.getAnnotations() != null) {
      Map<String, String> ann = new LinkedHashMap<>();
      old.getAnnotations().entrySet().stream()
          .filter(e -> !e.getKey().startsWith(RESTORE_FROM_PREFIX))
          .filter(e -> !e.getKey().startsWith(RESTORE_ANNOTATION))
          .forEach(e -> ann.put(e.getKey(), e.getValue()));
      if (!ann.isEmpty()) {
        meta.setAnnotations(ann);
      }
    }
    PodSpec spec = copy.getSpec() == null ? new PodSpec() : copy.getSpec();
    spec.setNodeName(null);
    spec.setEphemeralContainers(new ArrayList<>());
    spec.setPriority(null);
    spec.setPreemptionPolicy(null);
    if (spec.getVolumes() != null) {
      Set<String> tokens =
          spec.getVolumes().stream()
              .filter(PodTemplates::isServiceAccountToken)
              .map(Volume::getName)
              .collect(Collectors.toSet());
      List<Volume> kept = new ArrayList<>(spec.getVolumes());
      kept.removeIf(v -> tokens.contains(v.getName()));
      spec.setVolumes(kept.isEmpty() ? null : kept);
      for (List<Container> cs :
          List.of(containers(spec.getContainers()), containers(spec.getInitContainers()))) {
        for (Container c : cs) {
          if (c.getVolumeMounts() != null) {
            var mounts = new ArrayList<>(c.getVolumeMounts());
            mounts.removeIf(m -> tokens.contains(m.getName()));
            c.setVolumeMounts(mounts.isEmpty() ? null : mounts);
          }
        }
      }
    }
    PodTemplateSpec t = new PodTemplateSpec();
    t.setMetadata(meta);
    t.setSpec(spec);
    return t;
  }

  private static List<Container> containers(List<Container> l) {
    return l == null ? List.of() : l;
  }

  static boolean isServiceAccountToken(Volume v) {
    return v.getProjected() != null
        && v.getProjected().getSources() != null
        && v.getProjected().getSources().stream().anyMatch(s -> s.getServiceAccountToken() != null);
  }

  /** JSON of a template, as recorded in each container's manifest metadata. */
  public static String toJson(PodTemplateSpec t) {
    return JSON.asJson(t);
  }

  public static PodTemplateSpec fromJson(String json) {
    return JSON.unmarshal(json, PodTemplateSpec.class);
  }
}
