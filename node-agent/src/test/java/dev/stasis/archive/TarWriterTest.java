package dev.stasis.archive;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TarWriterTest {
  @Test
  void paxRecordLengthCountsItself() {
    // "path=x" plus the space and newline is 8 bytes; with its one digit, 9
    assertEquals("9 path=x\n", TarWriter.record("path", "x"));
    String v = "y".repeat(94); // body 101 + 3 digits = 104
    assertEquals("104 path=" + v + "\n", TarWriter.record("path", v));
    String w = "z".repeat(90); // body 97 + 2 = 99: still two digits
    assertEquals("99 path=" + w + "\n", TarWriter.record("path", w));
    String x = "z".repeat(91); // body 98 + 2 = 100 needs three digits: 101
    assertEquals("101 path=" + x + "\n", TarWriter.record("path", x));
  }
}
