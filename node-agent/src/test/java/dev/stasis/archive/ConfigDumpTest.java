package dev.stasis.archive;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ConfigDump}: the engine's record kept verbatim, checkpointctl's keys added, bad input. */
class ConfigDumpTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Instant CREATED = Instant.parse("2026-12-01T10:00:00Z");
  private static final Instant CHECKPOINTED = Instant.parse("2026-12-01T10:05:00.5Z");

  @TempDir Path tmp;

  @Test
  void withoutAnEngineRecordOnlyCheckpointctlsKeys() {
    ObjectNode c = ConfigDump.compose(null, "abc", "runc", CREATED, CHECKPOINTED);
    assertEquals(
        "{\"id\":\"abc\",\"name\":\"abc\",\"runtime\":\"runc\","
            + "\"createdTime\":\"2026-12-01T10:00:00Z\","
            + "\"checkpointedTime\":\"2026-12-01T10:05:00.500Z\","
            + "\"restoredTime\":\"0001-01-01T00:00:00Z\",\"restored\":false,"
            + "\"checkpointedBy\":\"stasis\"}",
        c.toString());
  }

  @Test
  void theEngineRecordIsKeptAndOnlyWhatItLacksIsAdded() throws Exception {
    ObjectNode engine =
        (ObjectNode)
            JSON.readTree(
                "{\"spec\":{\"ociVersion\":\"1.2.0\"},\"id\":\"abc\",\"name\":\"web\","
                    + "\"rootfsImageID\":\"4949\",\"ShmDir\":\"/x/shm\",\"shmSize\":65536000,"
                    + "\"createdTime\":\"2026-11-30T08:00:00.123456789Z\",\"runtime\":\"crun\"}");
    ObjectNode c = ConfigDump.compose(engine, "abc", "runc", CREATED, CHECKPOINTED);
    assertEquals("web", c.get("name").asText(), "the engine's name, not the id");
    assertEquals("crun", c.get("runtime").asText(), "the engine's runtime");
    assertEquals("2026-11-30T08:00:00.123456789Z", c.get("createdTime").asText());
    assertEquals("/x/shm", c.get("ShmDir").asText());
    assertEquals(65536000, c.get("shmSize").asLong());
    assertEquals("1.2.0", c.get("spec").get("ociVersion").asText());
    assertEquals("2026-12-01T10:05:00.500Z", c.get("checkpointedTime").asText());
    assertFalse(c.get("restored").asBoolean());
    assertFalse(engine.has("checkpointedTime"), "the caller's record is not changed");
  }

  @Test
  void theIdComesFromTheOptionTheRecordOrTheBundle() throws Exception {
    ObjectNode engine = (ObjectNode) JSON.readTree("{\"id\":\"abc\"}");
    assertEquals("abc", ConfigDump.containerId(null, engine, "bundle"));
    assertEquals("abc", ConfigDump.containerId("abc", engine, "bundle"));
    assertEquals("xyz", ConfigDump.containerId("xyz", null, "bundle"));
    assertEquals("bundle", ConfigDump.containerId(null, null, "bundle"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> ConfigDump.containerId("xyz", engine, "b"));
    assertEquals("--engine-config describes container abc, not --container-id xyz", e.getMessage());
  }

  @Test
  void badRecordsAreRefusedInOneLine() throws Exception {
    Path missing = tmp.resolve("missing.json");
    assertEquals(
        "--engine-config " + missing + " is not a file",
        assertThrows(IllegalArgumentException.class, () -> ConfigDump.readEngineConfig(missing))
            .getMessage());
    Path notJson = Files.writeString(tmp.resolve("bad.json"), "{\"id\": \n oops");
    String m =
        assertThrows(IllegalArgumentException.class, () -> ConfigDump.readEngineConfig(notJson))
            .getMessage();
    assertTrue(m.startsWith("--engine-config " + notJson + " is not JSON ("), m);
    assertFalse(m.contains("\n"), m);
    Path array = Files.writeString(tmp.resolve("array.json"), "[1, 2]");
    assertEquals(
        "--engine-config " + array + " is not a JSON object (the engine's container record)",
        assertThrows(IllegalArgumentException.class, () -> ConfigDump.readEngineConfig(array))
            .getMessage());
    Path numericId = Files.writeString(tmp.resolve("id.json"), "{\"id\": 7}");
    assertEquals(
        "--engine-config " + numericId + ": its \"id\" is not a non-empty string",
        assertThrows(IllegalArgumentException.class, () -> ConfigDump.readEngineConfig(numericId))
            .getMessage());
    Path ok = Files.writeString(tmp.resolve("ok.json"), "{\"id\": \"abc\", \"name\": \"web\"}");
    assertEquals("web", ConfigDump.readEngineConfig(ok).get("name").asText());
  }
}
