package dev.stasis.storage;

import io.minio.AbortMultipartUploadArgs;
import io.minio.BucketExistsArgs;
import io.minio.CompleteMultipartUploadArgs;
import io.minio.CreateMultipartUploadArgs;
import io.minio.GetObjectArgs;
import io.minio.Http;
import io.minio.ListMultipartUploadsArgs;
import io.minio.ListMultipartUploadsResponse;
import io.minio.ListObjectsArgs;
import io.minio.MinioAsyncClient;
import io.minio.PutObjectAPIArgs;
import io.minio.RemoveObjectArgs;
import io.minio.Result;
import io.minio.UploadPartArgs;
import io.minio.UploadPartResponse;
import io.minio.errors.ErrorResponseException;
import io.minio.errors.InsufficientDataException;
import io.minio.errors.MinioException;
import io.minio.errors.ServerException;
import io.minio.messages.Item;
import io.minio.messages.ListMultipartUploadsResult;
import io.minio.messages.Part;
import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.OkHttpClient;

/**
 * Objects in one bucket of an S3-compatible service, through minio-java.
 *
 * <p>Every request goes through {@link #call}: transport errors and server-side (5xx, SlowDown)
 * errors are retried a bounded number of times with doubling backoff; client errors (missing
 * bucket, denied access) fail at once. Either way the caller gets one {@link StorageException}
 * whose message names the endpoint and bucket.
 */
final class S3Backend implements ObjectBackend {
  private static final Set<String> DENIED =
      Set.of("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled");
  private static final Set<String> TRANSIENT =
      Set.of("InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "ExpiredToken");

  private final S3Config config;
  private final String bucket;
  private final MinioAsyncClient client;
  private final OkHttpClient http;

  S3Backend(S3Config config, String bucket) throws StorageException {
    this.config = config;
    this.bucket = bucket;
    // okhttp runs at most 5 calls per host by default: more in-flight parts would queue silently
    okhttp3.Dispatcher dispatcher = new okhttp3.Dispatcher();
    dispatcher.setMaxRequestsPerHost(64);
    OkHttpClient.Builder hb =
        new OkHttpClient.Builder()
            .dispatcher(dispatcher)
            .connectTimeout(5, TimeUnit.SECONDS)
            .readTimeout(60, TimeUnit.SECONDS)
            .writeTimeout(60, TimeUnit.SECONDS)
            // our own bounded retry loop decides; okhttp must not silently resend bodies
            .retryOnConnectionFailure(false)
            // a call that starts after cancel() must fail too, not only those cancelAll() finds
            .addInterceptor(
                chain -> {
                  String c = cancelled;
                  if (c != null) {
                    throw new IOException("Canceled: " + c);
                  }
                  return chain.proceed(chain.request());
                });
    if (config.caBundle() != null) {
      X509TrustManager tm = trustManager(config);
      try {
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, new javax.net.ssl.TrustManager[] {tm}, null);
        hb.sslSocketFactory(ssl.getSocketFactory(), tm);
      } catch (GeneralSecurityException e) {
        throw new StorageException(
            "cannot set up TLS with " + config.caBundle() + ": " + e.getMessage(), e);
      }
    }
    this.http = hb.build();
    try {
      this.client =
          MinioAsyncClient.builder()
              .endpoint(config.endpointOrDefault())
              .region(config.region())
              .credentials(config.accessKey(), config.secretKey())
              .httpClient(http)
              .build();
    } catch (IllegalArgumentException e) {
      throw new StorageException(
          "S3 endpoint '" + config.endpointOrDefault() + "' is invalid: " + e.getMessage(), e);
    }
    if (config.virtualHost()) {
      client.enableVirtualStyleEndpoint();
    } else {
      client.disableVirtualStyleEndpoint();
    }
  }

  /** Trusts exactly the CA certificates of the PEM bundle (like {@code curl --cacert}). */
  private static X509TrustManager trustManager(S3Config config) throws StorageException {
    try (InputStream in = java.nio.file.Files.newInputStream(config.caBundle())) {
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      int i = 0;
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        ks.setCertificateEntry("ca-" + i++, c);
      }
      if (i == 0) {
        throw new StorageException("CA bundle " + config.caBundle() + " holds no certificate");
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(ks);
      return (X509TrustManager) tmf.getTrustManagers()[0];
    } catch (IOException | GeneralSecurityException e) {
      throw new StorageException(
          "cannot read CA bundle " + config.caBundle() + ": " + e.getMessage(), e);
    }
  }

  private String where() {
    return "bucket '" + bucket + "' at " + config.endpointOrDefault();
  }

  @Override
  public String describe(String key) {
    return "s3://" + bucket + "/" + key + " at " + config.endpointOrDefault();
  }

  interface Op<T> {
    T run() throws Exception;
  }

  /** Set by {@link #cancel}: why every request now fails at once. */
  private volatile String cancelled;

  @Override
  public void cancel(String reason) {
    cancelled = reason;
    // fails the calls in flight (their futures complete with "Canceled"); call() sees the flag
    // and does not retry them
    http.dispatcher().cancelAll();
  }

  @Override
  public void resume() {
    cancelled = null;
  }

  private void checkCancelled(String what) throws StorageException {
    String c = cancelled;
    if (c != null) {
      throw new StorageException(what + " on " + where() + " stopped: " + c);
    }
  }

  /** Runs one request with bounded retries; see the class comment. */
  private <T> T call(String what, Op<T> op) throws StorageException {
    long delay = config.backoffMillis();
    for (int attempt = 1; ; attempt++) {
      StorageException failure;
      checkCancelled(what);
      try {
        return op.run();
      } catch (Exception e) {
        checkCancelled(what);
        failure = classify(what, e);
      }
      if (!failure.retryable() || attempt >= config.maxAttempts()) {
        if (failure.retryable() && config.maxAttempts() > 1) {
          throw new StorageException(
              failure.getMessage() + " (gave up after " + attempt + " attempts)",
              failure.getCause());
        }
        throw failure;
      }
      try {
        Thread.sleep(delay);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new StorageException(what + " on " + where() + " interrupted", ie);
      }
      delay *= 2;
    }
  }

  private StorageException classify(String what, Throwable e) {
    Throwable t = e;
    while ((t instanceof ExecutionException
            || t instanceof CompletionException
            || (t != null && t.getClass() == MinioException.class))
        && t.getCause() != null) {
      t = t.getCause();
    }
    if (t instanceof StorageException se) {
      return se;
    }
    if (t instanceof ErrorResponseException er) {
      String code = er.errorResponse().code();
      String msg = er.errorResponse().message();
      int status = er.response() == null ? 0 : er.response().code();
      if ("NoSuchBucket".equals(code)) {
        return new StorageException(
            "bucket '" + bucket + "' does not exist at " + config.endpointOrDefault(), t);
      }
      if (DENIED.contains(code) || status == 403) {
        return new StorageException(
            "access denied to "
                + where()
                + " ("
                + code
                + (msg == null ? "" : ": " + msg)
                + "); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            t);
      }
      // 501 NotImplemented (e.g. a read-only S3Proxy) is an answer, not a hiccup: no retries.
      boolean retry =
          TRANSIENT.contains(code)
              || (status >= 500 && status != 501 && !"NotImplemented".equals(code));
      return new StorageException(
          what + " failed on " + where() + ": " + code + (msg == null ? "" : " (" + msg + ")"),
          t,
          retry);
    }
    if (t instanceof ServerException se) {
      return new StorageException(
          what + " failed on " + where() + ": server error HTTP " + se.statusCode(),
          t,
          se.statusCode() >= 500);
    }
    if (t instanceof InsufficientDataException) {
      return new StorageException(what + " failed on " + where() + ": " + t.getMessage(), t, true);
    }
    if (t instanceof javax.net.ssl.SSLException) {
      // a certificate problem does not go away by retrying
      return new StorageException(
          "TLS handshake with "
              + config.endpointOrDefault()
              + " failed for bucket '"
              + bucket
              + "' ("
              + t.getMessage()
              + "); give its CA certificates with --s3-ca-bundle",
          t);
    }
    if (t instanceof IOException) {
      String m = t.getMessage();
      return new StorageException(
          "S3 endpoint "
              + config.endpointOrDefault()
              + " unreachable for bucket '"
              + bucket
              + "' during "
              + what
              + " ("
              + t.getClass().getSimpleName()
              + (m == null ? "" : ": " + m)
              + ")",
          t,
          true);
    }
    if (t instanceof InterruptedException) {
      Thread.currentThread().interrupt();
    }
    String m = t == null ? "unknown error" : t.getClass().getSimpleName() + ": " + t.getMessage();
    return new StorageException(what + " failed on " + where() + ": " + m, t);
  }

  @Override
  public void checkAccess(boolean forWrite) throws StorageException {
    boolean exists =
        call(
            "bucket check",
            () -> client.bucketExists(BucketExistsArgs.builder().bucket(bucket).build()).get());
    if (!exists) {
      throw new StorageException(
          "bucket '" + bucket + "' does not exist at " + config.endpointOrDefault());
    }
  }

  /**
   * Headers for a request body. The body is not part of the SigV4 signature: over plain HTTP minio
   * would otherwise hash every byte once more with SHA-256 just to sign it. Transport integrity
   * comes from a CRC32C checksum the server checks (x-amz-checksum-crc32c), end-to-end integrity
   * from the manifest's SHA-256 sums that fetch verifies (and, when encrypted, from AES-GCM).
   *
   * <p>The CRC32C is computed here, with the JDK's (hardware-assisted) implementation, and given to
   * minio, which then skips its own: minio's is a byte-at-a-time loop that was the largest cost of
   * an upload thread (most samples of a profiled 2 GiB push sat in it). Same headers, same
   * algorithm as minio sends by itself.
   */
  static Http.Headers bodyHeaders(byte[] data, int length) {
    java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
    crc.update(data, 0, length);
    byte[] sum = java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array();
    Http.Headers h = new Http.Headers("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
    h.put("x-amz-checksum-crc32c", java.util.Base64.getEncoder().encodeToString(sum));
    h.put("X-Amz-Sdk-Checksum-Algorithm", "crc32c");
    return h;
  }

  /**
   * A request body that is a view of our part buffer, handed to minio as its {@code ByteBuffer}
   * type so that OkHttp streams it. Given a {@code byte[]}, OkHttp copies the whole array into its
   * 8 KiB buffer segments before the first byte reaches the socket: an 8 MiB part became ~1000
   * segments, more than OkHttp's segment pool keeps, so every byte uploaded was also allocated once
   * on the heap. With four parts in flight those segments lived long enough to be promoted, and a 2
   * GiB push spent 1.1-1.4 s in ~40-60 full collections. Read through a stream, a part is copied
   * segment by segment as the socket takes it, from recycled segments. Each (re)send gets a fresh
   * stream over the same bytes, so minio's retries still work.
   */
  static final class ArrayBody extends io.minio.ByteBuffer {
    private final byte[] data;
    private final int length;

    ArrayBody(byte[] data, int length) {
      super(length);
      this.data = data;
      this.length = length;
    }

    @Override
    public long length() {
      return length;
    }

    @Override
    public InputStream inputStream() {
      return new java.io.ByteArrayInputStream(data, 0, length);
    }

    @Override
    public void write(int b) {
      throw new UnsupportedOperationException("a part body is read-only");
    }

    @Override
    public void write(byte[] b, int off, int len) {
      throw new UnsupportedOperationException("a part body is read-only");
    }
  }

  @Override
  public void put(String key, byte[] data, int length) throws StorageException {
    call(
        "upload of " + key,
        () ->
            client
                .putObject(
                    PutObjectAPIArgs.builder()
                        .bucket(bucket)
                        .object(key)
                        .headers(bodyHeaders(data, length))
                        .buffer(new ArrayBody(data, length))
                        .build())
                .get());
  }

  @Override
  public Upload startUpload(String key) throws StorageException {
    String id =
        call(
            "multipart start of " + key,
            () ->
                client
                    .createMultipartUpload(
                        CreateMultipartUploadArgs.builder().bucket(bucket).object(key).build())
                    .get()
                    .result()
                    .uploadId());
    return new S3Upload(key, id);
  }

  private final class S3Upload implements Upload {
    private final String key;
    private final String id;
    private final ConcurrentSkipListMap<Integer, Part> parts = new ConcurrentSkipListMap<>();

    S3Upload(String key, String id) {
      this.key = key;
      this.id = id;
    }

    @Override
    public void part(int number, long offset, byte[] data, int length) throws StorageException {
      UploadPartResponse r =
          call(
              "part " + number + " of " + key,
              () ->
                  client
                      .uploadPart(
                          UploadPartArgs.builder()
                              .bucket(bucket)
                              .object(key)
                              .uploadId(id)
                              .partNumber(number)
                              .headers(bodyHeaders(data, length))
                              .buffer(new ArrayBody(data, length))
                              .build())
                      .get());
      parts.put(number, new Part(number, r.part().etag()));
    }

    @Override
    public void complete() throws StorageException {
      Part[] all = parts.values().toArray(new Part[0]);
      call(
          "multipart completion of " + key,
          () ->
              client
                  .completeMultipartUpload(
                      CompleteMultipartUploadArgs.builder()
                          .bucket(bucket)
                          .object(key)
                          .uploadId(id)
                          .parts(all)
                          .build())
                  .get());
    }

    @Override
    public void abort() {
      try {
        abortPending(new PendingUpload(key, id, null));
      } catch (StorageException e) {
        // best effort; 'stasis rm' aborts what is left once the service is back
      }
    }
  }

  @Override
  public List<ObjectInfo> list(String prefix) throws StorageException {
    return call(
        "listing of " + prefix,
        () -> {
          List<ObjectInfo> out = new ArrayList<>();
          for (Result<Item> r :
              client.listObjects(
                  ListObjectsArgs.builder()
                      .bucket(bucket)
                      .prefix(prefix)
                      .recursive(true)
                      .build())) {
            Item it = r.get();
            if (!it.isDir()) {
              Instant lm = it.lastModified() == null ? null : it.lastModified().toInstant();
              out.add(new ObjectInfo(it.objectName(), it.size(), lm));
            }
          }
          return out;
        });
  }

  @Override
  public List<PendingUpload> pendingUploads(String prefix) throws StorageException {
    return call(
        "multipart listing of " + prefix,
        () -> {
          List<PendingUpload> out = new ArrayList<>();
          String keyMarker = null;
          String idMarker = null;
          while (true) {
            ListMultipartUploadsArgs.Builder b =
                ListMultipartUploadsArgs.builder().bucket(bucket).prefix(prefix);
            if (keyMarker != null) {
              b.keyMarker(keyMarker).uploadIdMarker(idMarker);
            }
            ListMultipartUploadsResponse resp = client.listMultipartUploads(b.build()).get();
            ListMultipartUploadsResult res = resp.result();
            for (ListMultipartUploadsResult.Upload u : res.uploads()) {
              Instant at = u.initiated() == null ? null : u.initiated().toInstant();
              out.add(new PendingUpload(u.objectName(), u.uploadId(), at));
            }
            if (!res.isTruncated()) {
              return out;
            }
            keyMarker = res.nextKeyMarker();
            idMarker = res.nextUploadIdMarker();
          }
        });
  }

  @Override
  public void abortPending(PendingUpload upload) throws StorageException {
    call(
        "multipart abort of " + upload.key(),
        () ->
            client
                .abortMultipartUpload(
                    AbortMultipartUploadArgs.builder()
                        .bucket(bucket)
                        .object(upload.key())
                        .uploadId(upload.uploadId())
                        .build())
                .get());
  }

  @Override
  public InputStream get(String key) throws StorageException {
    return call(
        "download of " + key,
        () -> client.getObject(GetObjectArgs.builder().bucket(bucket).object(key).build()).get());
  }

  @Override
  public void delete(Collection<String> keys) throws StorageException {
    for (String k : keys) {
      call(
          "delete of " + k,
          () ->
              client
                  .removeObject(RemoveObjectArgs.builder().bucket(bucket).object(k).build())
                  .get());
    }
  }

  @Override
  public void close() {
    http.dispatcher().executorService().shutdown();
    http.connectionPool().evictAll();
  }
}
