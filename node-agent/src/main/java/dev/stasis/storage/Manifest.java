package dev.stasis.storage;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.SecretKeySpec;

/**
 * {@code manifest.json}: the last object of a checkpoint, written only after every other object is
 * stored, and so the mark of a complete checkpoint. Schema in docs/storage.md.
 *
 * @param id the checkpoint's identity: 128 random bits (hex) drawn when the dump started
 * @param uri the URI the checkpoint was written to; a fetch from any other URI refuses it
 * @param mac with encryption, HMAC-SHA256 of this manifest serialized without the mac, keyed from
 *     the data key: a manifest cannot be edited (sizes, checksums, names, id, uri) without the
 *     user's key
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(
    String format,
    int formatVersion,
    String id,
    String uri,
    String name,
    String createdAt,
    String completedAt,
    Map<String, String> source,
    Map<String, Long> timings,
    Encryption encryption,
    List<Entry> objects,
    long totalSize,
    long storedSize,
    String mac) {

  public static final String FORMAT = "stasis-checkpoint";

  /** 2: the checkpoint's id and URI are recorded, MAC'd, and the id is in every chunk's AAD. */
  public static final int VERSION = 2;

  public static final String FILE = "manifest.json";

  /**
   * {@code checkpoint/parent.manifest.json}: a manifest of the same format listing only the parent
   * image set's objects, written once that set is stored (before a held checkpoint reports
   * ParentStored), so a target can fetch and verify the parent before {@link #FILE} exists. Not an
   * image name; listed, counted and deleted as one of the checkpoint's objects.
   */
  public static final String PARENT_FILE = "parent.manifest.json";

  /** Images live under checkpoint/ as in the Kubernetes checkpoint archive (KEP-2008). */
  public static final String IMAGES = "checkpoint/";

  /** Longest manifest accepted on fetch: a hostile one cannot exhaust memory. */
  static final int MAX_BYTES = 16 << 20;

  private static final Pattern IMAGE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,199}");
  private static final Pattern SHA = Pattern.compile("[0-9a-f]{64}");
  static final Pattern ID = Pattern.compile("[0-9a-f]{32}");

  /** A fresh checkpoint id: 128 bits from the system's secure random source, as hex. */
  static String newId() {
    byte[] b = new byte[16];
    new java.security.SecureRandom().nextBytes(b);
    return Digests.hex(b);
  }

  /**
   * The name an object's chunks are authenticated under: the checkpoint id and the object's name,
   * so a chunk moved to another object, or an object to another checkpoint, fails to decrypt.
   */
  static String aeadName(String id, String objectName) {
    return id + "/" + objectName;
  }

  static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  /**
   * One stored object. {@code size}/{@code sha256} are of the image bytes as the dump wrote them
   * (what a restore reads); {@code storedSize}/{@code storedSha256} are of the object as stored,
   * after compression and encryption.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Entry(
      String name,
      String key,
      long size,
      String sha256,
      long storedSize,
      String storedSha256,
      String compression,
      boolean encrypted) {}

  public record Encryption(String algorithm, int chunkSize, String keyId, String wrappedKey) {}

  /** True for a file name CRIU (or we) would give an image: no separators, no leading dot. */
  static boolean isImageName(String name) {
    // a file of the parent image set (an incremental dump's) is "parent/FILE", one level only
    String plain =
        name.startsWith(dev.stasis.images.ImageSink.PARENT)
            ? name.substring(dev.stasis.images.ImageSink.PARENT.length())
            : name;
    // never "manifest.json": a key ending in it is always a manifest, never an image, so a
    // checkpoint nested under another one's checkpoint/ directory stays unambiguous
    return IMAGE_NAME.matcher(plain).matches()
        && !plain.contains("..")
        && !plain.equals(FILE)
        && !plain.equals(PARENT_FILE);
  }

  /** The stored key of an image below the checkpoint root, with suffixes for its encodings. */
  static String keyFor(String imageName, String compression, boolean encrypted) {
    return IMAGES
        + imageName
        + ("zstd".equals(compression) ? ".zst" : "")
        + (encrypted ? ".aes" : "");
  }

  byte[] toJson() throws IOException {
    return JSON.writeValueAsBytes(this);
  }

  static Manifest parse(byte[] json, String where) throws VerificationException {
    Manifest m;
    try {
      m = JSON.readValue(json, Manifest.class);
    } catch (IOException e) {
      throw new VerificationException(
          "manifest of " + where + " is not valid JSON: " + firstLine(e), e);
    }
    m.validate(where);
    return m;
  }

  private static String firstLine(Exception e) {
    String s = String.valueOf(e.getMessage());
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** Rejects anything a fetch must not act on: traversal, absolute paths, duplicates, bad sums. */
  void validate(String where) throws VerificationException {
    if (!FORMAT.equals(format)) {
      throw new VerificationException(
          "manifest of " + where + " is not a stasis checkpoint manifest");
    }
    if (formatVersion != VERSION) {
      throw new VerificationException(
          "manifest of "
              + where
              + " has format version "
              + formatVersion
              + ", this stasis reads "
              + VERSION);
    }
    if (id == null || !ID.matcher(id).matches()) {
      throw new VerificationException("manifest of " + where + " has no valid checkpoint id");
    }
    if (uri == null || uri.isEmpty()) {
      throw new VerificationException("manifest of " + where + " does not record its URI");
    }
    if (objects == null || objects.isEmpty()) {
      throw new VerificationException("manifest of " + where + " lists no objects");
    }
    Set<String> seen = new HashSet<>();
    for (Entry e : objects) {
      String n = e.name();
      if (n == null || !n.startsWith(IMAGES) || !isImageName(n.substring(IMAGES.length()))) {
        throw new VerificationException(
            "manifest of "
                + where
                + " names a hostile or invalid object '"
                + n
                + "' (only checkpoint/<file> and checkpoint/parent/<file>, <file> without '/', '..'"
                + " or a leading dot, are allowed)");
      }
      if (!seen.add(n)) {
        throw new VerificationException("manifest of " + where + " lists object '" + n + "' twice");
      }
      String c = e.compression() == null ? "none" : e.compression();
      if (!c.equals("none") && !c.equals("zstd")) {
        throw new VerificationException(
            "manifest of " + where + ": unknown compression '" + c + "' of " + n);
      }
      if (!keyFor(n.substring(IMAGES.length()), c, e.encrypted()).equals(e.key())) {
        throw new VerificationException(
            "manifest of " + where + " maps '" + n + "' to unexpected key '" + e.key() + "'");
      }
      if (e.encrypted() && encryption == null) {
        throw new VerificationException(
            "manifest of " + where + " has encrypted '" + n + "' but no key");
      }
      if (e.size() < 0
          || e.storedSize() < 0
          || e.sha256() == null
          || !SHA.matcher(e.sha256()).matches()
          || e.storedSha256() == null
          || !SHA.matcher(e.storedSha256()).matches()) {
        throw new VerificationException(
            "manifest of " + where + " has invalid size or sha256 for '" + n + "'");
      }
      if (c.equals("none")
          && !e.encrypted()
          && (e.size() != e.storedSize() || !e.sha256().equals(e.storedSha256()))) {
        throw new VerificationException(
            "manifest of "
                + where
                + " gives different stored and image sums for plain '"
                + n
                + "'");
      }
    }
  }

  Manifest withMac(String mac) {
    return new Manifest(
        format,
        formatVersion,
        id,
        uri,
        name,
        createdAt,
        completedAt,
        source,
        timings,
        encryption,
        objects,
        totalSize,
        storedSize,
        mac);
  }

  static String mac(Manifest m, SecretKey dataKey) throws IOException {
    try {
      Mac h = Mac.getInstance("HmacSHA256");
      h.init(new SecretKeySpec(dataKey.getEncoded(), "HmacSHA256"));
      SecretKeySpec macKey =
          new SecretKeySpec(
              h.doFinal("stasis manifest mac v1".getBytes(StandardCharsets.US_ASCII)),
              "HmacSHA256");
      Mac h2 = Mac.getInstance("HmacSHA256");
      h2.init(macKey);
      return Digests.hex(h2.doFinal(m.withMac(null).toJson()));
    } catch (java.security.GeneralSecurityException e) {
      throw new IOException("HMAC-SHA256 unavailable", e);
    }
  }
}
