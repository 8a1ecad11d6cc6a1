package dev.stasis.compel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fault-injection points for the kill-the-dumper test: with {@code STASIS_HOLD_AT=<point>} and
 * {@code STASIS_HOLD_FILE=<path>} in the environment, the dumper writes the point's name to the
 * file when it reaches that point (its n-th occurrence with {@code <point>:n}) and then sleeps, so
 * a test can kill it exactly there, or change the target there and create {@code <path>.go} to let
 * it go on. Every point is an instant at which the target is in a modified state. Without the
 * variables this does nothing.
 */
public final class Hold {
  private static final String AT = System.getenv("STASIS_HOLD_AT");
  private static final String FILE = System.getenv("STASIS_HOLD_FILE");
  private static int seen;
  private static volatile Thread holding;

  private Hold() {}

  /** Marks reaching {@code point}; holds there if it is the configured one. */
  public static void at(String point) {
    if (AT == null || FILE == null) {
      return;
    }
    String name = AT;
    int nth = 1;
    int colon = AT.indexOf(':');
    if (colon > 0) {
      name = AT.substring(0, colon);
      nth = Integer.parseInt(AT.substring(colon + 1));
    }
    if (!name.equals(point)) {
      return;
    }
    synchronized (Hold.class) {
      if (++seen != nth) {
        return;
      }
    }
    holding = Thread.currentThread();
    try {
      // written whole, then renamed: the test polls for the file and must never see it empty
      Path f = Path.of(FILE);
      Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
      Files.writeString(tmp, point + "\n");
      Files.move(tmp, f, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      // up to a minute; a test that creates FILE.go lets the dumper go on from here
      Path go = f.resolveSibling(f.getFileName() + ".go");
      for (int i = 0; i < 6_000 && !Files.exists(go); i++) {
        Thread.sleep(10);
      }
    } catch (IOException e) {
      // the test reads the file; nothing to hold for without it
    } catch (InterruptedException e) {
      // woken by the shutdown hook: go on as if the operation had just finished
    } finally {
      holding = null;
    }
  }

  /**
   * Ends a hold: a SIGTERM'd dumper's shutdown hook calls it so the held operation completes (as a
   * real one does within microseconds) before the release.
   */
  public static void wake() {
    Thread t = holding;
    if (t != null) {
      t.interrupt();
    }
  }
}
