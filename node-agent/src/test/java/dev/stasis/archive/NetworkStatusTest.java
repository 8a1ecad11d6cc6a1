package dev.stasis.archive;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link NetworkStatus} (network.status from a status map or Podman's state record) and {@link
 * CheckpointArchive#bindsDevShm} (when devshm-checkpoint.tar is written).
 */
class NetworkStatusTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  // netavark's StatusBlock as Podman 5.8 keeps it in its ContainerState record
  private static final String PODMAN_NET =
      "{\"podman\":{\"interfaces\":{\"eth0\":{\"subnets\":[{\"ipnet\":\"10.88.0.7/16\","
          + "\"gateway\":\"10.88.0.1\"}],\"mac_address\":\"0a:58:0a:58:00:07\"}},"
          + "\"dns_server_ips\":[\"10.88.0.1\"]}}";

  @TempDir Path tmp;

  private String status(String json) throws Exception {
    Path f = Files.writeString(tmp.resolve("in.json"), json);
    return new String(NetworkStatus.read(f), StandardCharsets.UTF_8);
  }

  @Test
  void aStatusMapIsWrittenAsItIs() throws Exception {
    assertEquals(JSON.readTree(PODMAN_NET), JSON.readTree(status(PODMAN_NET)));
  }

  @Test
  void aStateRecordGivesItsNetworkStatus() throws Exception {
    String state =
        "{\"state\":3,\"startedTime\":\"2026-12-04T10:00:00Z\",\"pid\":42,\"networkStatus\":"
            + PODMAN_NET
            + "}";
    assertEquals(JSON.readTree(PODMAN_NET), JSON.readTree(status(state)));
  }

  @Test
  void aStateRecordWithoutNetworksGivesAnEmptyMap() throws Exception {
    assertEquals("{}", status("{\"state\":3,\"startedTime\":\"2026-12-04T10:00:00Z\"}"));
  }

  @Test
  void badInputIsRefusedInOneLine() throws Exception {
    for (String[] c :
        new String[][] {
          {"[1,2]", "is not a JSON object"},
          {"{\"podman\":7}", "the status of network \"podman\" is not a JSON object"},
          {"{\"podman\":{\"interfaces\":[1]}}", "interfaces of network \"podman\""},
          {"{\"state\":1,\"startedTime\":\"x\",\"networkStatus\":[]}", "networkStatus is not"},
          {"{not json", "is not JSON"}
        }) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> status(c[0]), c[0]);
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
      assertTrue(e.getMessage().startsWith("--network-status "), e.getMessage());
      assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }
    IllegalArgumentException missing =
        assertThrows(
            IllegalArgumentException.class, () -> NetworkStatus.read(tmp.resolve("nope.json")));
    assertTrue(missing.getMessage().contains("is not a file"), missing.getMessage());
  }

  @Test
  void devShmIsArchivedWhenTheSpecBindsIt() throws Exception {
    // Podman's spec: /dev/shm a bind of its shm directory
    assertTrue(
        CheckpointArchive.bindsDevShm(
            JSON.readTree(
                "{\"mounts\":[{\"destination\":\"/dev/shm\",\"type\":\"bind\","
                    + "\"source\":\"/var/lib/containers/storage/x/userdata/shm\","
                    + "\"options\":[\"bind\",\"private\",\"nosuid\"]}]}")));
    // type omitted, bind in the options (older specs)
    assertTrue(
        CheckpointArchive.bindsDevShm(
            JSON.readTree(
                "{\"mounts\":[{\"destination\":\"/dev/shm/\",\"source\":\"/s\","
                    + "\"options\":[\"rbind\"]}]}")));
    // runc's default spec: a tmpfs of the container's own, carried in the image set
    assertFalse(
        CheckpointArchive.bindsDevShm(
            JSON.readTree(
                "{\"mounts\":[{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\","
                    + "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\"]}]}")));
    assertFalse(CheckpointArchive.bindsDevShm(JSON.readTree("{\"ociVersion\":\"1.0.2\"}")));
  }

  @Test
  void theNetworkNamespaceIsTheEnginesWhenTheSpecNamesItByPath() throws Exception {
    // Podman with a network: netavark's namespace, joined by path
    assertTrue(
        CheckpointArchive.namesNetns(
            JSON.readTree(
                "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\","
                    + "\"path\":\"/run/netns/netns-1\"}]}}")));
    // runc's default spec and Podman without a network: a namespace runc makes itself
    assertFalse(
        CheckpointArchive.namesNetns(
            JSON.readTree("{\"linux\":{\"namespaces\":[{\"type\":\"network\"}]}}")));
    assertFalse(
        CheckpointArchive.namesNetns(
            JSON.readTree("{\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"\"}]}}")));
    assertFalse(CheckpointArchive.namesNetns(JSON.readTree("{\"ociVersion\":\"1.0.2\"}")));
  }
}
