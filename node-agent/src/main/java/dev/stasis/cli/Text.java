package dev.stasis.cli;

/**
 * What the CLI prints from stored data (object keys, manifest fields, error messages quoting them)
 * goes through {@link #escape}: a name in a bucket is written by whoever can write the bucket, and
 * raw it could move the cursor, recolour or clear the terminal, or forge whole lines of output (a
 * key with a newline and "\tcomplete\t" in it looked like a complete checkpoint in {@code ls}).
 */
public final class Text {
  private Text() {}

  /**
   * {@code s} with every control character (C0, DEL, C1), line or paragraph separator and bidi
   * override written as an escape ({@code \n}, {@code \t}, {@code \r}, {@code \xNN}, {@code
   * \u2028}) and backslash doubled: the result is one line, holds no tab (the column separator of
   * {@code ls}), and reads back unambiguously.
   */
  public static String escape(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder b = null;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      String rep = replacement(c);
      if (rep == null) {
        if (b != null) {
          b.append(c);
        }
        continue;
      }
      if (b == null) {
        b = new StringBuilder(s.length() + 16).append(s, 0, i);
      }
      b.append(rep);
    }
    return b == null ? s : b.toString();
  }

  private static String replacement(char c) {
    switch (c) {
      case '\\':
        return "\\\\";
      case '\n':
        return "\\n";
      case '\t':
        return "\\t";
      case '\r':
        return "\\r";
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      return String.format("\\x%02x", (int) c);
    }
    if ((c >= 0x80 && c <= 0x9f)
        || c == 0x2028
        || c == 0x2029
        || (c >= 0x202a && c <= 0x202e)
        || (c >= 0x2066 && c <= 0x2069)
        || c == 0x200e
        || c == 0x200f
        || c == 0x061c) {
      return String.format("\\u%04x", (int) c);
    }
    return null;
  }
}
