package dev.stasis.storage;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Streaming AES-256-GCM in independently authenticated chunks (layout in docs/storage.md).
 *
 * <pre>
 * header : "STSAEAD1" (8) | chunk size u32 BE | nonce base (12)
 * chunk i: ciphertext of min(chunk size, rest) plaintext bytes | GCM tag (16)
 * nonce_i = nonce base XOR (i as u64 BE in the last 8 bytes)
 * AAD_i   = "stasis chunk v1" | u16 BE name length | object name (UTF-8) | u64 BE i | u8 final
 * </pre>
 *
 * Every chunk but the last carries exactly {@code chunk size} plaintext bytes; the last one carries
 * fewer (possibly zero) and is the only one with {@code final = 1}. So reordered chunks fail on the
 * index, a truncated object fails because no final chunk arrives, an appended chunk fails because
 * data follows the final one, and an object renamed or swapped fails on the name.
 */
final class ChunkedAead {
  static final int DEFAULT_CHUNK = 64 << 10;
  static final int TAG = 16;
  private static final byte[] MAGIC = "STSAEAD1".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] AAD_LABEL = "stasis chunk v1".getBytes(StandardCharsets.US_ASCII);
  private static final SecureRandom RANDOM = new SecureRandom();
  static final int HEADER = 8 + 4 + 12;

  private ChunkedAead() {}

  private static byte[] nonce(byte[] base, long index) {
    byte[] n = base.clone();
    for (int i = 0; i < 8; i++) {
      n[11 - i] ^= (byte) (index >>> (8 * i));
    }
    return n;
  }

  private static byte[] aad(byte[] name, long index, boolean last) {
    ByteBuffer b = ByteBuffer.allocate(AAD_LABEL.length + 2 + name.length + 8 + 1);
    b.put(AAD_LABEL)
        .putShort((short) name.length)
        .put(name)
        .putLong(index)
        .put((byte) (last ? 1 : 0));
    return b.array();
  }

  /** Encrypts everything written to it; {@link #close} writes the final chunk. */
  static final class EncryptingStream extends FilterOutputStream {
    private final SecretKey key;
    private final byte[] name;
    private final byte[] base = new byte[12];
    private final byte[] buf;
    private final Cipher cipher;
    private int len;
    private long index;
    private boolean closed;

    EncryptingStream(OutputStream out, SecretKey key, String objectName, int chunkSize)
        throws IOException {
      super(out);
      this.key = key;
      this.name = objectName.getBytes(StandardCharsets.UTF_8);
      this.buf = new byte[chunkSize];
      RANDOM.nextBytes(base);
      try {
        cipher = Cipher.getInstance("AES/GCM/NoPadding");
      } catch (GeneralSecurityException e) {
        throw new IOException("AES-GCM unavailable", e);
      }
      out.write(MAGIC);
      out.write(ByteBuffer.allocate(4).putInt(chunkSize).array());
      out.write(base);
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int n) throws IOException {
      while (n > 0) {
        if (len == buf.length) {
          seal(false);
        }
        int k = Math.min(n, buf.length - len);
        System.arraycopy(b, off, buf, len, k);
        len += k;
        off += k;
        n -= k;
      }
    }

    private void seal(boolean last) throws IOException {
      try {
        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, nonce(base, index)));
        cipher.updateAAD(aad(name, index, last));
        out.write(cipher.doFinal(buf, 0, len));
      } catch (GeneralSecurityException e) {
        throw new IOException("encryption failed: " + e.getMessage(), e);
      }
      index++;
      len = 0;
    }

    @Override
    public void flush() {
      // chunks are sealed only when full or at close: flushing must not emit a short chunk
    }

    @Override
    public void close() throws IOException {
      if (closed) {
        return;
      }
      closed = true;
      try {
        // a full buffer is sealed as non-final, then an empty final chunk follows
        if (len == buf.length) {
          seal(false);
        }
        seal(true);
      } finally {
        out.close();
      }
    }
  }

  /** Decrypts and authenticates; throws {@link VerificationException} on any mismatch. */
  static final class DecryptingStream extends InputStream {
    private final InputStream in;
    private final SecretKey key;
    private final String objectName;
    private final byte[] name;
    private final byte[] base = new byte[12];
    private final int chunkSize;
    private final Cipher cipher;
    private byte[] plain = new byte[0];
    private int pos;
    private long index;
    private boolean done;

    DecryptingStream(InputStream in, SecretKey key, String objectName) throws IOException {
      this.in = in;
      this.key = key;
      this.objectName = objectName;
      this.name = objectName.getBytes(StandardCharsets.UTF_8);
      byte[] h = in.readNBytes(HEADER);
      if (h.length < HEADER || !java.util.Arrays.equals(h, 0, 8, MAGIC, 0, 8)) {
        throw new VerificationException(
            "object " + objectName + " is not a stasis encrypted object (bad header)");
      }
      chunkSize = ByteBuffer.wrap(h, 8, 4).getInt();
      if (chunkSize < 1 || chunkSize > (64 << 20)) {
        throw new VerificationException(
            "object " + objectName + " has an invalid chunk size " + chunkSize);
      }
      System.arraycopy(h, 12, base, 0, 12);
      try {
        cipher = Cipher.getInstance("AES/GCM/NoPadding");
      } catch (GeneralSecurityException e) {
        throw new IOException("AES-GCM unavailable", e);
      }
    }

    private boolean fill() throws IOException {
      while (pos == plain.length) {
        if (done) {
          return false;
        }
        byte[] ct = in.readNBytes(chunkSize + TAG);
        boolean last = ct.length < chunkSize + TAG;
        if (ct.length < TAG) {
          throw new VerificationException(
              "object "
                  + objectName
                  + " is truncated: chunk "
                  + index
                  + " ends early (no final chunk)");
        }
        try {
          cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, nonce(base, index)));
          cipher.updateAAD(aad(name, index, last));
          plain = cipher.doFinal(ct);
        } catch (AEADBadTagException e) {
          throw new VerificationException(
              "object "
                  + objectName
                  + " fails authentication at chunk "
                  + index
                  + " (wrong key, corrupted, reordered or truncated data)",
              e);
        } catch (GeneralSecurityException e) {
          throw new IOException("decryption failed: " + e.getMessage(), e);
        }
        pos = 0;
        index++;
        if (last) {
          done = true;
          if (in.read() >= 0) {
            throw new VerificationException(
                "object " + objectName + " has data after its final chunk");
          }
        }
      }
      return true;
    }

    @Override
    public int read() throws IOException {
      if (!fill()) {
        return -1;
      }
      return plain[pos++] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int n) throws IOException {
      if (n == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int k = Math.min(n, plain.length - pos);
      System.arraycopy(plain, pos, b, off, k);
      pos += k;
      return k;
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }
}
