package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.minio.Http;
import java.nio.charset.StandardCharsets;
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
}
