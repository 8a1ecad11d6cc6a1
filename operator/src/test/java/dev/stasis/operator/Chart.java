package dev.stasis.operator;

import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The Helm chart rendered with helm-java (Helm 3 as a native library, offline). */
final class Chart {
  static final Path DIR = Path.of("../helm/stasis");
  static final String RELEASE = "stasis";

  private Chart() {}

  static List<HasMetadata> render(Map<String, String> values) {
    var t = new Helm(DIR).template().withName(RELEASE).withNamespace("stasis-system");
    values.forEach(t::set);
    String yaml = t.call();
    KubernetesSerialization ser = new KubernetesSerialization();
    List<HasMetadata> out = new ArrayList<>();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
        out.add(ser.unmarshal(doc, HasMetadata.class));
      }
    }
    return out;
  }

  /** The rules of the chart's ClusterRole for one component ("operator", "node-agent"). */
  static List<PolicyRule> rules(String component) {
    return render(Map.of()).stream()
        .filter(o -> o instanceof ClusterRole)
        .map(o -> (ClusterRole) o)
        .filter(r -> r.getMetadata().getName().equals(RELEASE + "-" + component))
        .findFirst()
        .orElseThrow(() -> new AssertionError("chart has no ClusterRole for " + component))
        .getRules();
  }

  /** A rule and where it applies: {@code namespace} null for a ClusterRole (everywhere). */
  record Grant(String namespace, PolicyRule rule) {}

  /**
   * What the chart grants one component: its ClusterRole, and its Roles (names starting with the
   * component's) in their namespaces.
   */
  static List<Grant> grants(String component, Map<String, String> values) {
    List<Grant> out = new ArrayList<>();
    String name = RELEASE + "-" + component;
    for (HasMetadata o : render(values)) {
      if (o instanceof ClusterRole r && r.getMetadata().getName().equals(name)) {
        r.getRules().forEach(x -> out.add(new Grant(null, x)));
      } else if (o instanceof io.fabric8.kubernetes.api.model.rbac.Role r
          && r.getMetadata().getName().startsWith(name)) {
        r.getRules().forEach(x -> out.add(new Grant(r.getMetadata().getNamespace(), x)));
      }
    }
    return out;
  }

  /** One API call as RBAC sees it ({@code namespace} null for cluster-scoped requests). */
  record ApiCall(
      String verb, String group, String resource, String namespace, String method, String path) {
    /** Maps a request line (method, path) to the RBAC verb, API group and resource it needs. */
    static ApiCall of(String method, String fullPath) {
      String path = fullPath;
      String query = "";
      int q = path.indexOf('?');
      if (q >= 0) {
        query = path.substring(q + 1);
        path = path.substring(0, q);
      }
      String[] p = path.substring(1).split("/");
      int i;
      String group;
      if (p[0].equals("api")) {
        group = "";
        i = 2;
      } else if (p[0].equals("apis")) {
        group = p[1];
        i = 3;
      } else {
        return new ApiCall("nonresource", "", path, null, method, fullPath);
      }
      String namespace = null;
      if (i < p.length && p[i].equals("namespaces") && i + 2 < p.length) {
        namespace = p[i + 1];
        i += 2;
      }
      String resource = p[i];
      String name = i + 1 < p.length ? p[i + 1] : null;
      if (i + 2 < p.length) {
        resource = resource + "/" + p[i + 2];
      }
      String verb =
          switch (method) {
            case "GET" -> name != null ? "get" : query.contains("watch=true") ? "watch" : "list";
            case "POST" -> "create";
            case "PUT" -> "update";
            case "PATCH" -> "patch";
            case "DELETE" -> name != null ? "delete" : "deletecollection";
            default -> method.toLowerCase();
          };
      return new ApiCall(verb, group, resource, namespace, method, fullPath);
    }

    boolean allowedByGrants(List<Grant> grants) {
      for (Grant g : grants) {
        if ((g.namespace() == null || g.namespace().equals(namespace))
            && allowedBy(List.of(g.rule()))) {
          return true;
        }
      }
      return false;
    }

    boolean allowedBy(List<PolicyRule> rules) {
      for (PolicyRule r : rules) {
        if (r.getApiGroups().contains(group)
            && r.getResources().contains(resource)
            && r.getVerbs().contains(verb)) {
          return true;
        }
      }
      return false;
    }
  }
}
