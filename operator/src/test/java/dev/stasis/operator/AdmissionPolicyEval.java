package dev.stasis.operator;

import dev.cel.common.CelAbstractSyntaxTree;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicy;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Evaluates a rendered ValidatingAdmissionPolicy the way the API server does for one UPDATE
 * request, with CEL-Java: match conditions (all true, or the policy does not apply), then the
 * variables in order, then each validation (the first false one denies, with its message). The
 * expressions use standard CEL only (has, filter, in, ==), which CEL-Java and the API server's
 * cel-go evaluate alike; what the API server adds around it (the resource rules, the binding, the
 * status subresource ignoring spec changes) is checked separately in HelmChartTest.
 *
 * <p>Objects go in as their JSON form (maps, lists, strings, booleans, integers as long), as the
 * API server sees them.
 */
final class AdmissionPolicyEval {
  private static final CelCompiler COMPILER =
      CelCompilerFactory.standardCelCompilerBuilder()
          .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
          .addVar("object", SimpleType.DYN)
          .addVar("oldObject", SimpleType.DYN)
          .addVar("request", SimpleType.DYN)
          .addVar("variables", SimpleType.DYN)
          .build();
  private static final CelRuntime RUNTIME = CelRuntimeFactory.standardCelRuntimeBuilder().build();
  private static final KubernetesSerialization SER = new KubernetesSerialization();

  /** Not applied: a match condition was false. */
  static final String NOT_MATCHED = "<policy does not apply>";

  private AdmissionPolicyEval() {}

  /** A request by {@code username} whose token claims {@code node} (null: no node claim). */
  static Map<String, Object> request(String username, String node) {
    Map<String, Object> extra = new LinkedHashMap<>();
    if (node != null) {
      extra.put("authentication.kubernetes.io/node-name", List.of(node));
    }
    return Map.of("userInfo", Map.of("username", username, "extra", extra), "operation", "UPDATE");
  }

  /** The JSON form of a Kubernetes object, numbers as long. */
  static Object json(Object k8sObject) {
    return normalize(SER.convertValue(k8sObject, Map.class));
  }

  /** Null when the policy admits the request, {@link #NOT_MATCHED}, or the denial's message. */
  static String decide(
      ValidatingAdmissionPolicy vap, Map<String, Object> request, Object oldObject, Object object) {
    Map<String, Object> vars = new LinkedHashMap<>();
    Map<String, Object> in = new LinkedHashMap<>();
    in.put("request", request);
    in.put("oldObject", oldObject);
    in.put("object", object);
    in.put("variables", vars);
    for (var m : vap.getSpec().getMatchConditions()) {
      if (!Boolean.TRUE.equals(eval(m.getExpression(), in))) {
        return NOT_MATCHED;
      }
    }
    for (var v : vap.getSpec().getVariables()) {
      vars.put(v.getName(), eval(v.getExpression(), in));
    }
    for (var v : vap.getSpec().getValidations()) {
      if (!Boolean.TRUE.equals(eval(v.getExpression(), in))) {
        return v.getMessageExpression() != null
            ? String.valueOf(eval(v.getMessageExpression(), in))
            : v.getMessage();
      }
    }
    return null;
  }

  static Object eval(String expression, Map<String, Object> in) {
    try {
      CelAbstractSyntaxTree ast = COMPILER.compile(expression).getAst();
      return RUNTIME.createProgram(ast).eval(in);
    } catch (Exception e) {
      throw new AssertionError("CEL: " + expression + ": " + e.getMessage(), e);
    }
  }

  private static Object normalize(Object o) {
    if (o instanceof Map<?, ?> m) {
      Map<String, Object> out = new LinkedHashMap<>();
      // the API server stores no null fields: absent, as has() sees them there
      m.forEach(
          (k, v) -> {
            if (v != null) {
              out.put(String.valueOf(k), normalize(v));
            }
          });
      return out;
    }
    if (o instanceof List<?> l) {
      List<Object> out = new ArrayList<>();
      l.forEach(x -> out.add(normalize(x)));
      return out;
    }
    if (o instanceof Integer i) {
      return i.longValue();
    }
    return o;
  }
}
