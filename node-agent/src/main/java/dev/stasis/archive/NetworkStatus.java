package dev.stasis.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;

/**
 * {@code network.status} of a checkpoint archive: the engine's result of setting up the container's
 * networks, which {@code podman container restore --import} reads to give the container its old
 * addresses and MAC again (facts from Podman 5.8's libpod: a JSON object, network name to
 * netavark/CNI {@code StatusBlock} — {@code interfaces} by name with {@code subnets} and {@code
 * mac_address}, {@code dns_server_ips}, {@code dns_search_domains}; Podman writes its container
 * state's {@code networkStatus}; a missing or unreadable file only makes it restore without fixed
 * addresses).
 *
 * <p>Only the engine knows it, so it is given: either that map itself, or the engine's whole state
 * record of the container (Podman: the JSON of its row in db.sql's ContainerState table), whose
 * {@code networkStatus} is taken — absent there when the container has no network, which is an
 * empty map.
 */
public final class NetworkStatus {
  private static final ObjectMapper JSON = new ObjectMapper();

  private NetworkStatus() {}

  /**
   * Reads and checks {@code --network-status FILE}; returns what network.status holds.
   *
   * @throws IllegalArgumentException naming what is wrong
   */
  public static byte[] read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("--network-status " + file + " is not a file");
    }
    JsonNode n;
    try {
      n = JSON.readTree(Files.readAllBytes(file));
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "--network-status " + file + " is not JSON: " + firstLine(e.getMessage()));
    }
    return compose(n, "--network-status " + file);
  }

  /** The map of {@code n} (a status map or a state record holding one), as network.status. */
  static byte[] compose(JsonNode n, String what) {
    if (n == null || !n.isObject()) {
      throw new IllegalArgumentException(
          what + " is not a JSON object (a network status map or the engine's state record)");
    }
    JsonNode map = n;
    if (n.has("networkStatus")) {
      map = n.get("networkStatus");
      if (map.isNull()) {
        map = JSON.createObjectNode();
      }
    } else if (looksLikeState(n)) {
      map = JSON.createObjectNode(); // a state record without networks
    }
    if (!map.isObject()) {
      throw new IllegalArgumentException(what + ": networkStatus is not a JSON object");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isObject()) {
        throw new IllegalArgumentException(
            what
                + ": the status of network \""
                + e.getKey()
                + "\" is not a JSON object (netavark's StatusBlock)");
      }
      JsonNode ifs = e.getValue().get("interfaces");
      if (ifs != null && !ifs.isObject() && !ifs.isNull()) {
        throw new IllegalArgumentException(
            what + ": interfaces of network \"" + e.getKey() + "\" is not a JSON object");
      }
    }
    try {
      return JSON.writeValueAsBytes((ObjectNode) map);
    } catch (IOException e) {
      throw new IllegalArgumentException(what + ": " + e.getMessage());
    }
  }

  /** Podman's ContainerState keys that a network status map would never have at its top. */
  private static boolean looksLikeState(JsonNode n) {
    return n.has("state") && n.has("startedTime");
  }

  private static String firstLine(String s) {
    return s == null ? "" : s.lines().findFirst().orElse("");
  }
}
