package dev.stasis.compel;

/**
 * What compel needs to know about injected code, given by its caller (compel's parasite_blob_desc
 * idea): the position-independent code, where execution starts in it, and how large the argument
 * area after it is. Compel maps {@code [code, padded to a page | args area]} into the target and
 * runs the code (continued until it reports done in the area, then interrupted in its park loop)
 * with the area's address as the only argument and the stack at the area's end; what the code and
 * the area mean is the caller's business.
 *
 * @param code the blob's bytes (copied into the target as they are)
 * @param entryOffset offset of the entry point within {@code code}
 * @param argsAreaSize bytes of the shared area that follows the blob (commands, answers, stack)
 */
public record ParasiteBlob(byte[] code, long entryOffset, int argsAreaSize) {
  public ParasiteBlob {
    if (code.length == 0) {
      throw new IllegalArgumentException("empty parasite blob");
    }
    if (entryOffset < 0 || entryOffset >= code.length) {
      throw new IllegalArgumentException(
          "entry offset " + entryOffset + " outside the blob of " + code.length + " bytes");
    }
    if (argsAreaSize <= 0) {
      throw new IllegalArgumentException("args area of " + argsAreaSize + " bytes");
    }
  }
}
