package dev.stasis.parasite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The Java encoders/decoders agree with parasite-abi.h as the C compiler lays it out. */
class ParasiteAbiTest {

  @Test
  void javaLayoutMatchesTheCompiledHeader() throws Exception {
    Path props = Path.of("target/parasite/parasite-abi.properties");
    assertTrue(Files.exists(props), "the build (make GEN=target/parasite) writes " + props);
    Properties p = new Properties();
    try (InputStream in = Files.newInputStream(props)) {
      p.load(in);
    }
    Map<String, Long> c = new TreeMap<>();
    for (String k : p.stringPropertyNames()) {
      c.put(k, Long.parseLong(p.getProperty(k)));
    }
    assertEquals(c, new TreeMap<>(ParasiteAbi.layout()));
  }

  @Test
  void theBlobIsOnTheClasspathAndStartsWithItsEntryCallAndParkLoop() throws Exception {
    try (InputStream in = ParasiteAbi.class.getResourceAsStream("parasite.bin")) {
      byte[] blob = in.readAllBytes();
      assertTrue(blob.length > 64 && blob.length < 64 * 1024, "size " + blob.length);
      assertEquals((byte) 0xe8, blob[0], "call parasite_main");
      // then the park loop, never a trap: 1: mov $34 (pause), %eax; syscall; jmp 1b
      byte[] park = {(byte) 0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, (byte) 0xeb, (byte) 0xf7};
      assertArrayEquals(park, java.util.Arrays.copyOfRange(blob, 5, 14), "pause() park loop");
    }
  }

  @Test
  void aFailedDumpProcessStepNamesItsPartAndCall() {
    assertEquals("brk", ParasiteCommand.DUMP_PROCESS.stepName(101));
    assertEquals("rt_sigaction(5)", ParasiteCommand.DUMP_PROCESS.stepName(205));
    assertEquals("getitimer(ITIMER_PROF)", ParasiteCommand.DUMP_PROCESS.stepName(303));
    assertEquals("getgroups (leader)", ParasiteCommand.DUMP_PROCESS.stepName(412));
    assertEquals("getgroups", ParasiteCommand.DUMP_THREAD.stepName(12));
  }
}
