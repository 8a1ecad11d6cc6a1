package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.minio.Http;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import okhttp3.MediaType;
import okio.Buffer;
import okio.BufferedSink;
import okio.Okio;
import okio.Sink;
import okio.Timeout;
import org.junit.jupiter.api.Test;

class S3BodyHeadersTest {

  @Test
  void crc32cOfTheBodyIsSentAsMinioWouldSendIt() {
    // The CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720, appendix B.4).
    byte[] body = "123456789-and-what-follows-is-not-sent".getBytes(StandardCharsets.US_ASCII);
    Http.Headers h = S3Backend.bodyHeaders(body, 9);
    assertEquals("4waSgw==", h.getFirst("x-amz-checksum-crc32c"));
    assertEquals("crc32c", h.getFirst("X-Amz-Sdk-Checksum-Algorithm"));
    assertEquals("UNSIGNED-PAYLOAD", h.getFirst("X-Amz-Content-Sha256"));
  }

  /** Records what reaches the "socket": every byte, and the largest single write. */
  private static final class RecordingSink implements Sink {
    final Buffer received = new Buffer();
    long largestWrite;

    @Override
    public void write(Buffer source, long byteCount) {
      largestWrite = Math.max(largestWrite, byteCount);
      received.write(source, byteCount);
    }

    @Override
    public void flush() {}

    @Override
    public Timeout timeout() {
      return Timeout.NONE;
    }

    @Override
    public void close() {}
  }

  private static RecordingSink send(Http.RequestBody body) throws IOException {
    RecordingSink socket = new RecordingSink();
    try (BufferedSink sink = Okio.buffer(socket)) {
      body.writeTo(sink);
    }
    return socket;
  }

  @Test
  void aPartBodyIsStreamedToTheSocketNotCopiedWholeIntoOkHttpsBuffer() throws IOException {
    byte[] part = new byte[4 << 20];
    new Random(42).nextBytes(part);
    int length = part.length - 4096; // a part buffer is larger than what it holds at the end
    Http.RequestBody body =
        new Http.RequestBody(
            new S3Backend.ArrayBody(part, length), MediaType.get("application/octet-stream"), "");
    assertEquals(length, body.contentLength());

    // Sent twice, as minio does when it retries a part: each send is the same bytes, whole.
    for (int send = 0; send < 2; send++) {
      RecordingSink socket = send(body);
      assertEquals(length, socket.received.size());
      byte[] expected = java.util.Arrays.copyOf(part, length);
      assertArrayEquals(expected, socket.received.readByteArray());
      // Segment by segment: the buffer in front of the socket never held the part at once
      // (given the array itself, OkHttp copies all of it into segments before the first write).
      assertTrue(
          socket.largestWrite <= 64 * 1024,
          "largest write to the socket was " + socket.largestWrite + " bytes");
    }
  }
}
