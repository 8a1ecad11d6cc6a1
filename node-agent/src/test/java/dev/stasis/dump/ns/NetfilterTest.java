package dev.stasis.dump.ns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * {@link Netfilter#normalised}: what the replay check compares (listings of nft 1.0.6 {@code -j
 * list ruleset}).
 */
class NetfilterTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode listing(String meta, int handle, int packets, String verdict)
      throws Exception {
    return JSON.readTree(
        "{\"nftables\":[{\"metainfo\":{\"version\":\""
            + meta
            + "\",\"json_schema_version\":1}},"
            + "{\"table\":{\"family\":\"ip\",\"name\":\"filter\",\"handle\":"
            + handle
            + "}},{\"rule\":{\"family\":\"ip\",\"table\":\"filter\",\"chain\":\"INPUT\",\"handle\":"
            + (handle + 1)
            + ",\"expr\":[{\"match\":{\"op\":\"==\",\"left\":{\"payload\":{\"protocol\":\"tcp\","
            + "\"field\":\"dport\"}},\"right\":7071}},{\"counter\":{\"packets\":"
            + packets
            + ",\"bytes\":"
            + packets * 60
            + "}},{\""
            + verdict
            + "\":null}]}}]}");
  }

  @Test
  void handlesCountersAndTheHeaderDoNotCount() throws Exception {
    assertEquals(
        Netfilter.normalised(listing("1.0.6", 1, 0, "drop")),
        Netfilter.normalised(listing("1.1.3", 7, 12, "drop")));
  }

  @Test
  void aDifferentRuleDoes() throws Exception {
    assertNotEquals(
        Netfilter.normalised(listing("1.0.6", 1, 0, "drop")),
        Netfilter.normalised(listing("1.0.6", 1, 0, "accept")));
  }
}
