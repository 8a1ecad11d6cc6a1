package dev.stasis.cli;

import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code stasis ls --from URI}: one line per checkpoint at or below URI. */
@Command(
    name = "ls",
    mixinStandardHelpOptions = true,
    description = "List checkpoints: name, complete|incomplete, size, age, id, URI.")
public final class LsCommand implements Callable<Integer> {
  @Option(
      names = "--from",
      required = true,
      paramLabel = "URI",
      description = "file:///dir or s3://bucket/prefix")
  String from;

  @Mixin StorageOptions storage;

  @Override
  public Integer call() {
    try (CheckpointStore store = storage.open(from)) {
      List<CheckpointStore.Listing> all = store.list();
      if (all.isEmpty()) {
        System.err.println("no checkpoints at " + from);
      }
      for (CheckpointStore.Listing l : all) {
        // every field that comes from stored data is escaped: a key or manifest holding a
        // newline, a tab or an escape sequence cannot forge a line or drive the terminal
        System.out.println(
            Text.escape(l.name())
                + "\t"
                + (l.complete() ? "complete" : "incomplete")
                + "\t"
                + human(l.size())
                + "\t"
                + age(l.time())
                + "\t"
                + (l.id() == null ? "-" : Text.escape(l.id()))
                + "\t"
                + Text.escape(l.uri())
                + (l.why() == null ? "" : "\t(" + Text.escape(l.why()) + ")"));
      }
      return 0;
    } catch (StorageException e) {
      System.err.println("stasis ls: " + Main.oneLine(e.getMessage()));
      return 1;
    }
  }

  static String human(long b) {
    if (b < 1024) {
      return b + " B";
    }
    String[] u = {"KiB", "MiB", "GiB", "TiB"};
    double v = b;
    int i = -1;
    do {
      v /= 1024;
      i++;
    } while (v >= 1024 && i < u.length - 1);
    return String.format("%.1f %s", v, u[i]);
  }

  static String age(Instant t) {
    if (t == null) {
      return "-";
    }
    long s = Math.max(0, Duration.between(t, Instant.now()).getSeconds());
    if (s < 120) {
      return s + "s";
    }
    if (s < 7200) {
      return s / 60 + "m";
    }
    if (s < 172800) {
      return s / 3600 + "h";
    }
    return s / 86400 + "d";
  }
}
