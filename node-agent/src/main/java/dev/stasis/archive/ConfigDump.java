package dev.stasis.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;

/**
 * The archive's {@code config.dump}. Two readers with different needs:
 *
 * <ul>
 *   <li>checkpointctl reads a few keys: {@code id}, {@code name}, {@code runtime}, {@code
 *       rootfsImageName}, {@code createdTime}, {@code checkpointedTime}, {@code restoredTime},
 *       {@code restored};
 *   <li>a container engine re-creates the container from it. Podman's {@code container restore
 *       --import} decodes it as its own whole record of the container (its {@code ContainerConfig}:
 *       image id and name, shm directory and size, namespaces, log and cgroup settings...), which
 *       only the engine has. Its database keeps exactly that JSON (Podman's {@code db.sql}, table
 *       {@code ContainerConfig}, column {@code JSON}).
 * </ul>
 *
 * So when the engine's record is given it is the base, verbatim, and only the keys it lacks are
 * added (an engine ignores keys it does not know); without it the file holds checkpointctl's keys.
 * A record that names another container than {@code --container-id} is refused: restoring it would
 * re-create the wrong container.
 */
public final class ConfigDump {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ConfigDump() {}

  /**
   * Reads and checks the engine's record ({@code --engine-config FILE}).
   *
   * @throws IllegalArgumentException naming what is wrong
   */
  public static ObjectNode readEngineConfig(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("--engine-config " + file + " is not a file");
    }
    JsonNode n;
    try {
      n = JSON.readTree(Files.readAllBytes(file));
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "--engine-config " + file + " is not JSON (" + firstLine(e.getMessage()) + ")");
    }
    if (n == null || !n.isObject()) {
      throw new IllegalArgumentException(
          "--engine-config " + file + " is not a JSON object (the engine's container record)");
    }
    JsonNode id = n.get("id");
    if (id != null && (!id.isTextual() || id.asText().isEmpty())) {
      throw new IllegalArgumentException(
          "--engine-config " + file + ": its \"id\" is not a non-empty string");
    }
    return (ObjectNode) n;
  }

  /**
   * The container's id: {@code --container-id} if given (and then the engine's record, if any, must
   * carry the same), else the record's, else {@code fallback} (the bundle's name).
   *
   * @throws IllegalArgumentException if the two disagree
   */
  public static String containerId(String option, ObjectNode engine, String fallback) {
    String recorded = engine != null && engine.hasNonNull("id") ? engine.get("id").asText() : null;
    if (option != null && recorded != null && !option.equals(recorded)) {
      throw new IllegalArgumentException(
          "--engine-config describes container " + recorded + ", not --container-id " + option);
    }
    return option != null ? option : recorded != null ? recorded : fallback;
  }

  /**
   * The config.dump object: the engine's record (a copy) or an empty one, with {@code id}, {@code
   * name}, {@code runtime} and {@code createdTime} added where it lacks them, and the checkpoint's
   * own keys set.
   */
  public static ObjectNode compose(
      ObjectNode engine, String id, String runtime, Instant created, Instant checkpointed) {
    ObjectNode c = engine == null ? JSON.createObjectNode() : engine.deepCopy();
    putIfAbsent(c, "id", id);
    putIfAbsent(c, "name", id);
    putIfAbsent(c, "runtime", runtime);
    putIfAbsent(c, "createdTime", created.toString());
    c.put("checkpointedTime", checkpointed.toString());
    c.put("restoredTime", "0001-01-01T00:00:00Z");
    c.put("restored", false);
    c.put("checkpointedBy", "stasis");
    return c;
  }

  private static void putIfAbsent(ObjectNode c, String key, String value) {
    if (!c.hasNonNull(key)) {
      c.put(key, value);
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "unreadable";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
