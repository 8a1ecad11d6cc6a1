package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.Message;
import dev.stasis.images.ImageReader;
import dev.stasis.images.VmaFlags;
import dev.stasis.images.proto.IpcShmEntry;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * SysV IPC (issue 11's shared memory, issue 12's IPC namespace content): the sysvipc workload, in
 * an IPC namespace of its own with a child, holds four segments (attached read-write and shared
 * with the child, attached read-only, attached by nobody, marked for destruction), a semaphore set
 * and a queue with three messages. Dumped by the packaged agent, decoded by both crits, restored by
 * upstream CRIU, which recreates the namespace's objects under their ids, fills the segments from
 * pagemap-shmem-&lt;shmid&gt; and attaches the processes again: the workload then finds every byte,
 * value and message and its child still sharing segment A.
 */
class SysvIpcIT {
  @Test
  void segmentsSemaphoresAndMessagesOfAnIpcNamespaceComeBack() throws Exception {
    try (Workloads.Running w = Workloads.start("sysvipc")) {
      Path images = w.dumpHealthyAndKill();
      String ipc = only(images, "ipcns-shm-[0-9]+\\.img").replaceAll("[^0-9]", "");
      // our reader: the four segments, content in the pagemaps (CRIU 4.x's form)
      List<Message> shm = ImageReader.readFile(images.resolve("ipcns-shm-" + ipc + ".img"));
      assertEquals(4, shm.size(), shm.toString());
      for (Message m : shm) {
        IpcShmEntry e = (IpcShmEntry) m;
        assertTrue(e.getInPagemaps(), e.toString());
        assertTrue(
            Files.exists(images.resolve("pagemap-shmem-" + e.getDesc().getId() + ".img")),
            "content of segment " + e.getDesc().getId());
      }
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> set = Crit.decodeDir(v, images);
        // crit's ipcns-shm reader expects in-image content after each entry (CRIU's old form), so
        // it shows the first entry only; that one must be right
        JsonNode seg = Crit.entries(set.get("ipcns-shm-" + ipc + ".img")).get(0);
        assertTrue(seg.path("in_pagemaps").asBoolean(), v + ": " + seg);
        JsonNode sem = Crit.entries(set.get("ipcns-sem-" + ipc + ".img"));
        assertEquals(1, sem.size(), v + ": " + sem);
        assertEquals(3, sem.get(0).path("nsems").asInt(), v + ": " + sem);
        assertEquals("[5,0,42]", sem.get(0).path("extra").toString(), v + ": " + sem);
        JsonNode msg = Crit.entries(set.get("ipcns-msg-" + ipc + ".img"));
        assertEquals(1, msg.size(), v + ": " + msg);
        assertEquals(3, msg.get(0).path("qnum").asInt(), v + ": " + msg);
        JsonNode texts = msg.get(0).path("extra");
        assertEquals(6, texts.size(), v + ": " + msg);
        assertEquals(7, texts.get(2).path("mtype").asInt(), v + ": " + msg);
        assertEquals(
            "seventh type\0",
            new String(Base64.getMimeDecoder().decode(texts.get(3).asText())),
            v + ": " + msg);
        int sysv = 0;
        for (JsonNode vma : Crit.entries(set.get("mm-" + w.pid + ".img")).get(0).path("vmas")) {
          if ((vma.path("status").asInt() & VmaFlags.AREA_SYSVIPC) != 0) {
            sysv++;
          }
        }
        assertEquals(3, sysv, v + ": the parent's attachments A, B and D");
      }
      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  /**
   * A leave-running dump reads the objects without changing them: the queue still holds its three
   * messages, the semaphores their values, and the workload goes on.
   */
  @Test
  void leaveRunningLeavesTheObjectsAsTheyWere() throws Exception {
    try (Workloads.Running w = Workloads.start("sysvipc")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), before);
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running");
      assertEquals(0, r.exit(), r.stderr());
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
      assertTrue(Files.exists(images.resolve(only(images, "ipcns-msg-[0-9]+\\.img"))));
    }
  }

  /**
   * A process attached to a segment of the host's IPC namespace is refused before the freeze in one
   * line: CRIU recreates segments only with an IPC namespace of the tree. It goes on untouched.
   */
  @Test
  void aSegmentOfTheHostsNamespaceIsRefusedBeforeTheFreeze() throws Exception {
    try (Workloads.Running w = Workloads.start("sysvipc", "host")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit());
      String err = r.stderr().strip();
      assertTrue(err.contains("host's IPC namespace"), err);
      assertTrue(err.contains("PID " + w.pid), err);
      assertEquals(1, err.lines().count(), err);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  private static String only(Path dir, String regex) throws Exception {
    List<String> names = new ArrayList<>();
    try (var files = Files.list(dir)) {
      files.map(f -> f.getFileName().toString()).filter(n -> n.matches(regex)).forEach(names::add);
    }
    assertEquals(1, names.size(), regex + " in " + names);
    return names.get(0);
  }
}
