package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Crit.Version;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Writes a complete synthetic image set of one two-threaded process with our {@link ImageWriter}
 * through a {@link DirectoryImageSink}, then decodes every file with upstream crit, bookworm's and
 * the judge's (4.2.1), and checks the decoded values. Proves the framing, magics and field encoding
 * are what CRIU's own tool reads, independently of {@link CriuDumpImagesIT}.
 */
class CritDecodeIT {
  private static final int PID = SyntheticImageSet.PID;
  private static final int TID = SyntheticImageSet.TID;
  private static final long CODE = SyntheticImageSet.CODE;
  private static final long ANON = SyntheticImageSet.ANON;
  private static final String PIPE_BYTES = SyntheticImageSet.PIPE_BYTES;

  @TempDir static Path dir;

  @BeforeAll
  static void writeImageSet() throws IOException {
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      SyntheticImageSet.write(sink);
      sink.commit();
    }
  }

  private static JsonNode only(Map<String, JsonNode> set, String file) {
    JsonNode e = Crit.entries(set.get(file));
    assertEquals(1, e.size(), file + " entries");
    return e.get(0);
  }

  @ParameterizedTest
  @EnumSource(Version.class)
  void critDecodesEveryFileWithTheValuesWeWrote(Version v) {
    Map<String, JsonNode> set = Crit.decodeDir(v, dir);
    assertEquals(
        List.of(
            "core-4242.img",
            "core-4243.img",
            "fdinfo-2.img",
            "files.img",
            "fs-4242.img",
            "ids-4242.img",
            "inventory.img",
            "mm-4242.img",
            "pagemap-4242.img",
            "pipes-data.img",
            "pstree.img",
            "seccomp.img",
            "stats-dump",
            "timens-0.img"),
        new ArrayList<>(set.keySet()));
    assertEquals("INVENTORY", set.get("inventory.img").get("magic").asText());
    assertEquals("CORE", set.get("core-4242.img").get("magic").asText());
    assertEquals("STATS", set.get("stats-dump").get("magic").asText());

    JsonNode inv = only(set, "inventory.img");
    assertEquals(2, inv.get("img_version").asInt());
    assertEquals(8, inv.get("root_ids").get("cgroup_ns_id").asInt());
    assertEquals("NO_LSM", inv.get("lsmtype").asText());

    JsonNode ps = only(set, "pstree.img");
    assertEquals(PID, ps.get("pid").asInt());
    assertEquals(TID, ps.get("threads").get(1).asInt());

    JsonNode core = only(set, "core-4242.img");
    assertEquals("X86_64", core.get("mtype").asText());
    JsonNode gp = core.get("thread_info").get("gpregs");
    assertEquals(CODE + 0x1234, gp.get("ip").asLong());
    assertEquals(0x1000 + 1, gp.get("r15").asLong());
    assertEquals(0x1000 + 27, gp.get("gs").asLong());
    assertEquals("NATIVE", gp.get("mode").asText());
    JsonNode fp = core.get("thread_info").get("fpregs");
    assertEquals(0x1f80, fp.get("mxcsr").asInt());
    assertEquals(64, fp.get("xmm_space").size());
    assertEquals(64, fp.get("xsave").get("ymmh_space").size());
    assertEquals(3, core.get("thread_info").get("tls").size());
    JsonNode tc = core.get("tc");
    assertEquals("stasis-target", tc.get("comm").asText());
    assertEquals(62, tc.get("sigactions").size());
    // signal 10 (SIGUSR1) is entry 8: SIGKILL (9) has none
    assertEquals(CODE + 0x500, tc.get("sigactions").get(8).get("sigaction").asLong());
    assertEquals(1024, tc.get("rlimits").get("rlimits").get(7).get("cur").asLong());
    assertEquals(3600, tc.get("timers").get("real").get("isec").asLong());
    assertEquals(-1L & 0xffffffffL, tc.get("loginuid").asLong());
    JsonNode th = core.get("thread_core");
    assertEquals(0x1ff, th.get("creds").get("cap_eff").get(1).asInt());
    assertEquals("filter", th.get("seccomp_mode").asText());
    assertEquals(0x53053053, th.get("rseq_entry").get("signature").asLong());
    assertEquals("worker", only(set, "core-4243.img").get("thread_core").get("comm").asText());
    assertTrue(only(set, "core-4243.img").get("tc") == null, "only the leader has tc");

    JsonNode mm = only(set, "mm-4242.img");
    assertEquals(2, mm.get("vmas").size());
    JsonNode anon = mm.get("vmas").get(1);
    assertEquals(ANON, anon.get("start").asLong());
    assertEquals(VmaFlags.AREA_REGULAR | VmaFlags.ANON_PRIVATE, anon.get("status").asInt());
    assertEquals(-1, anon.get("fd").asInt());

    JsonNode pm = Crit.entries(set.get("pagemap-4242.img"));
    assertEquals(1, pm.get(0).get("pages_id").asInt());
    assertEquals(ANON, pm.get(1).get("vaddr").asLong());
    assertEquals(2, pm.get(1).get("nr_pages").asInt());
    assertEquals(PagemapFlags.PRESENT | PagemapFlags.LAZY, pm.get(1).get("flags").asInt());

    JsonNode fds = Crit.entries(set.get("fdinfo-2.img"));
    assertEquals(6, fds.size());
    assertEquals("EVENTFD", fds.get(3).get("type").asText());
    JsonNode files = Crit.entries(set.get("files.img"));
    assertEquals("/etc/hostname", files.get(2).get("reg").get("name").asText());
    assertEquals(3, files.get(2).get("reg").get("pos").asInt());
    assertEquals(555, files.get(3).get("pipe").get("pipe_id").asInt());
    assertEquals(5, files.get(5).get("efd").get("counter").asInt());
    assertEquals(9, files.get(7).get("fifo").get("regf_id").asInt());
    assertEquals(0x40000000, files.get(8).get("nsf").get("ns_cflag").asInt());

    assertEquals(022, only(set, "fs-4242.img").get("umask").asInt());
    // crit renders bytes as MIME base64 (with a trailing newline)
    assertArrayEquals(
        new byte[] {6, 0, 0, 0, 0, 0, (byte) 0xff, 0x7f},
        Base64.getMimeDecoder()
            .decode(only(set, "seccomp.img").get("seccomp_filters").get(0).get("filter").asText()));
    assertEquals(200, only(set, "timens-0.img").get("boottime").get("tv_sec").asInt());
    JsonNode pd = only(set, "pipes-data.img");
    assertEquals(PIPE_BYTES.length(), pd.get("bytes").asInt());
    assertEquals(
        PIPE_BYTES,
        new String(
            Base64.getMimeDecoder().decode(pd.get("extra").asText()), StandardCharsets.US_ASCII));
    assertEquals(22, only(set, "stats-dump").get("dump").get("frozen_time").asInt());
  }

  @ParameterizedTest
  @EnumSource(Version.class)
  void critShowRendersFlagsAndExploresTheSet(Version v) throws IOException {
    JsonNode pm = Crit.entries(Crit.show(v, dir.resolve("pagemap-4242.img")));
    String flags = pm.get(1).get("flags").asText();
    assertTrue(flags.contains("PE_PRESENT") && flags.contains("PE_LAZY"), flags);
    JsonNode vma = Crit.entries(Crit.show(v, dir.resolve("mm-4242.img"))).get(0).get("vmas");
    assertTrue(vma.get(1).get("status").asText().contains("VMA_ANON_PRIVATE"), vma.toString());

    String ps = Crit.explore(v, dir, "ps");
    assertTrue(ps.contains(String.valueOf(PID)) && ps.contains("stasis-target"), ps);
    String fds = Crit.explore(v, dir, "fds");
    assertTrue(fds.contains("/etc/hostname") && fds.contains("pipe[555]"), fds);
    assertEquals(2 * ImageType.PAGE_SIZE, Files.size(dir.resolve("pages-1.img")));
  }
}
