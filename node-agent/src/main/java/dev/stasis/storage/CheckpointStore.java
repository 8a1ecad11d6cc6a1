package dev.stasis.storage;

import com.github.luben.zstd.ZstdInputStream;
import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.SecretKey;

/**
 * Checkpoints at one URI ({@code file:///dir} or {@code s3://bucket/prefix}). The URI is the root
 * of one checkpoint for {@link #newCheckpoint}, {@link #fetch} and {@link #delete}, and the top of
 * a tree of checkpoints for {@link #list}. Layout below a root:
 *
 * <pre>
 *   checkpoint/&lt;image&gt;[.zst][.aes]   the CRIU images, as in a Kubernetes checkpoint archive
 *   manifest.json                     written last; without it the checkpoint is incomplete
 * </pre>
 */
public final class CheckpointStore implements AutoCloseable {
  private final CheckpointUri uri;
  private final ObjectBackend backend;
  private final StoreOptions options;

  /** The root as a key prefix: "" or "some/prefix/". */
  private final String root;

  private CheckpointStore(CheckpointUri uri, ObjectBackend backend, StoreOptions options) {
    this.uri = uri;
    this.backend = backend;
    this.options = options;
    this.root = uri.isS3() && !uri.prefix().isEmpty() ? uri.prefix() + "/" : "";
  }

  /**
   * Opens the store at {@code uri}. For s3:// URIs, {@code options.s3()} (or, when null, the
   * environment) says how to reach the service.
   */
  public static CheckpointStore open(String uri, StoreOptions options) throws StorageException {
    CheckpointUri u = CheckpointUri.parse(uri);
    options.validate(u.isS3());
    ObjectBackend b;
    if (u.isS3()) {
      S3Config c =
          options.s3() != null
              ? options.s3()
              : S3Config.fromEnvironment(null, null, false, null, System.getenv());
      b = new S3Backend(c, u.bucket());
    } else {
      b = new LocalBackend(u.path());
    }
    return new CheckpointStore(u, b, options);
  }

  public CheckpointUri uri() {
    return uri;
  }

  StoreOptions options() {
    return options;
  }

  ObjectBackend backend() {
    return backend;
  }

  String key(String relative) {
    return root + relative;
  }

  /**
   * A sink for a new checkpoint at this URI. Checks first that the destination is usable (bucket
   * exists, credentials work) and holds no checkpoint yet, so a dump fails before it touches the
   * target process.
   */
  public ImageSink newCheckpoint() throws StorageException {
    return newCheckpoint(false);
  }

  /**
   * Opens the store at {@code uri} and a new checkpoint in it, as one sink whose close also closes
   * the store: what {@code stasis dump --to URI} uses.
   */
  public static ImageSink openCheckpoint(String uri, StoreOptions options) throws StorageException {
    CheckpointStore store = open(uri, options);
    try {
      return store.newCheckpoint(true);
    } catch (StorageException | RuntimeException e) {
      store.close();
      throw e;
    }
  }

  private ImageSink newCheckpoint(boolean ownStore) throws StorageException {
    backend.checkAccess(true);
    if (options.spoolDir() != null) {
      // spools of dumps that were killed before they could remove them
      try {
        Spools.sweep(options.spoolDir());
      } catch (IOException e) {
        throw new StorageException(
            "spool directory " + options.spoolDir() + " cannot be used: " + e.getMessage(), e);
      }
    }
    if (backend.list(key(Manifest.FILE)).stream().anyMatch(o -> o.key().equals(key(Manifest.FILE)))
        || !imageObjects().isEmpty()) {
      throw new StorageException(
          "a checkpoint already exists at "
              + uri
              + " (remove it with 'stasis rm --from "
              + uri
              + "')");
    }
    return new CheckpointWriter(this, ownStore);
  }

  /**
   * Uploads an existing image directory (from {@code dump --images-dir} or any CRIU dump) as a new
   * checkpoint at this URI, through the same streaming sink a dump uses. Returns the bytes read.
   */
  public long push(Path dir) throws IOException {
    Path src = dir.toAbsolutePath().normalize();
    List<Path> files = new ArrayList<>();
    List<Path> parentFiles = new ArrayList<>();
    try {
      addImageFiles(src, files);
      // an incremental set's parent (a directory, or CRIU's symlink to a pre-dump's set)
      Path parent = src.resolve(ImageSink.PARENT);
      if (Files.isDirectory(parent)) {
        addImageFiles(parent, parentFiles);
      }
    } catch (IOException e) {
      throw new StorageException(
          "images directory " + src + " cannot be read: " + e.getMessage(), e);
    }
    if (files.isEmpty() && parentFiles.isEmpty()) {
      throw new StorageException("images directory " + src + " holds no image files");
    }
    files.sort(null);
    parentFiles.sort(null);
    long total = 0;
    try (ImageSink sink = newCheckpoint()) {
      // The parent set first, then its manifest (syncParent), as a held dump stores it: a pushed
      // pre-copy set can be pre-staged (fetchParent) like one the agent stored.
      for (Path p : parentFiles) {
        total += pushFile(sink, src, p);
      }
      if (!parentFiles.isEmpty()) {
        sink.syncParent();
      }
      for (Path p : files) {
        total += pushFile(sink, src, p);
      }
      sink.recordMetadata(Map.of("source.images_dir", src.toString()));
      sink.commit();
    }
    return total;
  }

  /**
   * Copies one image file of {@code src} (FILE or parent/FILE) into the sink; returns its bytes.
   */
  private static long pushFile(ImageSink sink, Path src, Path p) throws IOException {
    try (FileChannel in = FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      return copyInto(sink, src.relativize(p).toString(), in, () -> {});
    }
  }

  /** The image files directly in {@code dir} (regular files, not followed through symlinks). */
  private static void addImageFiles(Path dir, List<Path> files) throws IOException {
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) && Manifest.isImageName(n)) {
          files.add(p);
        }
      }
    }
  }

  /** A check between two chunks of a copy; throws to stop it. */
  interface CopyCheck {
    void check() throws IOException;
  }

  /**
   * Copies a whole file into a new image {@code name} of {@code sink} in 1 MiB writes, running
   * {@code check} before each; returns the bytes copied. The image is closed (for a store: its
   * object completed) only after the whole copy. On a failure it is left open, so that the sink's
   * abort discards its upload instead of first completing half an object.
   */
  static long copyInto(ImageSink sink, String name, FileChannel in, CopyCheck check)
      throws IOException {
    java.nio.channels.WritableByteChannel out = sink.create(name);
    java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(1 << 20);
    long n = 0;
    while (true) {
      check.check();
      if (in.read(buf) < 0) {
        break;
      }
      buf.flip();
      while (buf.hasRemaining()) {
        n += out.write(buf);
      }
      buf.clear();
    }
    out.close();
    return n;
  }

  /**
   * One line of 'stasis ls'; {@code id} is the checkpoint's id from its manifest (null when it has
   * none that parses).
   */
  public record Listing(
      String name, String uri, boolean complete, long size, Instant time, String id, String why) {}

  /**
   * Which checkpoint a key (relative to the root) belongs to: {@code P/manifest.json} is the
   * manifest of checkpoint {@code P/}, {@code P/checkpoint/NAME} (NAME without '/') an image of
   * {@code P/}; anything else is no part of a checkpoint. Image names are never "manifest.json" and
   * never hold '/', so this holds also for a checkpoint named "checkpoint" nested in another:
   * {@code x/checkpoint/manifest.json} is the manifest of {@code x/checkpoint/}, {@code
   * x/checkpoint/pages-1.img} an image of {@code x/}, {@code x/checkpoint/checkpoint/pages-1.img}
   * an image of {@code x/checkpoint/}.
   *
   * @return {checkpoint prefix ("" or ending in '/'), image file name or null for the manifest}, or
   *     null
   */
  static String[] owner(String rel) {
    if (rel.equals(Manifest.FILE) || rel.endsWith("/" + Manifest.FILE)) {
      return new String[] {rel.substring(0, rel.length() - Manifest.FILE.length()), null};
    }
    int slash = rel.lastIndexOf('/');
    if (slash < 0 || slash == rel.length() - 1) {
      return null;
    }
    String dir = rel.substring(0, slash + 1);
    String file = rel.substring(slash + 1);
    if (dir.equals(Manifest.IMAGES)) {
      return new String[] {"", file};
    }
    if (dir.endsWith("/" + Manifest.IMAGES)) {
      return new String[] {dir.substring(0, dir.length() - Manifest.IMAGES.length()), file};
    }
    // a file of the checkpoint's parent image set: checkpoint/parent/FILE (a checkpoint named
    // "parent" nested in checkpoint/ keeps its images one level deeper, in its own checkpoint/)
    String parentDir = Manifest.IMAGES + ImageSink.PARENT;
    if (dir.equals(parentDir)) {
      return new String[] {"", ImageSink.PARENT + file};
    }
    if (dir.endsWith("/" + parentDir)) {
      return new String[] {
        dir.substring(0, dir.length() - parentDir.length()), ImageSink.PARENT + file
      };
    }
    return null;
  }

  /** The image objects of the checkpoint at this URI: direct children of its checkpoint/ only. */
  private List<ObjectBackend.ObjectInfo> imageObjects() throws StorageException {
    List<ObjectBackend.ObjectInfo> out = new ArrayList<>();
    String p = key(Manifest.IMAGES);
    for (ObjectBackend.ObjectInfo o : backend.list(p)) {
      if (isOwnImage(o.key(), p)) {
        out.add(o);
      }
    }
    return out;
  }

  /**
   * A key directly below {@code imagesPrefix} that is not a manifest: an image of this checkpoint,
   * not the manifest of (or an image in) a checkpoint named "checkpoint" nested inside it.
   */
  private static boolean isOwnImage(String key, String imagesPrefix) {
    if (!key.startsWith(imagesPrefix)) {
      return false;
    }
    String rest = key.substring(imagesPrefix.length());
    if (rest.startsWith(ImageSink.PARENT)) {
      rest = rest.substring(ImageSink.PARENT.length()); // its parent image set's
    }
    return !rest.isEmpty() && rest.indexOf('/') < 0 && !rest.equals(Manifest.FILE);
  }

  /** Pending uploads of this checkpoint's images (not of one nested below its checkpoint/). */
  private List<ObjectBackend.PendingUpload> imageUploads() throws StorageException {
    List<ObjectBackend.PendingUpload> out = new ArrayList<>();
    String p = key(Manifest.IMAGES);
    for (ObjectBackend.PendingUpload u : backend.pendingUploads(p)) {
      if (isOwnImage(u.key(), p)) {
        out.add(u);
      }
    }
    return out;
  }

  /** Every checkpoint at or below the URI, complete or not, sorted by name. */
  public List<Listing> list() throws StorageException {
    backend.checkAccess(false);
    Map<String, long[]> sizes = new TreeMap<>();
    Map<String, Instant> times = new HashMap<>();
    Map<String, Boolean> hasManifest = new HashMap<>();
    Map<String, Map<String, Long>> objects = new HashMap<>();
    for (ObjectBackend.ObjectInfo o : backend.list(root)) {
      String rel = o.key().substring(root.length());
      String[] own = owner(rel);
      if (own == null) {
        continue;
      }
      String cp = own[0];
      sizes.computeIfAbsent(cp, k -> new long[1])[0] += o.size();
      if (o.lastModified() != null) {
        times.merge(cp, o.lastModified(), (a, b) -> a.isAfter(b) ? a : b);
      }
      if (own[1] == null) {
        hasManifest.put(cp, true);
      } else {
        objects.computeIfAbsent(cp, k -> new HashMap<>()).put(Manifest.IMAGES + own[1], o.size());
      }
    }
    Map<String, Integer> pending = new HashMap<>();
    for (ObjectBackend.PendingUpload p : backend.pendingUploads(root)) {
      String[] own = owner(p.key().substring(root.length()));
      if (own == null || own[1] == null) {
        continue;
      }
      sizes.computeIfAbsent(own[0], k -> new long[1]);
      pending.merge(own[0], 1, Integer::sum);
    }
    List<Listing> out = new ArrayList<>();
    for (Map.Entry<String, long[]> e : sizes.entrySet()) {
      String cp = e.getKey();
      String rel = CheckpointUri.trimSlashes(cp);
      String name = rel.isEmpty() ? uri.name() : rel;
      String why = null;
      String id = null;
      Instant time = times.get(cp);
      if (pending.containsKey(cp)) {
        why = pending.get(cp) + " upload(s) in progress or abandoned";
      } else if (!hasManifest.containsKey(cp)) {
        why = "no manifest";
      } else {
        try {
          Manifest m = readManifest(key(cp + Manifest.FILE), uri.child(rel));
          id = m.id();
          Map<String, Long> have = objects.getOrDefault(cp, Map.of());
          for (Manifest.Entry me : m.objects()) {
            Long s = have.get(me.key());
            if (s == null || s != me.storedSize()) {
              why = "object " + me.name() + (s == null ? " missing" : " has the wrong size");
              break;
            }
          }
          if (why == null && !uri.child(rel).equals(m.uri())) {
            why = "copied or moved here from " + m.uri();
          }
          if (m.completedAt() != null) {
            time = Instant.parse(m.completedAt());
          }
        } catch (StorageException | RuntimeException ex) {
          why = "bad manifest: " + ex.getMessage();
        }
      }
      out.add(new Listing(name, uri.child(rel), why == null, e.getValue()[0], time, id, why));
    }
    return out;
  }

  private Manifest readManifest(String key, String where) throws StorageException {
    byte[] json;
    try (InputStream in = backend.get(key)) {
      json = in.readNBytes(Manifest.MAX_BYTES + 1);
    } catch (StorageException e) {
      throw e;
    } catch (IOException e) {
      throw new StorageException("cannot read manifest of " + where + ": " + e.getMessage(), e);
    }
    if (json.length > Manifest.MAX_BYTES) {
      throw new VerificationException(
          "manifest of " + where + " is larger than " + Manifest.MAX_BYTES + " bytes");
    }
    return Manifest.parse(json, where);
  }

  /**
   * What a fetch wrote; {@code localBytes} of the {@code bytes} were read from objects fetched
   * earlier onto this disk ({@link #fetchParent}) rather than from the store.
   */
  public record Fetched(
      Path dir, List<String> files, long bytes, long localBytes, Manifest manifest) {}

  /**
   * Whether this checkpoint has a parent image set stored: its parent manifest ({@link
   * Manifest#PARENT_FILE}), which a held dump writes once the whole parent set is stored. One
   * listing, nothing read or verified. False for a container whose pre-copy had no live copy (its
   * pages are all in the final set), and for a checkpoint not stored at all; {@link #fetchParent}
   * is the check that the set is whole and sound.
   */
  public boolean hasParent() throws StorageException {
    backend.checkAccess(false);
    String k = key(Manifest.IMAGES + Manifest.PARENT_FILE);
    return backend.list(k).stream().anyMatch(o -> o.key().equals(k));
  }

  /**
   * Fetches this checkpoint's parent image set before its final manifest exists (a checkpoint
   * holding its final cut): reads {@link Manifest#PARENT_FILE}, checks it as a fetch checks the
   * manifest (MAC and data key when encrypted, URI), and decodes and verifies every parent object
   * it lists with the same code as {@link #fetch(Path)}, into {@code dir/parent/}; the parent
   * manifest itself is kept as {@code dir/parent.manifest.json}, for the later {@link #fetch(Path,
   * String, Path)} to compare against the final manifest. Nothing is left in {@code dir} unless
   * every object verified.
   */
  public Fetched fetchParent(Path dir) throws StorageException {
    String where = uri.toString();
    if (!hasParent()) {
      throw new StorageException(
          "checkpoint "
              + where
              + " has no parent image set stored (no "
              + Manifest.IMAGES
              + Manifest.PARENT_FILE
              + ")");
    }
    Manifest m = readManifest(key(Manifest.IMAGES + Manifest.PARENT_FILE), where);
    SecretKey dataKey = checkManifest(m, where, null);
    for (Manifest.Entry e : m.objects()) {
      if (!e.name().startsWith(Manifest.IMAGES + ImageSink.PARENT)) {
        throw new VerificationException(
            "parent manifest of " + where + " lists " + e.name() + ", not a parent image file");
      }
    }
    Fetched f = fetchObjects(dir, m, dataKey, where, null, null);
    Path out = f.dir().resolve(Manifest.PARENT_FILE);
    try (OutputStream os = Channels.newOutputStream(Private.newFile(out))) {
      os.write(m.toJson());
    } catch (IOException e) {
      throw writeFailure(out, e);
    }
    return f;
  }

  /**
   * Downloads the checkpoint at this URI into {@code dir}: decrypts, decompresses and checks every
   * size and SHA-256 against the manifest while staging into a hidden directory inside {@code dir};
   * only once every object verified are the files moved into {@code dir}. On any failure {@code
   * dir} holds nothing new.
   */
  public Fetched fetch(Path dir) throws StorageException {
    return fetch(dir, null);
  }

  /**
   * As {@link #fetch(Path)}, refusing the checkpoint unless its id is {@code expectId} (when not
   * null): the id printed by the dump pins exactly that checkpoint.
   */
  public Fetched fetch(Path dir, String expectId) throws StorageException {
    return fetch(dir, expectId, null);
  }

  /**
   * As {@link #fetch(Path, String)}; with {@code prefetched} (a directory {@link #fetchParent}
   * filled, null for none) the parent set is not fetched: the final manifest's parent entries must
   * equal the ones of the parent manifest kept there (checked, not re-hashed: those files were
   * verified against them), and the verified files are moved in. Only the other objects are
   * downloaded and verified.
   */
  public Fetched fetch(Path dir, String expectId, Path prefetched) throws StorageException {
    backend.checkAccess(false);
    String where = uri.toString();
    if (expectId != null && !Manifest.ID.matcher(expectId).matches()) {
      throw new StorageException(
          "expected checkpoint id '" + expectId + "' is not an id (32 lowercase hex digits)");
    }
    if (backend.list(key(Manifest.FILE)).stream()
        .noneMatch(o -> o.key().equals(key(Manifest.FILE)))) {
      boolean any = !imageObjects().isEmpty() || !imageUploads().isEmpty();
      throw new StorageException(
          any
              ? "checkpoint " + where + " is incomplete (no manifest.json): it cannot be fetched"
              : "no checkpoint at " + where);
    }
    Manifest m = readManifest(key(Manifest.FILE), where);
    SecretKey dataKey = checkManifest(m, where, expectId);
    Manifest pre = prefetched == null ? null : preStaged(m, prefetched, where);
    return fetchObjects(dir, m, dataKey, where, prefetched, pre);
  }

  /**
   * The checks of a manifest before anything is fetched: encryption as the options expect, the MAC,
   * the URI it was written to, the pinned id. Returns the data key (null when not encrypted).
   */
  private SecretKey checkManifest(Manifest m, String where, String expectId)
      throws StorageException {
    SecretKey dataKey = null;
    if (m.encryption() == null && options.encryptionKey() != null) {
      // whoever can write the bucket could otherwise replace an encrypted checkpoint by a plain
      // one of their making: with a key in hand, only authenticated data is accepted
      throw new VerificationException(
          "checkpoint " + where + " is not encrypted, but a decryption key was given: refusing it");
    }
    if (m.encryption() != null) {
      if (options.encryptionKey() == null) {
        throw new StorageException(
            "checkpoint "
                + where
                + " is encrypted: give --encryption-key-file or "
                + EncryptionKey.ENV);
      }
      if (!"AES-256-GCM".equals(m.encryption().algorithm())) {
        throw new VerificationException(
            "checkpoint " + where + " uses unknown encryption " + m.encryption().algorithm());
      }
      dataKey =
          options
              .encryptionKey()
              .unwrap(m.encryption().wrappedKey(), m.encryption().keyId(), where);
      try {
        if (m.mac() == null
            || !java.security.MessageDigest.isEqual(
                m.mac().getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                Manifest.mac(m, dataKey).getBytes(java.nio.charset.StandardCharsets.US_ASCII))) {
          throw new VerificationException(
              "manifest of " + where + " was modified (its MAC does not verify)");
        }
      } catch (VerificationException e) {
        throw e;
      } catch (IOException e) {
        throw new StorageException(e.getMessage(), e);
      }
    }
    // The identity checks come after the MAC (with encryption the id and URI are authenticated):
    // a checkpoint copied over another one's name, even one encrypted with the same key, is
    // refused, and so is any checkpoint but the one the caller pinned.
    if (!where.equals(m.uri())) {
      throw new VerificationException(
          "checkpoint at "
              + where
              + " was written to "
              + m.uri()
              + " (id "
              + m.id()
              + "): refusing a checkpoint copied or swapped in from elsewhere");
    }
    if (expectId != null && !expectId.equals(m.id())) {
      throw new VerificationException(
          "checkpoint at " + where + " has id " + m.id() + ", not the expected " + expectId);
    }
    return dataKey;
  }

  /**
   * The parent manifest a {@link #fetchParent} kept in {@code prefetched}, checked against the
   * final manifest {@code m}: same checkpoint, and exactly the same parent entries (names, keys,
   * sizes, digests, encodings). The pre-staged files were verified against those digests, so they
   * are not hashed again.
   */
  private static Manifest preStaged(Manifest m, Path prefetched, String where)
      throws StorageException {
    Path f = prefetched.resolve(Manifest.PARENT_FILE);
    byte[] json;
    try {
      json = Files.readAllBytes(f);
    } catch (IOException e) {
      throw new StorageException(
          "pre-staged parent set " + prefetched + " cannot be used: " + e.getMessage(), e);
    }
    Manifest pre = Manifest.parse(json, "pre-staged parent set " + prefetched);
    if (!pre.id().equals(m.id())) {
      throw new VerificationException(
          "pre-staged parent set of "
              + where
              + " is of checkpoint "
              + pre.id()
              + ", not of "
              + m.id());
    }
    Map<String, Manifest.Entry> want = new TreeMap<>();
    for (Manifest.Entry e : m.objects()) {
      if (e.name().startsWith(Manifest.IMAGES + ImageSink.PARENT)) {
        want.put(e.name(), e);
      }
    }
    Map<String, Manifest.Entry> have = new TreeMap<>();
    for (Manifest.Entry e : pre.objects()) {
      have.put(e.name(), e);
    }
    java.util.Set<String> names = new java.util.TreeSet<>(want.keySet());
    names.addAll(have.keySet());
    for (String n : names) {
      if (!java.util.Objects.equals(want.get(n), have.get(n))) {
        throw new VerificationException(
            "object "
                + n
                + " of "
                + where
                + (want.get(n) == null
                    ? " was pre-staged but is not in the final manifest"
                    : have.get(n) == null
                        ? " is in the final manifest but was not pre-staged"
                        : " differs between the final manifest and the pre-staged parent set's"));
      }
    }
    return pre;
  }

  /**
   * Decodes and verifies every object of {@code m} into {@code dir} through a hidden staging
   * directory; with {@code pre} (checked by {@link #preStaged}), the parent files are moved in from
   * {@code prefetched} instead of being fetched.
   */
  private Fetched fetchObjects(
      Path dir, Manifest m, SecretKey dataKey, String where, Path prefetched, Manifest pre)
      throws StorageException {
    Path target = dir.toAbsolutePath().normalize();
    Path staging;
    try {
      Private.createDirectories(target);
      staging = Files.createTempDirectory(target, ".stasis-fetch-");
    } catch (IOException e) {
      throw new StorageException(
          "images directory " + target + " cannot be used: " + e.getMessage(), e);
    }
    // The manifest's sizes cap what is written (each object stops at its recorded size); they are
    // only as trustworthy as the manifest (an unencrypted one is unauthenticated), so they must
    // also fit the free space: a forged size never fills the disk.
    long need = 0;
    for (Manifest.Entry e : m.objects()) {
      need += e.size();
    }
    long free;
    try {
      free = Files.getFileStore(staging).getUsableSpace();
    } catch (IOException e) {
      Private.removeStaging(staging);
      throw new StorageException(
          "images directory " + target + " cannot be used: " + e.getMessage(), e);
    }
    if (need > free) {
      Private.removeStaging(staging);
      throw new StorageException(
          "no space left on device for "
              + where
              + ": its manifest says "
              + need
              + " bytes of images, images directory "
              + target
              + " has "
              + free
              + " bytes free");
    }
    List<String> files = new ArrayList<>();
    long bytes = 0;
    long localBytes = 0;
    boolean madeParent = false;
    try {
      // refuse before downloading anything: a restore directory is never overwritten or written
      // through a symlink planted in it
      boolean parent = false;
      for (Manifest.Entry e : m.objects()) {
        String file = e.name().substring(Manifest.IMAGES.length());
        parent |= file.startsWith(ImageSink.PARENT);
        if (Files.exists(target.resolve(file), LinkOption.NOFOLLOW_LINKS)) {
          throw new StorageException("images directory " + target + " already contains " + file);
        }
      }
      Path parentDir = target.resolve(ImageSink.PARENT);
      if (parent && Files.exists(parentDir, LinkOption.NOFOLLOW_LINKS)) {
        // an incremental set's parent is laid out whole, by this fetch, never merged into one
        throw new StorageException(
            "images directory " + target + " already contains " + ImageSink.PARENT);
      }
      if (parent) {
        Private.createDirectories(staging.resolve(ImageSink.PARENT));
      }
      for (Manifest.Entry e : m.objects()) {
        String file = e.name().substring(Manifest.IMAGES.length());
        if (pre != null && file.startsWith(ImageSink.PARENT)) {
          // verified plaintext from fetchParent, its entry equal to this one: moved, not re-hashed
          Path local = prefetched.resolve(file);
          if (!Files.isRegularFile(local, LinkOption.NOFOLLOW_LINKS)
              || Files.size(local) != e.size()) {
            throw new VerificationException(
                "object "
                    + e.name()
                    + " of "
                    + where
                    + " is missing from the pre-staged parent set");
          }
          Files.move(local, staging.resolve(file));
          localBytes += e.size();
        } else {
          fetchOne(e, m.id(), dataKey, staging.resolve(file), where, backend.get(key(e.key())));
        }
        files.add(file);
        bytes += e.size();
      }
      if (parent) {
        madeParent = !Private.createDirectories(parentDir).isEmpty();
      }
      for (String f : files) {
        try {
          Files.move(staging.resolve(f), target.resolve(f), StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException x) {
          Files.move(staging.resolve(f), target.resolve(f));
        }
      }
      if (parent) {
        Private.syncDirectory(parentDir);
      }
      Private.syncDirectory(target);
    } catch (IOException e) {
      Private.removeStaging(staging);
      for (String f : files) {
        // files moved before a later move failed are removed too: all or nothing
        try {
          if (!Files.exists(staging.resolve(f))) {
            Files.deleteIfExists(target.resolve(f));
          }
        } catch (IOException ignored) {
          // best effort
        }
      }
      if (madeParent) {
        try {
          Files.deleteIfExists(target.resolve(ImageSink.PARENT)); // empty again, unless...
        } catch (IOException ignored) {
          // ...it holds a file that could not be removed
        }
      }
      throw e instanceof StorageException se
          ? se
          : new StorageException("fetch into " + target + " failed: " + e.getMessage(), e);
    }
    Private.removeStaging(staging);
    return new Fetched(target, files, bytes, localBytes, m);
  }

  /** Decodes and verifies one object read from {@code source} (closed here) into {@code out}. */
  private void fetchOne(
      Manifest.Entry e, String id, SecretKey dataKey, Path out, String where, InputStream source)
      throws IOException {
    String what = "object " + e.name() + " of " + where;
    try (InputStream raw = source) {
      Digests.In stored = new Digests.In(raw);
      InputStream s = stored;
      boolean plain = !e.encrypted() && !"zstd".equals(e.compression());
      if (e.encrypted()) {
        s = new ChunkedAead.DecryptingStream(s, dataKey, Manifest.aeadName(id, e.name()));
      }
      if ("zstd".equals(e.compression())) {
        s = new ZstdInputStream(s);
      }
      // a plain object's stored bytes are its image bytes (the manifest check made sure both sums
      // agree): one SHA-256 pass
      Digests.In content = plain ? stored : new Digests.In(s);
      try (OutputStream o = Channels.newOutputStream(Private.newFile(out))) {
        byte[] buf = new byte[256 * 1024];
        int n;
        while ((n = content.read(buf)) > 0) {
          if (content.count() > e.size()) {
            // also the decompression cap: a zstd bomb stops here, at the size the manifest gave
            throw new VerificationException(
                what + " is larger than its manifest says (" + e.size() + " bytes)");
          }
          try {
            o.write(buf, 0, n);
          } catch (IOException x) {
            throw writeFailure(out, x);
          }
        }
      } catch (VerificationException x) {
        throw x;
      } catch (IOException x) {
        if (x instanceof StorageException) {
          throw x;
        }
        // zstd and cipher errors on damaged data surface as plain IOExceptions
        throw new VerificationException(what + " failed verification: " + x.getMessage(), x);
      }
      while (stored.read(new byte[8192]) > 0) {
        // the stored checksum covers every byte, including any after the end of the encoding
      }
      if (stored.count() != e.storedSize() || !stored.sha256Hex().equals(e.storedSha256())) {
        throw new VerificationException(
            what + " failed verification: stored bytes do not match the manifest's sha256/size");
      }
      if (!plain && (content.count() != e.size() || !content.sha256Hex().equals(e.sha256()))) {
        throw new VerificationException(
            what + " failed verification: image bytes do not match the manifest's sha256/size");
      }
    } catch (com.github.luben.zstd.ZstdIOException x) {
      throw new VerificationException(what + " failed verification: " + x.getMessage(), x);
    }
  }

  /**
   * A failed write of fetched bytes is about the local disk, never about the checkpoint: it must
   * not read as "failed verification" (a full disk would otherwise look like a damaged store).
   */
  private static StorageException writeFailure(Path out, IOException x) {
    String m = String.valueOf(x.getMessage());
    Path dir = out.getParent() == null ? out : out.getParent().getParent();
    if (m.contains("No space left on device") || m.contains("Disk quota exceeded")) {
      return new StorageException(
          "no space left on device: images directory "
              + dir
              + " filled up while writing "
              + out.getFileName()
              + " ("
              + m
              + ")",
          x);
    }
    return new StorageException(
        "cannot write " + out.getFileName() + " into images directory " + dir + ": " + m, x);
  }

  /** What {@link #delete} removed. */
  public record Deleted(int objects, int uploadsAborted) {}

  /**
   * Deletes the checkpoint at this URI: the manifest first (so a half-deleted checkpoint never
   * lists as complete), then every image object, and aborts its pending multipart uploads.
   */
  public Deleted delete() throws StorageException {
    backend.checkAccess(false);
    List<String> keys = new ArrayList<>();
    boolean manifest = false;
    for (ObjectBackend.ObjectInfo o : backend.list(key(Manifest.FILE))) {
      if (o.key().equals(key(Manifest.FILE))) {
        manifest = true;
      }
    }
    // only this checkpoint's own images: a checkpoint nested below its checkpoint/ directory
    // (one named "checkpoint") is another checkpoint and stays
    for (ObjectBackend.ObjectInfo o : imageObjects()) {
      keys.add(o.key());
    }
    List<ObjectBackend.PendingUpload> pending = imageUploads();
    if (!manifest && keys.isEmpty() && pending.isEmpty()) {
      throw new StorageException("no checkpoint at " + uri);
    }
    if (manifest) {
      backend.delete(List.of(key(Manifest.FILE)));
    }
    backend.delete(keys);
    for (ObjectBackend.PendingUpload p : pending) {
      backend.abortPending(p);
    }
    return new Deleted(keys.size() + (manifest ? 1 : 0), pending.size());
  }

  /** Multipart uploads left under this URI (for tests and 'rm'). */
  public List<String> pendingUploads() throws StorageException {
    List<String> out = new ArrayList<>();
    for (ObjectBackend.PendingUpload p : backend.pendingUploads(root)) {
      out.add(p.key());
    }
    return out;
  }

  /** Every object key under this URI (for tests and diagnostics). */
  public List<String> objectKeys() throws StorageException {
    List<String> out = new ArrayList<>();
    for (ObjectBackend.ObjectInfo o : backend.list(root)) {
      out.add(o.key());
    }
    return out;
  }

  @Override
  public void close() {
    backend.close();
  }
}
