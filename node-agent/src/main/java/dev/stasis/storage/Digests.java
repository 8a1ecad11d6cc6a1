package dev.stasis.storage;

import java.io.FilterInputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 and byte counts of what passes through a stream, on the way up and on the way down. */
final class Digests {
  private Digests() {}

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String hex(byte[] d) {
    return HexFormat.of().formatHex(d);
  }

  static final class Out extends FilterOutputStream {
    private final MessageDigest md = sha256();
    private long count;
    private String hex;

    Out(OutputStream out) {
      super(out);
    }

    @Override
    public void write(int b) throws IOException {
      out.write(b);
      md.update((byte) b);
      count++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      md.update(b, off, len);
      count += len;
    }

    long count() {
      return count;
    }

    /** The digest; valid once everything was written. */
    String sha256Hex() {
      if (hex == null) {
        hex = hex(md.digest());
      }
      return hex;
    }
  }

  static final class In extends FilterInputStream {
    private final MessageDigest md = sha256();
    private long count;
    private String hex;

    In(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      int b = in.read();
      if (b >= 0) {
        md.update((byte) b);
        count++;
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = in.read(b, off, len);
      if (n > 0) {
        md.update(b, off, n);
        count += n;
      }
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      throw new IOException("skip is not supported on a verified stream");
    }

    @Override
    public boolean markSupported() {
      return false;
    }

    long count() {
      return count;
    }

    String sha256Hex() {
      if (hex == null) {
        hex = hex(md.digest());
      }
      return hex;
    }
  }
}
