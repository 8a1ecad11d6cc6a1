package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import javax.crypto.SecretKey;
import org.junit.jupiter.api.Test;

class ChunkedAeadTest {
  private static final int CHUNK = 64;
  private final SecretKey key = EncryptionKey.newDataKey();

  private byte[] seal(byte[] plain, String name) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (ChunkedAead.EncryptingStream s = new ChunkedAead.EncryptingStream(bo, key, name, CHUNK)) {
      s.write(plain);
    }
    return bo.toByteArray();
  }

  private byte[] open(byte[] sealed, SecretKey k, String name) throws IOException {
    try (ChunkedAead.DecryptingStream s =
        new ChunkedAead.DecryptingStream(new ByteArrayInputStream(sealed), k, name)) {
      return s.readAllBytes();
    }
  }

  @Test
  void roundTripsEverySizeAroundChunkBoundaries() throws IOException {
    for (int n : new int[] {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7}) {
      byte[] p = SyntheticImages.bytes(n, n);
      byte[] c = seal(p, "checkpoint/x.img");
      // header + one tag per chunk; the final chunk is always short (possibly empty)
      assertEquals(
          ChunkedAead.HEADER + n + (n / CHUNK + 1) * ChunkedAead.TAG, c.length, "size " + n);
      assertArrayEquals(p, open(c, key, "checkpoint/x.img"), "size " + n);
    }
  }

  @Test
  void flippedBitFailsAuthentication() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 200), "checkpoint/a.img");
    c[ChunkedAead.HEADER + CHUNK + ChunkedAead.TAG + 10] ^= 1;
    VerificationException e =
        assertThrows(VerificationException.class, () -> open(c, key, "checkpoint/a.img"));
    assertTrue(e.getMessage().contains("chunk 1"), e.getMessage());
  }

  @Test
  void wrongKeyFails() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 100), "checkpoint/a.img");
    assertThrows(
        VerificationException.class, () -> open(c, EncryptionKey.newDataKey(), "checkpoint/a.img"));
  }

  @Test
  void truncationAtAChunkBoundaryIsDetected() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 2 * CHUNK + 10), "checkpoint/a.img");
    // drop the final chunk entirely: what is left ends on a full chunk
    byte[] cut = Arrays.copyOf(c, ChunkedAead.HEADER + 2 * (CHUNK + ChunkedAead.TAG));
    VerificationException e =
        assertThrows(VerificationException.class, () -> open(cut, key, "checkpoint/a.img"));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    // and a cut inside a chunk
    byte[] cut2 = Arrays.copyOf(c, c.length - 5);
    assertThrows(VerificationException.class, () -> open(cut2, key, "checkpoint/a.img"));
  }

  @Test
  void reorderedChunksAreDetected() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 3 * CHUNK), "checkpoint/a.img");
    int step = CHUNK + ChunkedAead.TAG;
    byte[] swapped = c.clone();
    System.arraycopy(c, ChunkedAead.HEADER, swapped, ChunkedAead.HEADER + step, step);
    System.arraycopy(c, ChunkedAead.HEADER + step, swapped, ChunkedAead.HEADER, step);
    assertThrows(VerificationException.class, () -> open(swapped, key, "checkpoint/a.img"));
  }

  @Test
  void objectNameIsBound() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 100), "checkpoint/a.img");
    assertThrows(VerificationException.class, () -> open(c, key, "checkpoint/b.img"));
  }

  @Test
  void appendedDataIsDetected() throws IOException {
    byte[] c = seal(SyntheticImages.bytes(1, 100), "checkpoint/a.img");
    byte[] longer = Arrays.copyOf(c, c.length + 1);
    assertThrows(VerificationException.class, () -> open(longer, key, "checkpoint/a.img"));
  }

  @Test
  void wrappedDataKeyNeedsTheRightUserKey() throws Exception {
    EncryptionKey kek = EncryptionKey.parse("11".repeat(32), "test");
    EncryptionKey other = EncryptionKey.parse("22".repeat(32), "test");
    String wrapped = kek.wrap(key);
    assertArrayEquals(key.getEncoded(), kek.unwrap(wrapped, kek.id(), "cp").getEncoded());
    VerificationException e =
        assertThrows(VerificationException.class, () -> other.unwrap(wrapped, kek.id(), "cp"));
    assertTrue(e.getMessage().startsWith("wrong encryption key for cp"), e.getMessage());
    // same id claimed but the wrong key material: the GCM tag of the wrapped key fails
    assertThrows(VerificationException.class, () -> other.unwrap(wrapped, null, "cp"));
  }
}
