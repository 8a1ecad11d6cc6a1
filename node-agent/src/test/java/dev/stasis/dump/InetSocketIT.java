package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * TCP and UDP sockets end to end with the inet workload (TCP listeners on 127.0.0.1 and ::1, a
 * bound UDP socket on 127.0.0.1 and a connected one on ::1, on ephemeral ports it picks): dumped by
 * the packaged agent, both crits decode the four inet entries with the ports the workload reported,
 * killed, restored by the judge, and the workload checks its ports, options, listeners (accepting)
 * and UDP sockets (receiving) itself.
 */
class InetSocketIT {

  @Test
  void listenersAndUdpSocketsSurviveDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("inet")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      List<Integer> ports =
          Arrays.stream(Files.readString(w.state.resolve("ports")).strip().split(" "))
              .map(Integer::parseInt)
              .toList();
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      w.awaitGone();

      for (Crit.Version v : Crit.Version.values()) {
        List<Integer> srcPorts = new ArrayList<>();
        int listeners = 0;
        for (JsonNode f : Crit.entries(Crit.decodeDir(v, images).get("files.img"))) {
          if (f.get("type").asText().equals("INETSK")) {
            JsonNode isk = f.get("isk");
            assertEquals(f.get("id").asInt(), isk.get("id").asInt(), v + " isk id");
            srcPorts.add(isk.get("src_port").asInt());
            if (isk.get("state").asText().matches("LISTEN|10")) {
              listeners++;
            }
          }
        }
        assertEquals(
            ports.stream().sorted().toList(),
            srcPorts.stream().sorted().toList(),
            v + " the four sockets with their ports");
        assertEquals(2, listeners, v + " two TCP listeners");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "inet sockets after restore: " + after);
    }
  }
}
