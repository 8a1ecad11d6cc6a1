package dev.stasis.storage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The user's key-encryption key (KEK): 32 bytes given as a file (raw, hex or base64) or as hex or
 * base64 in an environment variable. It never encrypts data itself: every checkpoint gets a fresh
 * random data key, and only that key, wrapped by this one with AES-256-GCM, is stored in the
 * manifest.
 */
public final class EncryptionKey {
  public static final String ENV = "STASIS_ENCRYPTION_KEY";
  private static final byte[] WRAP_AAD = "stasis data key v1".getBytes(StandardCharsets.US_ASCII);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SecretKeySpec kek;
  private final String id;

  private EncryptionKey(byte[] raw) {
    this.kek = new SecretKeySpec(raw, "AES");
    this.id = keyId(raw);
  }

  public static EncryptionKey fromFile(Path file) throws StorageException {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new StorageException(
          "cannot read encryption key file " + file + ": " + e.getMessage(), e);
    }
    if (bytes.length == 32) {
      return new EncryptionKey(bytes);
    }
    return parse(new String(bytes, StandardCharsets.US_ASCII).strip(), "key file " + file);
  }

  /** Parses 64 hex digits or the base64 of 32 bytes. */
  public static EncryptionKey parse(String text, String source) throws StorageException {
    String t = text.strip();
    byte[] raw = null;
    if (t.matches("[0-9a-fA-F]{64}")) {
      raw = HexFormat.of().parseHex(t);
    } else {
      try {
        raw = Base64.getDecoder().decode(t);
      } catch (IllegalArgumentException e) {
        // reported below
      }
    }
    if (raw == null || raw.length != 32) {
      throw new StorageException(
          "encryption key from " + source + " is not 32 bytes (raw, 64 hex digits or base64)");
    }
    return new EncryptionKey(raw);
  }

  /** A short public fingerprint, stored in the manifest to tell a wrong key from corruption. */
  public String id() {
    return id;
  }

  private static String keyId(byte[] raw) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update("stasis key id".getBytes(StandardCharsets.US_ASCII));
      return HexFormat.of().formatHex(Arrays.copyOf(md.digest(raw), 8));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  static SecretKey newDataKey() {
    byte[] k = new byte[32];
    RANDOM.nextBytes(k);
    return new SecretKeySpec(k, "AES");
  }

  /** nonce(12) || GCM(kek, dataKey) with a 16-byte tag, base64. */
  String wrap(SecretKey dataKey) {
    try {
      byte[] nonce = new byte[12];
      RANDOM.nextBytes(nonce);
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, kek, new GCMParameterSpec(128, nonce));
      c.updateAAD(WRAP_AAD);
      byte[] ct = c.doFinal(dataKey.getEncoded());
      byte[] out = new byte[12 + ct.length];
      System.arraycopy(nonce, 0, out, 0, 12);
      System.arraycopy(ct, 0, out, 12, ct.length);
      return Base64.getEncoder().encodeToString(out);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM unavailable", e);
    }
  }

  SecretKey unwrap(String wrapped, String expectedId, String checkpoint)
      throws VerificationException {
    if (expectedId != null && !expectedId.equals(id)) {
      throw new VerificationException(
          "wrong encryption key for "
              + checkpoint
              + ": it was encrypted with key id "
              + expectedId
              + ", the given key has id "
              + id);
    }
    try {
      byte[] in = Base64.getDecoder().decode(wrapped);
      if (in.length != 12 + 32 + 16) {
        throw new VerificationException(
            "manifest of " + checkpoint + " has a malformed wrapped data key");
      }
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, kek, new GCMParameterSpec(128, in, 0, 12));
      c.updateAAD(WRAP_AAD);
      return new SecretKeySpec(c.doFinal(in, 12, in.length - 12), "AES");
    } catch (AEADBadTagException e) {
      throw new VerificationException(
          "wrong encryption key for "
              + checkpoint
              + ": the data key does not unwrap (or it was tampered with)",
          e);
    } catch (IllegalArgumentException e) {
      throw new VerificationException(
          "manifest of " + checkpoint + " has a malformed wrapped data key", e);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(
          "cannot unwrap the data key of " + checkpoint + ": " + e.getMessage(), e);
    }
  }
}
