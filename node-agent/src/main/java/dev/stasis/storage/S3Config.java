package dev.stasis.storage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * How to reach an S3-compatible service. Credentials come, in this order, from the explicit values,
 * the environment ({@code AWS_ACCESS_KEY_ID}/{@code AWS_SECRET_ACCESS_KEY}), a mounted Kubernetes
 * Secret directory ({@code STASIS_S3_CREDENTIALS_DIR} holding files named after those two
 * variables), or the shared credentials file ({@code AWS_SHARED_CREDENTIALS_FILE} or {@code
 * ~/.aws/credentials}, profile {@code AWS_PROFILE} or {@code default}).
 *
 * @param endpoint e.g. {@code http://127.0.0.1:9000}; null means AWS ({@code
 *     https://s3.amazonaws.com})
 * @param virtualHost address buckets as {@code bucket.host} instead of {@code host/bucket}
 * @param caBundle PEM file of extra CA certificates to trust for TLS, or null
 * @param maxAttempts attempts per request before a transport or server error is final
 * @param backoffMillis delay before the second attempt; doubles after each further failure
 */
public record S3Config(
    String endpoint,
    String region,
    boolean virtualHost,
    Path caBundle,
    String accessKey,
    String secretKey,
    int maxAttempts,
    long backoffMillis) {

  public static final String ENDPOINT_ENV = "STASIS_S3_ENDPOINT";
  public static final String CREDENTIALS_DIR_ENV = "STASIS_S3_CREDENTIALS_DIR";

  /** Fills what is unset from the environment (see the class comment). */
  public static S3Config fromEnvironment(
      String endpoint, String region, boolean virtualHost, Path caBundle, Map<String, String> env)
      throws StorageException {
    String ep = endpoint != null ? endpoint : env.get(ENDPOINT_ENV);
    String rg =
        region != null ? region : env.getOrDefault("AWS_REGION", env.get("AWS_DEFAULT_REGION"));
    Path ca = caBundle;
    if (ca == null && env.get("STASIS_S3_CA_BUNDLE") != null) {
      ca = Path.of(env.get("STASIS_S3_CA_BUNDLE"));
    }
    String ak = env.get("AWS_ACCESS_KEY_ID");
    String sk = env.get("AWS_SECRET_ACCESS_KEY");
    if (ak == null || sk == null) {
      String dir = env.get(CREDENTIALS_DIR_ENV);
      if (dir != null) {
        ak = readSecret(Path.of(dir, "AWS_ACCESS_KEY_ID"));
        sk = readSecret(Path.of(dir, "AWS_SECRET_ACCESS_KEY"));
      }
    }
    if (ak == null || sk == null) {
      String file = env.get("AWS_SHARED_CREDENTIALS_FILE");
      Path f =
          file != null
              ? Path.of(file)
              : Path.of(System.getProperty("user.home"), ".aws", "credentials");
      if (Files.isRegularFile(f)) {
        String[] kv = profile(f, env.getOrDefault("AWS_PROFILE", "default"));
        ak = kv[0];
        sk = kv[1];
      }
    }
    if (ak == null || sk == null) {
      throw new StorageException(
          "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
              + CREDENTIALS_DIR_ENV
              + ", or ~/.aws/credentials");
    }
    return new S3Config(ep, rg == null ? "us-east-1" : rg, virtualHost, ca, ak, sk, 4, 250);
  }

  public String endpointOrDefault() {
    return endpoint == null ? "https://s3.amazonaws.com" : endpoint;
  }

  private static String readSecret(Path p) throws StorageException {
    try {
      return Files.isRegularFile(p) ? Files.readString(p).strip() : null;
    } catch (IOException e) {
      throw new StorageException("cannot read S3 credential " + p + ": " + e.getMessage(), e);
    }
  }

  /** Reads one profile of an AWS shared credentials (INI) file. */
  private static String[] profile(Path f, String name) throws StorageException {
    String[] kv = new String[2];
    try {
      String section = null;
      for (String raw : Files.readAllLines(f)) {
        String line = raw.strip();
        if (line.isEmpty() || line.startsWith("#") || line.startsWith(";")) {
          continue;
        }
        if (line.startsWith("[") && line.endsWith("]")) {
          section = line.substring(1, line.length() - 1).strip();
          continue;
        }
        int eq = line.indexOf('=');
        if (eq < 0 || !name.equals(section)) {
          continue;
        }
        String k = line.substring(0, eq).strip();
        String v = line.substring(eq + 1).strip();
        if (k.equals("aws_access_key_id")) {
          kv[0] = v;
        } else if (k.equals("aws_secret_access_key")) {
          kv[1] = v;
        }
      }
    } catch (IOException e) {
      throw new StorageException(
          "cannot read AWS credentials file " + f + ": " + e.getMessage(), e);
    }
    return kv;
  }

  @Override
  public String toString() {
    // never print the secret
    return "S3Config[endpoint="
        + endpointOrDefault()
        + ", region="
        + region
        + ", virtualHost="
        + virtualHost
        + "]";
  }
}
