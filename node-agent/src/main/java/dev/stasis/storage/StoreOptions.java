package dev.stasis.storage;

/**
 * How a checkpoint is written. Compression and encryption are off by default.
 *
 * @param partSize bytes per multipart part (S3 needs at least 5 MiB except for the last part)
 * @param inFlightParts parts uploaded at once; the writer blocks when all are busy
 * @param compression "none" or "zstd"
 * @param zstdLevel zstd level when compressing
 * @param encryptionKey the user's key-encryption key, or null for no encryption (and, on fetch, the
 *     key to decrypt with)
 * @param s3 how to reach S3 for s3:// URIs (null: resolved from the environment when needed)
 * @param spoolDir where a dump that releases its process before the commit may first put its pages
 *     at local-disk speed, when there is room (null: always stream; see {@code CheckpointWriter})
 * @param spoolLimit bytes the spool directory may hold in all (0: only the file system's free space
 *     limits it). In a pod the spool is an emptyDir whose sizeLimit the kubelet enforces by
 *     evicting the pod, while the file system under it shows the whole node's free space.
 */
public record StoreOptions(
    int partSize,
    int inFlightParts,
    String compression,
    int zstdLevel,
    EncryptionKey encryptionKey,
    S3Config s3,
    java.nio.file.Path spoolDir,
    long spoolLimit) {

  public static final int MIN_S3_PART = 5 << 20;

  /**
   * zstd levels a checkpoint may use. zstd itself takes 1..22 (and negative "fast" levels); above
   * 19 it needs its ultra mode's large windows, and the process stays frozen while the pages are
   * compressed (level 19 already runs at a few MB/s): 19 is the most a dump should ask for.
   */
  public static final int MIN_ZSTD_LEVEL = 1;

  public static final int MAX_ZSTD_LEVEL = 19;

  public static StoreOptions defaults() {
    return new StoreOptions(8 << 20, 4, "none", 3, null, null, null, 0);
  }

  public StoreOptions withCompression(String c, int level) {
    return new StoreOptions(
        partSize, inFlightParts, c, level, encryptionKey, s3, spoolDir, spoolLimit);
  }

  public StoreOptions withEncryption(EncryptionKey k) {
    return new StoreOptions(
        partSize, inFlightParts, compression, zstdLevel, k, s3, spoolDir, spoolLimit);
  }

  public StoreOptions withParts(int size, int inFlight) {
    return new StoreOptions(
        size, inFlight, compression, zstdLevel, encryptionKey, s3, spoolDir, spoolLimit);
  }

  public StoreOptions withS3(S3Config c) {
    return new StoreOptions(
        partSize, inFlightParts, compression, zstdLevel, encryptionKey, c, spoolDir, spoolLimit);
  }

  public StoreOptions withSpool(java.nio.file.Path dir) {
    return new StoreOptions(
        partSize, inFlightParts, compression, zstdLevel, encryptionKey, s3, dir, spoolLimit);
  }

  /** A spool that may hold at most {@code limit} bytes in all (an emptyDir's sizeLimit). */
  public StoreOptions withSpool(java.nio.file.Path dir, long limit) {
    return new StoreOptions(
        partSize, inFlightParts, compression, zstdLevel, encryptionKey, s3, dir, limit);
  }

  void validate(boolean s3Backend) throws StorageException {
    if (!compression.equals("none") && !compression.equals("zstd")) {
      throw new StorageException("unknown compression '" + compression + "' (use none or zstd)");
    }
    if (compression.equals("zstd") && (zstdLevel < MIN_ZSTD_LEVEL || zstdLevel > MAX_ZSTD_LEVEL)) {
      throw new StorageException(
          "zstd level "
              + zstdLevel
              + " is out of range: use "
              + MIN_ZSTD_LEVEL
              + ".."
              + MAX_ZSTD_LEVEL
              + " (zstd's 20..22 need hundreds of MiB per stream and run at a few MB/s while the"
              + " process is frozen; negative fast levels are not offered)");
    }
    if (inFlightParts < 1 || inFlightParts > 64) {
      throw new StorageException("in-flight parts must be 1..64, not " + inFlightParts);
    }
    if (partSize < (s3Backend ? MIN_S3_PART : 4096) || partSize > (512 << 20)) {
      throw new StorageException(
          "part size "
              + partSize
              + " is out of range ("
              + (s3Backend ? "5 MiB" : "4 KiB")
              + " .. 512 MiB)");
    }
  }
}
