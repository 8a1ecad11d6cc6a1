package dev.stasis.cli;

import dev.stasis.images.ImageSink;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.EncryptionKey;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.StorageException;
import dev.stasis.storage.StoreOptions;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * Storage options shared by every command that reads or writes checkpoints ({@code dump --to},
 * {@code ls}, {@code fetch}, {@code rm}): add it with {@code @Mixin StorageOptions storage;} and
 * call {@link #open(String)}.
 */
public final class StorageOptions {
  @Option(
      names = "--s3-endpoint",
      paramLabel = "URL",
      description =
          "S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: $STASIS_S3_ENDPOINT, else AWS)")
  String endpoint;

  @Option(
      names = "--s3-region",
      paramLabel = "REGION",
      description = "S3 region (default: $AWS_REGION or us-east-1)")
  String region;

  @Option(
      names = "--s3-virtual-host",
      description =
          "address buckets as bucket.host (virtual-host style) instead of host/bucket (path style)")
  boolean virtualHost;

  @Option(
      names = "--s3-ca-bundle",
      paramLabel = "PEM",
      description = "trust exactly these CA certificates for TLS (default: $STASIS_S3_CA_BUNDLE)")
  Path caBundle;

  @Option(
      names = "--compress",
      paramLabel = "none|zstd[:LEVEL]",
      defaultValue = "none",
      description = "compress each object (default: ${DEFAULT-VALUE})")
  String compress;

  @Option(
      names = "--encryption-key-file",
      paramLabel = "FILE",
      description =
          "AES-256 key (32 raw bytes, 64 hex digits or base64) to encrypt a new checkpoint or decrypt one (default: $"
              + EncryptionKey.ENV
              + ")")
  Path keyFile;

  @Option(
      names = "--part-size-mib",
      paramLabel = "MIB",
      defaultValue = "8",
      description = "multipart part size (default: ${DEFAULT-VALUE})")
  int partSizeMib;

  @Option(
      names = "--upload-parallelism",
      paramLabel = "N",
      defaultValue = "4",
      description = "parts uploaded at once; bounds memory (default: ${DEFAULT-VALUE})")
  int parallelism;

  /**
   * True when compression or encryption was asked for on the command line: meaningless for a plain
   * {@code --images-dir}, which CRIU must read as it is.
   */
  public boolean encodingRequested() {
    return keyFile != null || !compress.trim().equals("none");
  }

  /** Opens the store at {@code uri} with these options and the process environment. */
  public CheckpointStore open(String uri) throws StorageException {
    return CheckpointStore.open(uri, options(uri, System.getenv()));
  }

  /**
   * A sink for a new checkpoint at {@code uri}, for {@code dump --to URI}. It checks the
   * destination first (bucket, credentials, no checkpoint there yet); closing the sink closes the
   * store.
   */
  public ImageSink openSink(String uri) throws StorageException {
    return openSink(uri, null);
  }

  /** The same, with a spool directory for the pages of a leave-running dump (null: none). */
  public ImageSink openSink(String uri, java.nio.file.Path spoolDir) throws StorageException {
    return CheckpointStore.openCheckpoint(uri, options(uri, System.getenv()).withSpool(spoolDir));
  }

  StoreOptions options(String uri, Map<String, String> env) throws StorageException {
    StoreOptions o = StoreOptions.defaults().withParts(partSizeMib << 20, parallelism);
    String c = compress.trim();
    int level = 3;
    int colon = c.indexOf(':');
    if (colon >= 0) {
      try {
        level = Integer.parseInt(c.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new StorageException("--compress '" + compress + "': level is not a number");
      }
      c = c.substring(0, colon);
      if (!c.equals("zstd")) {
        throw new StorageException("--compress '" + compress + "': only zstd takes a level");
      }
      if (level < StoreOptions.MIN_ZSTD_LEVEL || level > StoreOptions.MAX_ZSTD_LEVEL) {
        throw new StorageException(
            "--compress '"
                + compress
                + "': zstd level must be "
                + StoreOptions.MIN_ZSTD_LEVEL
                + ".."
                + StoreOptions.MAX_ZSTD_LEVEL
                + " (20..22 need hundreds of MiB and run at a few MB/s while the process is"
                + " frozen)");
      }
    }
    o = o.withCompression(c, level);
    if (keyFile != null) {
      o = o.withEncryption(EncryptionKey.fromFile(keyFile));
    } else if (env.get(EncryptionKey.ENV) != null) {
      o =
          o.withEncryption(
              EncryptionKey.parse(env.get(EncryptionKey.ENV), "$" + EncryptionKey.ENV));
    }
    if (uri != null && uri.startsWith("s3:")) {
      o = o.withS3(S3Config.fromEnvironment(endpoint, region, virtualHost, caBundle, env));
    }
    return o;
  }
}
