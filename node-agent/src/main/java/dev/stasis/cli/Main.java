package dev.stasis.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code stasis} command line (the launcher at the repository root). */
@Command(
    name = "stasis",
    mixinStandardHelpOptions = true,
    version = "stasis 0.1.0",
    description = "Checkpoint running processes into CRIU-format images.",
    subcommands = {
      DumpCommand.class,
      DemoCommand.class,
      LsCommand.class,
      FetchCommand.class,
      RmCommand.class,
      PushCommand.class,
      AgentCommand.class
    })
public final class Main implements Runnable {

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  /**
   * The command line with one-line errors: bad arguments print "stasis: <what was wrong>" (exit 2),
   * a failed command prints "stasis <command>: <reason>" (exit 1); never a stack trace.
   */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Main());
    cl.setParameterExceptionHandler(
        (ex, args) -> {
          ex.getCommandLine().getErr().println("stasis: " + oneLine(ex.getMessage()));
          return 2;
        });
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          String msg = ex.getMessage() == null ? ex.toString() : ex.getMessage();
          cmd.getErr().println("stasis " + cmd.getCommandName() + ": " + oneLine(msg));
          if (System.getenv("STASIS_DEBUG") != null) {
            ex.printStackTrace(cmd.getErr());
          }
          return 1;
        });
    return cl;
  }

  static String oneLine(String s) {
    if (s == null || s.isBlank()) {
      return "unknown error";
    }
    return s.strip().replace('\n', ' ');
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }
}
