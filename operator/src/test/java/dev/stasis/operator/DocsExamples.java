package dev.stasis.operator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The examples the documentation shows, taken from the Markdown itself so that a test exercises
 * exactly what a reader copies: every Checkpoint manifest in a code block (```yaml blocks and
 * {@code <<'YAML'} here-documents in shell blocks), the first-checkpoint workload of install.md,
 * and the CRD's schema to validate them against.
 */
final class DocsExamples {
  static final Path ROOT = Path.of("..");
  static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private DocsExamples() {}

  /** One Checkpoint manifest from a document: where it is and what it says. */
  record Example(String where, String yaml, JsonNode tree) {}

  static List<Path> documents() {
    try (Stream<Path> s = Files.list(ROOT.resolve("docs"))) {
      List<Path> out =
          new ArrayList<>(s.filter(p -> p.toString().endsWith(".md")).sorted().toList());
      out.add(ROOT.resolve("README.md"));
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static final Pattern FENCE = Pattern.compile("(?ms)^```(\\w*)\\n(.*?)^```");
  private static final Pattern HEREDOC = Pattern.compile("(?ms)<<'?YAML'?\\n(.*?)^YAML$");

  /** Every Checkpoint manifest in the documentation. */
  static List<Example> checkpoints() {
    return examples("Checkpoint");
  }

  /** Every manifest of {@code kind} (Checkpoint, Restore, Migration) in the documentation. */
  static List<Example> examples(String kind) {
    List<Example> out = new ArrayList<>();
    for (Path doc : documents()) {
      String text = read(doc);
      Matcher m = FENCE.matcher(text);
      while (m.find()) {
        String lang = m.group(1);
        String body = m.group(2);
        int line = (int) text.substring(0, m.start()).lines().count() + 1;
        List<String> yamls = new ArrayList<>();
        if (lang.equals("yaml")) {
          yamls.addAll(List.of(body.split("(?m)^---\\s*$")));
        } else {
          Matcher h = HEREDOC.matcher(body);
          while (h.find()) {
            yamls.add(h.group(1));
          }
        }
        for (String y : yamls) {
          if (y.contains("kind: " + kind + "\n")) {
            out.add(new Example(ROOT.relativize(doc) + ":" + line, y, parse(y)));
          }
        }
      }
    }
    return out;
  }

  /** The shell script of install.md's first-checkpoint pod ({@code kubectl run counter ...}). */
  static String firstCheckpointWorkload() {
    return workload(read(ROOT.resolve("docs/install.md")), "docs/install.md");
  }

  static String workload(String text, String where) {
    Matcher m =
        Pattern.compile("kubectl run counter --image=busybox --restart=Never -- sh -c '([^']*)'")
            .matcher(text);
    if (!m.find()) {
      throw new AssertionError(where + " has no 'kubectl run counter ... -- sh -c '...'' line");
    }
    return m.group(1);
  }

  /** install.md's first Checkpoint (the one after the workload). */
  static Example firstCheckpoint() {
    return checkpoints().stream()
        .filter(e -> e.where().startsWith("docs/install.md"))
        .findFirst()
        .orElseThrow(() -> new AssertionError("docs/install.md shows no Checkpoint"));
  }

  static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode parse(String yaml) {
    try {
      return YAML.readTree(yaml);
    } catch (IOException e) {
      throw new AssertionError("not YAML: " + e.getMessage() + "\n" + yaml, e);
    }
  }

  /** The openAPIV3Schema of the committed Checkpoint CRD. */
  static JsonNode crdSchema() {
    return crdSchema("Checkpoint");
  }

  /** The openAPIV3Schema of the committed CRD of {@code kind}. */
  static JsonNode crdSchema(String kind) {
    String plural = kind.toLowerCase(java.util.Locale.ROOT) + "s";
    JsonNode crd = parse(read(ROOT.resolve("crds/" + plural + ".stasis.dev-v1.yml")));
    return crd.get("spec").get("versions").get(0).get("schema").get("openAPIV3Schema");
  }

  /**
   * Structural-schema validation as the API server does it for what the schema can express: types,
   * unknown fields (a real server prunes them silently, which would make an example mean something
   * else; here they are errors), required fields, enums, minimum/maximum and patterns. CEL rules
   * are not evaluated here. Returns the errors, empty when valid.
   */
  static List<String> validate(JsonNode checkpoint) {
    return validate(checkpoint, "Checkpoint");
  }

  static List<String> validate(JsonNode checkpoint, String kind) {
    List<String> errors = new ArrayList<>();
    if (!"stasis.dev/v1alpha1".equals(text(checkpoint, "apiVersion"))) {
      errors.add("apiVersion must be stasis.dev/v1alpha1");
    }
    if (!kind.equals(text(checkpoint, "kind"))) {
      errors.add("kind must be " + kind);
    }
    JsonNode meta = checkpoint.get("metadata");
    if (meta == null || text(meta, "name") == null) {
      errors.add("metadata.name is required");
    }
    JsonNode schema = crdSchema(kind).get("properties");
    for (Iterator<Map.Entry<String, JsonNode>> it = checkpoint.fields(); it.hasNext(); ) {
      var f = it.next();
      if (List.of("apiVersion", "kind", "metadata").contains(f.getKey())) {
        continue;
      }
      if (!schema.has(f.getKey())) {
        errors.add(f.getKey() + ": unknown field");
        continue;
      }
      check(f.getKey(), f.getValue(), schema.get(f.getKey()), errors);
    }
    return errors;
  }

  private static void check(String path, JsonNode v, JsonNode s, List<String> errors) {
    String type = text(s, "type");
    if (type != null) {
      boolean ok =
          switch (type) {
            case "object" -> v.isObject();
            case "array" -> v.isArray();
            case "string" -> v.isTextual();
            case "integer" -> v.isIntegralNumber();
            case "number" -> v.isNumber();
            case "boolean" -> v.isBoolean();
            default -> true;
          };
      if (!ok) {
        errors.add(path + ": must be " + type + ", is " + v.getNodeType());
        return;
      }
    }
    if (s.has("enum")) {
      boolean found = false;
      for (JsonNode e : s.get("enum")) {
        found |= e.equals(v);
      }
      if (!found) {
        errors.add(path + ": " + v + " is not one of " + s.get("enum"));
      }
    }
    if (s.has("minimum") && v.isNumber() && v.asDouble() < s.get("minimum").asDouble()) {
      errors.add(path + ": below minimum " + s.get("minimum"));
    }
    if (s.has("maximum") && v.isNumber() && v.asDouble() > s.get("maximum").asDouble()) {
      errors.add(path + ": above maximum " + s.get("maximum"));
    }
    if (s.has("pattern")
        && v.isTextual()
        && !Pattern.compile(s.get("pattern").asText()).matcher(v.asText()).find()) {
      errors.add(path + ": " + v + " does not match " + s.get("pattern"));
    }
    if (v.isObject()) {
      JsonNode props = s.get("properties");
      boolean open =
          s.path("x-kubernetes-preserve-unknown-fields").asBoolean(false)
              || s.has("additionalProperties");
      if (s.has("required")) {
        for (JsonNode r : s.get("required")) {
          if (!v.has(r.asText())) {
            errors.add(path + "." + r.asText() + ": required");
          }
        }
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
        var f = it.next();
        if (props != null && props.has(f.getKey())) {
          check(path + "." + f.getKey(), f.getValue(), props.get(f.getKey()), errors);
        } else if (!open) {
          errors.add(path + "." + f.getKey() + ": unknown field");
        }
      }
    }
    if (v.isArray() && s.has("items")) {
      for (int i = 0; i < v.size(); i++) {
        check(path + "[" + i + "]", v.get(i), s.get("items"), errors);
      }
    }
  }

  private static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    return v == null || !v.isTextual() ? null : v.asText();
  }
}
