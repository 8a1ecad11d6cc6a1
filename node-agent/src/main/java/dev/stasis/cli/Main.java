package dev.stasis.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code stasis} command line (the launcher at the repository root). */
@Command(
    name = "stasis",
    mixinStandardHelpOptions = true,
    version = "stasis 0.1.0",
    description = "Checkpoint running processes into CRIU-format images.")
public final class Main implements Runnable {

  // Registered by hand rather than in @Command: picocli builds the model of every registered
  // subcommand by reflection, and its classes (class file version 49) cannot be put in the CDS
  // archive, so each one costs start-up time that a dump pays while its target waits.
  private static final java.util.Map<String, Class<?>> SUBCOMMANDS =
      new java.util.LinkedHashMap<>();

  static {
    SUBCOMMANDS.put("dump", DumpCommand.class);
    SUBCOMMANDS.put("demo", DemoCommand.class);
    SUBCOMMANDS.put("ls", LsCommand.class);
    SUBCOMMANDS.put("fetch", FetchCommand.class);
    SUBCOMMANDS.put("rm", RmCommand.class);
    SUBCOMMANDS.put("push", PushCommand.class);
    SUBCOMMANDS.put("agent", AgentCommand.class);
    SUBCOMMANDS.put("cds-train", CdsTrainCommand.class);
    SUBCOMMANDS.put("sweep", SweepCommand.class);
    SUBCOMMANDS.put("serve", ServeCommand.class);
  }

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  /**
   * The command line with one-line errors: bad arguments print "stasis: <what was wrong>" (exit 2),
   * a failed command prints "stasis <command>: <reason>" (exit 1); never a stack trace.
   */
  public static CommandLine commandLine() {
    return commandLine(null);
  }

  /**
   * As {@link #commandLine()}, with only the subcommand named {@code first} registered when it
   * names one (the top-level help, listing them all, is shown otherwise).
   */
  static CommandLine commandLine(String first) {
    CommandLine cl = new CommandLine(new Main());
    Class<?> only = first == null ? null : SUBCOMMANDS.get(first);
    if (only != null) {
      cl.addSubcommand(first, only);
    } else {
      SUBCOMMANDS.forEach(cl::addSubcommand);
    }
    cl.setParameterExceptionHandler(
        (ex, args) -> {
          ex.getCommandLine().getErr().println("stasis: " + oneLine(ex.getMessage()));
          return 2;
        });
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> failed(cmd.getCommandName(), ex, cmd.getErr()));
    return cl;
  }

  /** A command that threw: "stasis NAME: reason" on one line (and the trace with STASIS_DEBUG). */
  static int failed(String command, Exception ex, java.io.PrintWriter err) {
    String msg = ex.getMessage() == null ? ex.toString() : ex.getMessage();
    err.println("stasis " + command + ": " + oneLine(msg));
    if (System.getenv("STASIS_DEBUG") != null) {
      ex.printStackTrace(err);
    }
    err.flush();
    return 1;
  }

  /**
   * {@code dump} in its plain form, without picocli: building picocli's model of the command (its
   * classes are Java 5 bytecode, which the class-data archive cannot hold, verified and interpreted
   * at every start) took ~130 ms, the longest step before a dump could start. The arguments {@link
   * DumpCommand#parsePlain} accepts are parsed exactly as picocli parses them (DumpCommandTest
   * compares both); anything else, help and every error included, goes to picocli.
   */
  static int runPlainDump(DumpCommand c) {
    java.io.PrintWriter err = new java.io.PrintWriter(System.err, true);
    try {
      return c.call();
    } catch (Exception e) {
      return failed("dump", e, err);
    }
  }

  static String oneLine(String s) {
    if (s == null || s.isBlank()) {
      return "unknown error";
    }
    // messages quote names from stored data: escaped, they stay one line and cannot drive the
    // terminal
    return Text.escape(s.strip());
  }

  public static void main(String[] args) {
    // picocli looks for Groovy's Closure class once; the miss made the JVM open every one of the
    // ~90 jars on the class path (~30 ms of every command's start-up). We have no Groovy.
    System.setProperty("picocli.disable.closures", "true");
    String first = args.length > 0 ? args[0] : null;
    if ("dump".equals(first) || "demo".equals(first) || "cds-train".equals(first)) {
      prepareDump();
    }
    int rc;
    try {
      DumpCommand plain = "dump".equals(first) ? DumpCommand.parsePlain(args) : null;
      rc = plain != null ? runPlainDump(plain) : commandLine(first).execute(args);
    } catch (Error e) {
      // picocli turns exceptions into one-line errors, not Errors (a native library that cannot be
      // loaded surfaces as NoClassDefFoundError): the same one line, not a stack trace
      System.err.println("stasis: " + oneLine(e.toString()));
      if (System.getenv("STASIS_DEBUG") != null) {
        e.printStackTrace();
      }
      rc = 1;
    }
    System.exit(rc);
  }

  /**
   * Binds the C library and sets up each of its functions (JNR builds its invokers at run time,
   * which no class archive can hold; see Linux.warmUp) and loads the image classes on a second
   * thread while this one parses the arguments and opens the sink, so that neither is paid between
   * the start of the dump and the freeze, nor while the target is frozen.
   */
  private static void prepareDump() {
    Thread t =
        new Thread(
            () -> {
              try {
                dev.stasis.linux.Linux.warmUp();
                dev.stasis.images.proto.CoreEntry.getDescriptor();
                dev.stasis.linux.proc.Maps
                    .flagSource(); // BTF + BPF + its check, off the dump's path
              } catch (Throwable e) {
                // A warm-up only: the dump itself reports whatever is wrong.
              }
            },
            "stasis-warmup");
    t.setDaemon(true);
    t.start();
  }
}
