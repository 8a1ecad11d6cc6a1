package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * epoll, signalfd, timerfd and inotify end to end with the eventpoll workload (an epoll over two
 * pipes and an eventfd, a signalfd for SIGUSR1, four timerfds in different states, an inotify
 * watching a directory and a file): dumped by the packaged agent, both crits decode the entries
 * (targets with their data, the mask, clocks and times), the process is killed, the judge restores
 * it, and the workload checks epoll readiness, signal delivery, its timers and inotify events
 * itself.
 */
class EventPollIT {

  /** A number crit printed either as a JSON number or as a "0x..." string (hex fields). */
  private static long num(JsonNode n) {
    String t = n.asText();
    return t.startsWith("0x") ? Long.parseUnsignedLong(t.substring(2), 16) : Long.parseLong(t);
  }

  @Test
  void epollSignalfdTimerfdsAndInotifySurviveDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("eventpoll")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode epoll = null;
        JsonNode signalfd = null;
        JsonNode inotify = null;
        List<JsonNode> timers = new ArrayList<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          switch (f.get("type").asText()) {
            case "EVENTPOLL" -> epoll = f.get("epfd");
            case "SIGNALFD" -> signalfd = f.get("sgfd");
            case "TIMERFD" -> timers.add(f.get("tfd"));
            case "INOTIFY" -> inotify = f.get("ify");
            default -> {}
          }
        }
        assertNotNull(epoll, v + " epoll entry");
        List<Long> data = new ArrayList<>();
        for (JsonNode t : epoll.get("tfd")) {
          data.add(num(t.get("data")));
        }
        assertEquals(
            List.of(0x77L, 0xabcL, 0x1111222233334444L),
            data.stream().sorted().toList(),
            v + " epoll targets' data");
        assertNotNull(signalfd, v + " signalfd entry");
        assertEquals(1L << 9, num(signalfd.get("sigmask")), v + " signalfd mask is SIGUSR1");
        assertEquals(4, timers.size(), v + " four timerfds");
        long absolute = timers.stream().filter(t -> num(t.get("settime_flags")) == 1).count();
        assertEquals(1, absolute, v + " one TFD_TIMER_ABSTIME timer");
        long hourAway = timers.stream().filter(t -> num(t.get("vsec")) > 3000).count();
        assertEquals(2, hourAway, v + " two timers due in about an hour (relative times)");
        assertNotNull(inotify, v + " inotify entry");
        List<String> watched = new ArrayList<>();
        for (JsonNode wd : inotify.get("wd")) {
          watched.add(wd.get("wd").asInt() + " " + wd.get("f_handle").get("path").asText());
        }
        Path dir = w.state.resolve("watched");
        assertEquals(
            List.of("1 " + dir, "2 " + dir.resolve("file")),
            watched.stream().sorted().toList(),
            v + " inotify watches with their paths");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "eventpoll after restore: " + after);
      String again = w.check();
      assertTrue(again.startsWith("OK"), "eventpoll checked twice after restore: " + again);
    }
  }
}
